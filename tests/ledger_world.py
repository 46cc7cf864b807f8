"""A small world for ledger tests: two customers with a ticket each, an incident, two datacenters with
tariffs, technicians, a NOC lead, finance, an admin and the customers' own users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from incidents.models import Incident
from monitor.accounts import Principal, Role, create_user, principal_of
from monitor.models import Customer, Datacenter
from tickets.ledger.models import DatacenterTariff, LedgerEntry
from tickets.models import Ticket

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 1405/09/05 in Tehran
PER_VISIT, PER_TECH = 2_500_000, 750_000


@dataclass
class LedgerWorld:
    tech: Principal
    tech2: Principal
    lead: Principal
    admin: Principal
    finance: Principal
    alice: Principal
    bob: Principal
    customer_a: int
    customer_b: int
    ticket_a: int
    ticket_b: int
    incident_a: int
    infra_incident: int
    dc: int
    dc_free: int


def _ticket(customer_id: int, subject: str) -> Ticket:
    return Ticket(customer_id=customer_id, department="technical", subject=subject, opened_at=NOW,
                  sla_band="office", first_response_due=NOW + timedelta(hours=1))


def _incident(key: str, customer_id: int | None) -> Incident:
    return Incident(dedup_key=key, open_key=key, source="monitor", severity="urgent", title=key,
                    customer_id=customer_id, opened_at=NOW)


async def make_ledger_world(sm, *, secret: str = "beta") -> LedgerWorld:
    async with sm.begin() as s:
        a, b = Customer(name="acme", verified=True), Customer(name=secret, display_name=secret, verified=True)
        dc, dc_free = Datacenter(name="afranet"), Datacenter(name="asiatech")
        s.add_all([a, b, dc, dc_free])
        await s.flush()
        ta, tb = _ticket(a.id, "server down"), _ticket(b.id, f"{secret} server")
        ia, infra = _incident("srv-acme", a.id), _incident("core-switch", None)
        s.add_all([ta, tb, ia, infra,
                   DatacenterTariff(datacenter_id=dc.id, per_visit_rials=PER_VISIT, per_technician_rials=PER_TECH,
                                    effective_from=NOW - timedelta(days=365))])
        await s.flush()
        staff = [await create_user(s, n, r) for n, r in (("taha", Role.TECHNICIAN), ("tara", Role.TECHNICIAN),
                                                          ("nima", Role.NOC), ("root", Role.ADMIN),
                                                          ("fara", Role.FINANCE))]
        cust = [await create_user(s, n, Role.CUSTOMER, customer_id=c) for n, c in (("alice", a.id), ("bob", b.id))]
        p = [principal_of(u) for u in staff + cust]
        return LedgerWorld(*p, a.id, b.id, ta.id, tb.id, ia.id, infra.id, dc.id, dc_free.id)


async def entries(sm, **where) -> list[LedgerEntry]:
    async with sm() as s:
        stmt = select(LedgerEntry).filter_by(**where).order_by(LedgerEntry.id)
        return list((await s.execute(stmt)).scalars().all())


async def total(sm, **where) -> int:
    async with sm() as s:
        stmt = select(func.coalesce(func.sum(LedgerEntry.amount_rials), 0)).filter_by(**where)
        return int((await s.execute(stmt)).scalar_one())
