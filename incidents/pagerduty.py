"""PagerDuty through the Events API v2, so PagerDuty's alert follows our incident's state.

``POST {base}/v2/enqueue`` with ``{"routing_key", "event_action": trigger|acknowledge|resolve, "dedup_key",
"payload": {"summary", "source", "severity", ...}}``; 202 means accepted, 400 an invalid event (or routing
key), 429 too many events (retry with backoff), 5xx retry. Documented at
https://developer.pagerduty.com/docs/events-API-v2/overview/ and
https://developer.pagerduty.com/docs/events-API-v2/trigger-events/ (source:
https://github.com/PagerDuty/developer-docs/tree/main/docs/events-API-v2).

The channel's ``address`` is the integration's routing key, or ``env:NAME`` / ``file:PATH`` naming where
it is kept (``incidents.secrets``). Our ``dedup_key`` is ``negahban-incident-<id>``: every event of one
incident names the same PagerDuty alert, whichever process sends it and however often it is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from incidents.errors import DeliveryFailed
from incidents.notifiers import Message, http_failure
from incidents.secrets import SecretMissing, resolve_secret

__all__ = ["PagerDutyNotifier", "PAGERDUTY_EVENTS", "event_action", "pagerduty_dedup_key", "pagerduty_event"]

PAGERDUTY_EVENTS = "https://events.pagerduty.com"
# PagerDuty's severities are critical, error, warning, info; rule 14's urgent is down, important disrupted.
_SEVERITY = {"urgent": "critical", "important": "warning"}


def pagerduty_dedup_key(incident_id: int) -> str:
    return f"negahban-incident-{incident_id}"


def event_action(notice_kind: str) -> str:
    """Our notice kinds (opened, upgraded, escalation-N, acknowledged, resolved) as an ``event_action``:
    whatever is not an acknowledgement or a resolution (re)triggers, which PagerDuty folds into the open
    alert with the same ``dedup_key``."""
    return {"acknowledged": "acknowledge", "resolved": "resolve"}.get(notice_kind, "trigger")


def pagerduty_event(routing_key: str, message: Message, source: str) -> dict[str, Any]:
    data: Mapping[str, Any] = message.data
    if data.get("incident_id") is None:
        raise DeliveryFailed("pagerduty: the notice names no incident (no dedup_key)", permanent=True)
    action = event_action(str(data.get("event", "")))
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                             "dedup_key": pagerduty_dedup_key(int(data["incident_id"]))}
    if action == "trigger":
        event["payload"] = {
            "summary": (message.subject or str(data.get("title", "")))[:1024],
            "source": source, "severity": _SEVERITY.get(str(data.get("severity")), "error"),
            "timestamp": data.get("opened_at"),
            "custom_details": {k: v for k, v in data.items() if k != "short"}}
        event["client"] = "negahban"
    return event


class PagerDutyNotifier:
    def __init__(self, session: aiohttp.ClientSession, *, base_url: str = PAGERDUTY_EVENTS,
                 source: str = "negahban", timeout_s: float = 10.0) -> None:
        self.session, self.base_url, self.source, self.timeout_s = session, base_url.rstrip("/"), source, timeout_s

    async def send(self, address: str, message: Message) -> None:
        try:
            routing_key = resolve_secret(address)
        except SecretMissing as exc:
            raise DeliveryFailed(f"pagerduty: {exc}", permanent=True) from exc
        event = pagerduty_event(routing_key, message, self.source)
        try:
            async with self.session.post(f"{self.base_url}/v2/enqueue", json=event,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                if resp.status >= 300:
                    raise http_failure(resp.status, f"pagerduty {event['event_action']}: {await resp.text()}")
        except aiohttp.InvalidURL as exc:
            raise DeliveryFailed("pagerduty: invalid base URL", permanent=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryFailed(f"pagerduty: {type(exc).__name__}: {exc}", permanent=False) from exc
