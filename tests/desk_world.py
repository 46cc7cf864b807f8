"""A small world for the desk's tests: verified customers A and B, unverified C, a service each, and users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.accounts import Principal, Role, create_user, principal_of
from monitor.models import Customer, Monitor, MonitorState, Server, Service
from tickets.calendar import TEHRAN


def tehran(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """An instant given in Tehran wall-clock time, as aware UTC."""
    return datetime(y, m, d, hh, mm, tzinfo=TEHRAN).astimezone(UTC)


@dataclass
class World:
    a: Principal
    b: Principal
    c: Principal
    noc: Principal
    admin: Principal
    finance: Principal
    service_a: int
    service_b: int
    service_c: int
    server_a: int
    customer_a: int
    customer_b: int


async def make_world(sm) -> World:
    async with sm.begin() as s:
        ca, cb = Customer(name="acme", verified=True), Customer(name="beta", verified=True)
        cc = Customer(name="cat", verified=False)
        s.add_all([ca, cb, cc])
        await s.flush()
        sa, sb, sc = (Service(name=f"svc-{c.name}", customer_id=c.id) for c in (ca, cb, cc))
        s.add_all([sa, sb, sc])
        await s.flush()
        server = Server(name="srv-acme", address="192.0.2.10", service_id=sa.id)
        s.add(server)
        await s.flush()
        users = [await create_user(s, n, Role.CUSTOMER, customer_id=c.id) for n, c in
                 (("alice", ca), ("bob", cb), ("carol", cc))]
        users += [await create_user(s, n, r) for n, r in
                  (("nima", Role.NOC), ("admin", Role.ADMIN), ("fara", Role.FINANCE))]
        p = [principal_of(u) for u in users]
        return World(*p, sa.id, sb.id, sc.id, server.id, ca.id, cb.id)


async def set_monitor_state(sm, *, service_id: int | None = None, server_id: int | None = None,
                            state: str, name: str) -> None:
    async with sm.begin() as s:
        mon = Monitor(name=name, kind="http", target="http://127.0.0.1/", service_id=service_id,
                      server_id=server_id)
        s.add(mon)
        await s.flush()
        s.add(MonitorState(monitor_id=mon.id, state=state))


def technical_draft(service_id: int, **over) -> dict:
    draft = {"department": "technical", "service_id": service_id, "subject": "قطعی سرور",
             "body": "سرور من از صبح قطع است و سایت بالا نمی‌آید", "server_address": "192.0.2.10",
             "started_at": "امروز ساعت ۸ صبح", "priority": "important"}
    return draft | over
