"""What the customer portal, the reports and the status page read: a customer's own services (always through
``scope``), their monitors' current state, uptime by day and month, and response times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jdatetime
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from dashboards.availability import Span, SpanUptime, day_spans, load_histories, spans_uptime
from dashboards.web.html import TEHRAN
from monitor.accounts import Principal, scope
from monitor.errors import InvalidInput, NotFound
from monitor.models import Monitor, MonitorState, ProbeResultRow, Service, State

__all__ = ["ServiceView", "customer_services", "service_for", "public_services", "daily_uptime",
           "month_span", "jalali_months", "latency_buckets", "parse_month", "worst_state", "tehran_midnight", "last_days",
           "tehran_days"]

WORST_FIRST = (State.DOWN, State.UNREACHABLE, State.DEGRADED, State.MAINTENANCE, State.UP, State.UNKNOWN)


@dataclass(slots=True)
class ServiceView:
    id: int
    name: str
    display_name: str
    customer_id: int
    public_status: bool
    monitor_ids: list[int]
    state: str

    @property
    def title(self) -> str:
        return self.display_name or self.name


def worst_state(states: list[str]) -> str:
    for s in WORST_FIRST:
        if s.value in states:
            return s.value
    return State.UNKNOWN.value


async def _views(sm: async_sessionmaker, stmt) -> list[ServiceView]:
    async with sm() as s:
        services = list((await s.execute(stmt)).scalars())
        ids = [x.id for x in services]
        rows = (await s.execute(select(Monitor.service_id, Monitor.id, MonitorState.state)
                                .outerjoin(MonitorState, MonitorState.monitor_id == Monitor.id)
                                .where(Monitor.service_id.in_(ids), Monitor.enabled.is_(True)))).all() if ids else []
    monitors: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
    for sid, mid, state in rows:
        monitors[sid].append((mid, state or State.UNKNOWN.value))
    return [ServiceView(x.id, x.name, x.display_name, x.customer_id, x.public_status,
                        [m for m, _ in monitors[x.id]], worst_state([st for _, st in monitors[x.id]]))
            for x in services]


async def customer_services(sm: async_sessionmaker, principal: Principal) -> list[ServiceView]:
    """The caller's services (a customer: only their own; staff: every customer's)."""
    return await _views(sm, scope(select(Service).order_by(Service.name), principal, Service.customer_id))


async def service_for(sm: async_sessionmaker, principal: Principal, service_id: int) -> ServiceView:
    found = await _views(sm, scope(select(Service).where(Service.id == service_id), principal,
                                   Service.customer_id))
    if not found:
        raise NotFound(f"service {service_id}")
    return found[0]


async def public_services(sm: async_sessionmaker) -> list[ServiceView]:
    """Services whose customers opted them in to the public status page."""
    return await _views(sm, select(Service).where(Service.public_status.is_(True)).order_by(Service.name))


def tehran_midnight(at: datetime) -> datetime:
    local = at.astimezone(TEHRAN)
    return datetime(local.year, local.month, local.day, tzinfo=TEHRAN).astimezone(UTC)


def last_days(days: int, now: datetime) -> list[Span]:
    """The last ``days`` Tehran days, today included."""
    return tehran_days(tehran_midnight(now - timedelta(days=days - 1)), days)


async def daily_uptime(sm: async_sessionmaker, monitor_ids: list[int], days: int, now: datetime
                       ) -> list[SpanUptime]:
    """Uptime per Tehran day for the last ``days`` days, today included."""
    spans = last_days(days, now)
    histories = await load_histories(sm, monitor_ids, spans[0].start, spans[-1].end)
    return spans_uptime(histories, spans, now)


def tehran_days(first: datetime, days: int) -> list[Span]:
    # Tehran has had no DST since 2022, but a day is cut at local midnight anyway so that old ranges hold.
    out, start = [], first
    for _ in range(days):
        nxt = tehran_midnight(start + timedelta(hours=36))
        out.append(Span(start, nxt))
        start = nxt
    return out if out else day_spans(first, 0)


def month_span(jy: int, jm: int) -> Span:
    start = jdatetime.datetime(jy, jm, 1, tzinfo=TEHRAN).togregorian()
    ny, nm = (jy + 1, 1) if jm == 12 else (jy, jm + 1)
    end = jdatetime.datetime(ny, nm, 1, tzinfo=TEHRAN).togregorian()
    return Span(start.astimezone(UTC), end.astimezone(UTC))


def jalali_months(jy: int) -> list[Span]:
    return [month_span(jy, m) for m in range(1, 13)]


def parse_month(value: str | None, now: datetime) -> tuple[int, int]:
    """``1405-09`` (Jalali year-month); empty means the current Tehran month."""
    if not value:
        today = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
        return today.year, today.month
    try:
        jy, jm = (int(x) for x in value.split("-", 1))
    except ValueError:
        raise InvalidInput("month", "expected a Jalali year and month like 1405-09") from None
    if not (1300 <= jy <= 1500 and 1 <= jm <= 12):
        raise InvalidInput("month", "expected a Jalali year and month like 1405-09")
    return jy, jm


async def latency_buckets(sm: async_sessionmaker, monitor_ids: list[int], start: datetime, end: datetime,
                          buckets: int) -> list[float | None]:
    """Average response time (ms) per equal slice of [start, end), from the stored results."""
    if not monitor_ids:
        return [None] * buckets
    width = (end - start).total_seconds() / buckets
    async with sm() as s:
        rows = (await s.execute(select(ProbeResultRow.at, ProbeResultRow.latency_s)
                                .where(ProbeResultRow.monitor_id.in_(monitor_ids), ProbeResultRow.at >= start,
                                       ProbeResultRow.at < end, ProbeResultRow.outcome != "down"))).all()
    sums, counts = [0.0] * buckets, [0] * buckets
    for at, latency in rows:
        i = min(buckets - 1, int((at - start).total_seconds() // width))
        sums[i] += latency
        counts[i] += 1
    return [sums[i] / counts[i] * 1000 if counts[i] else None for i in range(buckets)]


async def count_results(sm: async_sessionmaker, monitor_ids: list[int]) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(ProbeResultRow)
                                .where(ProbeResultRow.monitor_id.in_(monitor_ids)))).scalar_one()
