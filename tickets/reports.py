"""The monthly first-response report (rule 17), read from the tickets opened in one Jalali month."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.accounts import STAFF, Principal, require_role
from tickets import audit
from tickets.models import Ticket
from tickets.sla import BANDS, BandReport, SlaTargets, band_report, jalali_month_span

__all__ = ["monthly_sla_report"]


async def monthly_sla_report(sm: async_sessionmaker, principal: Principal, jyear: int, jmonth: int, *,
                             now: datetime, targets: SlaTargets = SlaTargets()) -> dict[str, BandReport]:
    require_role(principal, STAFF)
    start, end = jalali_month_span(jyear, jmonth)
    stmt = select(Ticket.sla_band, Ticket.opened_at, Ticket.first_response_due, Ticket.first_response_at).where(
        Ticket.opened_at >= start, Ticket.opened_at < end)
    async with sm.begin() as session:
        rows = (await session.execute(stmt)).all()
        await audit.record(session, principal, audit.READ_REPORT, customer_id=None,
                           subject=f"sla {jyear}-{jmonth:02d}", now=now)
    return {band: band_report(band, [(o, d, f) for b, o, d, f in rows if b == band], targets) for band in BANDS}
