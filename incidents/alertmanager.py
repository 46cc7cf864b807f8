"""Alertmanager receiver logic: webhook payload version 4 in, incidents out; and reconciliation.

Each alert is identified by its fingerprint and ``startsAt`` (the same alert firing again after it resolved
has a new ``startsAt``, so it opens a new incident linked to the old one). Firing or resolved is decided by
``status``, never by ``endsAt`` (Alertmanager sets a future ``endsAt`` on firing alerts). Everything is
idempotent, since Alertmanager retries a notification until it gets a 2xx.

Silenced and inhibited alerts never send "resolved", so ``reconcile`` compares the open alert incidents with
Alertmanager's ``/api/v2/alerts`` on a schedule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.affected import Affected
from incidents.errors import InvalidPayload, ReconcileFailed
from incidents.models import Incident, Severity, Source, Status
from incidents.store import add_event, find_open, open_incident, raise_severity, resolve_incident
from monitor.clock import utc
from monitor.models import Service
from monitor.work import WorkerFailures, isolate

__all__ = ["AlertmanagerConfig", "WebhookPayload", "Alert", "ReceiveResult", "parse_payload", "receive",
           "reconcile", "alert_key", "RECEIVER_WORKER"]

log = logging.getLogger("negahban.alertmanager")

# The worker label of the receiver's failures (it is a web route, not a loop, but counted with them).
RECEIVER_WORKER = "alertmanager"


@dataclass(frozen=True, slots=True)
class AlertmanagerConfig:
    severity_label: str = "severity"
    severities: Mapping[str, Severity] = field(default_factory=lambda: {
        "critical": Severity.URGENT, "warning": Severity.IMPORTANT})
    # Severity for an alert whose label is missing or unknown; None ignores such alerts.
    default_severity: Severity | None = Severity.IMPORTANT
    # The label naming the customer's service (``services.name``), for ownership and tickets.
    service_label: str = "service"
    # Alertmanager's base URL, for reconciliation (e.g. http://127.0.0.1:9093).
    url: str | None = None
    # The label (name, value) that Negahban's own alert rules carry (dashboards/prometheus/negahban-rules.yml).
    # Such an alert describes an outage that already has its incident (NegahbanProbeFailing) or Negahban's own
    # health: turning it back into an incident would loop, so the receiver counts it and opens nothing.
    own_label: tuple[str, str] = ("origin", "negahban")


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=64)


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    alerts: list[Alert]


@dataclass
class ReceiveResult:
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    ignored: int = 0
    own: int = 0  # alerts raised by Negahban's own rules: never incidents (see AlertmanagerConfig.own_label)
    failed: int = 0  # alerts that could not be applied (recorded and counted; the rest of the group was)


def parse_payload(body: bytes | str | Mapping[str, Any]) -> WebhookPayload:
    """Validate a webhook body; raise ``InvalidPayload`` naming the first bad field."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise InvalidPayload("body", f"not JSON: {exc}") from None
    try:
        return WebhookPayload.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidPayload(where, err["msg"]) from None


def alert_key(fingerprint: str, starts_at: datetime) -> str:
    """The alert's identity. Milliseconds only: the webhook carries nanoseconds, the API v2 milliseconds."""
    at = utc(starts_at)
    return f"alert:{fingerprint}:{at.replace(microsecond=at.microsecond // 1000 * 1000).isoformat()}"


# An alert's startsAt is the sender's word: an incident never starts in the future, nor more than this long
# before we first heard of it (a clock at 1970 or 9999 on the sender must not bend uptime figures).
MAX_ALERT_AGE = timedelta(days=7)
# Clocks of Prometheus hosts and ours differ by a little; beyond this, a start in the future is not believed.
CLOCK_SKEW = timedelta(minutes=5)


def opened_at_for(starts_at: datetime, now: datetime) -> datetime:
    """When the incident of an alert starting at ``starts_at``, received at ``now``, is taken to have opened."""
    starts = utc(starts_at)
    if starts > now + CLOCK_SKEW:
        return now
    return max(starts, now - MAX_ALERT_AGE)


def severity_of(alert: Alert, config: AlertmanagerConfig) -> Severity | None:
    return config.severities.get(alert.labels.get(config.severity_label, ""), config.default_severity)


async def receive(sessionmaker: async_sessionmaker, body: bytes | str | Mapping[str, Any], now: datetime,
                  config: AlertmanagerConfig, failures: WorkerFailures | None = None) -> ReceiveResult:
    """Apply a webhook notification in one transaction or (on a malformed payload) not at all.

    If applying the group fails, it is applied again alert by alert: an alert that still fails is counted in
    ``failed`` and in ``failures``, and the others are applied, so one bad alert never makes Alertmanager
    retry (and lose) the whole group."""
    payload = parse_payload(body)
    try:
        return await _apply_all(sessionmaker, payload.alerts, now, config)
    except Exception as exc:  # noqa: BLE001 - any failure of the group falls back to one alert at a time
        log.warning("alert_group_failed alerts=%s error=%r", len(payload.alerts), str(exc)[:300])
    result = ReceiveResult()
    for alert in payload.alerts:
        try:
            one = await _apply_all(sessionmaker, [alert], now, config)
        except Exception as exc:
            result.failed += 1
            (failures or WorkerFailures()).record(RECEIVER_WORKER, f"alert:{alert.fingerprint}", exc, gave_up=True)
            continue
        for name in ("opened", "updated", "resolved", "ignored"):
            setattr(result, name, getattr(result, name) + getattr(one, name))
    return result


async def _apply_all(sessionmaker: async_sessionmaker, alerts: list[Alert], now: datetime,
                     config: AlertmanagerConfig) -> ReceiveResult:
    for attempt in (1, 2):
        try:
            async with sessionmaker() as session, session.begin():
                result = ReceiveResult()
                for alert in alerts:
                    await _apply(session, alert, now, config, result)
                return result
        except IntegrityError:
            # A concurrent retry of the same notification opened the incident first; apply again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _apply(session: AsyncSession, alert: Alert, now: datetime, config: AlertmanagerConfig,
                 result: ReceiveResult) -> None:
    name, value = config.own_label
    if alert.labels.get(name) == value:
        result.own += 1
        return
    key = alert_key(alert.fingerprint, alert.starts_at)
    incident = await find_open(session, key)
    severity = severity_of(alert, config)
    if alert.status == "resolved":
        if incident is None:
            result.ignored += 1
            return
        ends = utc(alert.ends_at) if alert.ends_at and alert.ends_at > alert.starts_at else now
        await resolve_incident(session, incident, max(min(ends, now), incident.opened_at), now, "alert_resolved")
        result.resolved += 1
    elif incident is not None:
        incident.labels = {**alert.labels, **{f"annotation:{k}": v for k, v in alert.annotations.items()}}
        if severity is not None:
            await raise_severity(session, incident, severity, now, now, "alert severity")
        result.updated += 1
    elif severity is None or await _ever_opened(session, key):
        result.ignored += 1  # unknown severity, or a late retry of an alert already resolved
    else:
        await _open(session, alert, key, severity, now, config)
        result.opened += 1


async def _ever_opened(session: AsyncSession, key: str) -> bool:
    return (await session.execute(select(Incident.id).where(Incident.dedup_key == key).limit(1))).first() \
        is not None


async def _open(session: AsyncSession, alert: Alert, key: str, severity: Severity, now: datetime,
                config: AlertmanagerConfig) -> Incident:
    service = None
    if name := alert.labels.get(config.service_label):
        service = (await session.execute(select(Service).where(Service.name == name))).scalar_one_or_none()
    affected = [Affected(f"service:{service.id}", service_id=service.id, customer_id=service.customer_id)] \
        if service else []
    title = alert.annotations.get("summary") or " ".join(
        v for v in (alert.labels.get("alertname"), alert.labels.get("instance")) if v) or alert.fingerprint
    incident = await open_incident(
        session, key=key, source=Source.ALERTMANAGER, severity=severity, title=title,
        opened_at=opened_at_for(alert.starts_at, now),
        now=now, affected=affected, summary=alert.annotations.get("description", ""),
        service_id=service.id if service else None, customer_id=service.customer_id if service else None,
        alert_fingerprint=alert.fingerprint, alert_starts_at=utc(alert.starts_at),
        labels={**alert.labels, **{f"annotation:{k}": v for k, v in alert.annotations.items()}})
    if incident.previous_incident_id is None:
        incident.previous_incident_id = (await session.execute(
            select(Incident.id).where(Incident.alert_fingerprint == alert.fingerprint,
                                      Incident.status == Status.RESOLVED)
            .order_by(Incident.id.desc()).limit(1))).scalar()
    log.info("alert_incident_opened incident_id=%s fingerprint=%s severity=%s", incident.id,
             alert.fingerprint, severity)
    return incident


class _ApiAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")
    fingerprint: str
    startsAt: datetime
    status: dict[str, Any]


async def fetch_alerts(http: aiohttp.ClientSession, url: str, timeout_s: float = 10.0) -> dict[str, str]:
    """Alert key -> state (``active``, ``suppressed``, ``unprocessed``) from Alertmanager's API v2."""
    try:
        async with http.get(f"{url.rstrip('/')}/api/v2/alerts", timeout=aiohttp.ClientTimeout(total=timeout_s)) \
                as resp:
            if resp.status != 200:
                raise ReconcileFailed(f"GET /api/v2/alerts answered HTTP {resp.status}")
            items = [_ApiAlert.model_validate(a) for a in await resp.json()]
    except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as exc:
        raise ReconcileFailed(f"cannot read Alertmanager alerts: {exc}") from exc
    return {alert_key(a.fingerprint, a.startsAt): str(a.status.get("state", "active")) for a in items}


async def reconcile(sessionmaker: async_sessionmaker, http: aiohttp.ClientSession, config: AlertmanagerConfig,
                    now: datetime, failures: WorkerFailures | None = None) -> int:
    """Resolve open alert incidents whose alert is gone, silenced or inhibited, at ``now``. Return how many.

    Each incident is resolved in a transaction of its own: one that fails is counted (worker
    ``alertmanager_reconcile``) and retried on the next pass, set aside after ``MAX_ITEM_ATTEMPTS``; the others
    are resolved."""
    if not config.url:
        return 0
    states = await fetch_alerts(http, config.url)
    async with sessionmaker() as session:
        open_alerts = (await session.execute(select(Incident.id, Incident.dedup_key).where(
            Incident.source == Source.ALERTMANAGER, Incident.status != Status.RESOLVED).order_by(Incident.id))).all()

    def step(incident_id: int):
        return lambda: _reconcile_one(sessionmaker, incident_id, states, now)

    done = (await isolate("alertmanager_reconcile",
                          ((f"incident:{i}", step(i)) for i, key in open_alerts
                           if states.get(key, "gone") not in ("active", "unprocessed")),
                          failures or WorkerFailures())).done
    if done:
        log.info("alerts_reconciled resolved=%s", done)
    return done


async def _reconcile_one(sessionmaker: async_sessionmaker, incident_id: int, states: Mapping[str, str],
                         now: datetime) -> bool:
    async with sessionmaker() as session, session.begin():
        incident = await session.get(Incident, incident_id, with_for_update=True)
        state = states.get(incident.dedup_key, "gone")
        if incident.status == Status.RESOLVED or state in ("active", "unprocessed"):
            return False  # resolved meanwhile (a webhook, the NOC, another process)
        add_event(session, incident.id, now, "reconciled", f"alert is {state} in Alertmanager")
        await resolve_incident(session, incident, now, now, f"alert_{state}")
        return True
