"""Self-check: is the monitoring itself able to see out?

Canaries are ordinary monitors (``policy.role = "canary"``) on addresses the company controls or trusts:
the gateway, the resolvers, an outside address (setting ``NEGAHBAN_CANARIES``, comma-separated:
``http://10.0.0.1/``, ``tcp:10.0.0.53:53``, ``icmp:10.0.0.1``). When the latest check of *every* canary
failed we are blind: customer monitors' failures are not evidence (``Context.blind``), so none goes DOWN.

The blindness itself is one internal monitor, ``negahban-self-check`` (kind ``selfcheck``, never probed):
after each canary check the runner evaluates it with a synthetic result, so going blind is one flip
UP -> DOWN (reason ``canaries_failing``) and seeing again is one flip back. The incident engine sees that
flip like any other and raises the one internal "monitoring blind" alert; no table of its own is needed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.errors import InvalidInput
from monitor.models import Monitor
from probes.base import Outcome, ProbeResult

__all__ = ["SelfCheck", "SELF_CHECK_NAME", "LOCATION_PREFIX", "parse_canary", "check_canary", "ensure_selfcheck",
           "ensure_location_alert", "location_alert_name"]

SELF_CHECK_NAME = "negahban-self-check"
# A probe location's own blindness: one internal monitor per location (``location:teh``), never probed,
# judged from the canary results its agent reports, so a blind location is one internal alert.
LOCATION_PREFIX = "location:"
CANARY_POLICY = {"role": "canary", "down_after": 1, "up_after": 1}
INTERNAL_POLICY = {"role": "internal", "down_after": 1, "up_after": 1}


class SelfCheck:
    def __init__(self) -> None:
        self.canaries: set[int] = set()
        self.config = None  # the internal monitor's MonitorConfig, set by the scheduler's reload
        self._failing: dict[int, str] = {}
        self._seen: set[int] = set()

    def set_canaries(self, canary_ids: set[int], config) -> None:
        self.canaries = set(canary_ids)
        self.config = config
        self._failing = {k: v for k, v in self._failing.items() if k in self.canaries}
        self._seen &= self.canaries

    def observe(self, canary_id: int, result: ProbeResult) -> None:
        self._seen.add(canary_id)
        if result.outcome is Outcome.UP:
            self._failing.pop(canary_id, None)
        else:
            self._failing[canary_id] = f"{result.reason}: {result.message}"[:200]

    @property
    def blind(self) -> bool:
        """True when every canary has been checked and the latest check of each failed."""
        return bool(self.canaries) and self._seen == self.canaries and set(self._failing) == self.canaries

    def result(self) -> ProbeResult:
        if self.blind:
            detail = "; ".join(f"canary {k}: {v}" for k, v in sorted(self._failing.items()))
            return ProbeResult(Outcome.DOWN, "canaries_failing", f"monitoring blind: {detail}"[:2000])
        return ProbeResult(Outcome.UP, "ok", f"{len(self.canaries) - len(self._failing)} canaries answer")


def parse_canary(text: str) -> tuple[str, str]:
    """``http(s)://...`` is an HTTP canary; otherwise ``kind:target`` (``tcp:10.0.0.53:53``)."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        return "http", text
    kind, sep, target = text.partition(":")
    if not sep or not kind or not target:
        raise InvalidInput("canaries", f"{text!r}: expected http(s)://... or kind:target")
    return kind, target


def check_canary(text: str) -> tuple[str, str]:
    """Parse a canary and validate it as its probe kind's spec; ``ValueError`` names what is wrong."""
    from pydantic import ValidationError

    from probes import PROBERS, SPECS

    try:
        kind, target = parse_canary(text)
    except InvalidInput as exc:
        raise ValueError(exc.reason) from None
    if kind not in PROBERS:  # a canary is probed: a push kind (heartbeat) cannot be one
        raise ValueError(f"{text!r}: unknown probe kind {kind!r}; known: {', '.join(sorted(PROBERS))}")
    try:
        SPECS[kind].model_validate({"kind": kind, "target": target})
    except ValidationError as exc:
        raise ValueError(f"{text!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return kind, target


async def ensure_selfcheck(sessionmaker: async_sessionmaker, canaries: list[str], now: datetime,
                           interval_s: float = 5.0, timeout_s: float = 2.0) -> None:
    """Make the canary monitors and the internal self-check monitor match the setting."""
    wanted = {f"canary:{c.strip()}": parse_canary(c) for c in canaries if c.strip()}
    async with sessionmaker() as session, session.begin():
        rows = {m.name: m for m in (await session.execute(
            select(Monitor).where(Monitor.name.like("canary:%") | (Monitor.name == SELF_CHECK_NAME)))).scalars()}
        for name, row in rows.items():
            if name != SELF_CHECK_NAME and name not in wanted:
                row.enabled, row.updated_at = False, now
        for name, (kind, target) in wanted.items():
            row = rows.get(name) or Monitor(name=name)
            row.kind, row.target, row.interval_s, row.timeout_s = kind, target, interval_s, timeout_s
            row.policy, row.enabled, row.updated_at = dict(CANARY_POLICY), True, now
            session.add(row)
        if SELF_CHECK_NAME not in rows:
            session.add(Monitor(name=SELF_CHECK_NAME, kind="selfcheck", target="canaries",
                                interval_s=interval_s, policy=dict(INTERNAL_POLICY), updated_at=now))


def location_alert_name(location: str) -> str:
    return LOCATION_PREFIX + location


async def ensure_location_alert(session, location: str, now: datetime) -> None:
    """The internal monitor whose flips say a location went blind or sees again (one alert per location)."""
    name = location_alert_name(location)
    if (await session.execute(select(Monitor.id).where(Monitor.name == name))).scalar() is None:
        session.add(Monitor(name=name, kind="selfcheck", target=f"location {location} canaries",
                            interval_s=5.0, policy=dict(INTERNAL_POLICY), updated_at=now))
        await session.flush()
