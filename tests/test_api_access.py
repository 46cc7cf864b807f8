"""Every route declares its roles, and no customer reaches another customer's data through any route.

The test walks the app's route tables, so a route added later is checked without editing this file,
except to add a row of the other tenant for a new kind of path parameter (``OTHER_TENANT_IDS``).
"""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from dashboards.web.app import ROUTE_TABLES, build_app
from dashboards.web.deps import WebDeps
from incidents.models import Incident, IncidentAffected, NotificationChannel
from monitor.accounts import ApiToken, Role, create_user, issue_token
from monitor.models import Customer, Monitor, Service

SECRET = "zz-secret-of-b"


async def _world(sm, now) -> dict:
    async with sm.begin() as s:
        a = Customer(name="cust-a", display_name="A", verified=True)
        b = Customer(name="cust-b", display_name=SECRET, verified=True)
        s.add_all([a, b])
        await s.flush()
        sa_, sb = Service(name="svc-a", customer_id=a.id), Service(name=f"svc-{SECRET}", customer_id=b.id)
        s.add_all([sa_, sb])
        await s.flush()
        ma = Monitor(name="mon-a", kind="http", target="http://127.0.0.1:9/", service_id=sa_.id)
        mb = Monitor(name=f"mon-{SECRET}", kind="http", target="http://127.0.0.1:9/b", service_id=sb.id)
        s.add_all([ma, mb])
        await s.flush()
        inc = Incident(dedup_key=f"monitor:{mb.id}", open_key=f"monitor:{mb.id}", source="monitor",
                       severity="urgent", title=f"{SECRET} down", monitor_id=mb.id, service_id=sb.id,
                       customer_id=b.id, opened_at=now)
        s.add(inc)
        await s.flush()
        s.add(IncidentAffected(incident_id=inc.id, key=f"monitor:{mb.id}", monitor_id=mb.id, service_id=sb.id,
                               customer_id=b.id, added_at=now))
        users, user_ids = {}, {}
        for name, role, cid in (("alice", Role.CUSTOMER, a.id), ("bob", Role.CUSTOMER, b.id),
                                ("nora", Role.NOC, None)):
            u = await create_user(s, name, role, customer_id=cid)
            users[name], user_ids[name] = await issue_token(s, u.id, "t", now), u.id
        channel = NotificationChannel(name=f"b-{SECRET}", kind="sms", address="0912", audience="customer",
                                      customer_id=b.id)
        s.add(channel)
        await s.flush()
        token_id = (await s.execute(select(ApiToken.id).where(ApiToken.user_id == user_ids["bob"]))).scalar_one()
        desk_ids = await _desk_rows_of_b(s, b.id, sb.id, now)
        ledger_ids = await _ledger_rows_of(s, b.id, now)
        return {"tokens": users, "b": {"service_id": sb.id, "monitor_id": mb.id, "customer_id": b.id, **desk_ids,
                                       **ledger_ids, "incident_id": inc.id, "user_id": user_ids["bob"],
                                       "token_id": token_id, "channel_id": channel.id}}


async def _desk_rows_of_b(s, customer_id: int, service_id: int, now) -> dict:
    """B's ticket, fine and a knowledge-base article, for the desk's routes (tickets/, api_tickets)."""
    from datetime import timedelta

    from tickets.models import Fine, KbArticle, Ticket

    t = Ticket(customer_id=customer_id, service_id=service_id, department="technical", subject=SECRET,
               body=SECRET, opened_at=now, sla_band="office", first_response_due=now)
    s.add(t)
    await s.flush()
    f = Fine(customer_id=customer_id, ticket_id=t.id, amount_rials=10, due_at=now - timedelta(days=1),
             created_at=now)
    a = KbArticle(title="راهنما", body="متن", updated_at=now)
    s.add_all([f, a])
    await s.flush()
    return {"ticket_id": t.id, "fine_id": f.id, "article_id": a.id, "kind": "closure", "day": "2026-01-01"}


async def _ledger_rows_of(s, customer_id: int, now) -> dict:
    """Another tenant's ledger rows: a ticket, a datacenter visit and an entry, and a month of statement."""
    from datetime import timedelta

    from monitor.models import Datacenter
    from tickets.ledger.models import DatacenterVisit, LedgerEntry
    from tickets.models import Ticket

    dc = Datacenter(name=f"dc-{SECRET}")
    ticket = Ticket(customer_id=customer_id, department="technical", subject=SECRET, opened_at=now,
                    sla_band="office", first_response_due=now + timedelta(hours=1))
    s.add_all([dc, ticket])
    await s.flush()
    visit = DatacenterVisit(datacenter_id=dc.id, customer_id=customer_id, ticket_id=ticket.id, departed_at=now,
                            returned_at=now, cause="customer_server", notes=SECRET, recorded_at=now)
    entry = LedgerEntry(customer_id=customer_id, kind="fine", amount_rials=1, idempotency_key=SECRET,
                        description=SECRET, posted_at=now, ticket_id=ticket.id)
    s.add_all([visit, entry])
    await s.flush()
    return {"visit_id": visit.id, "entry_id": entry.id, "year": 1405, "month": 9}


@pytest.fixture
async def world(db, clock):
    w = await _world(db.sessionmaker, clock.now())
    app = build_app(WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        w["client"] = client
        yield w


def _entries():
    return [e for table in ROUTE_TABLES for e in table.entries]


def _fill(path: str, ids: dict) -> str:
    def sub(m):
        name = m.group(1).split(":")[0]
        assert name in ids, f"add a row of the other tenant for path parameter {name!r} to this test"
        return str(ids[name])

    return re.sub(r"\{([^}]+)\}", sub, path)


def test_every_route_declares_roles_or_is_explicitly_public():
    for e in _entries():
        assert e.public or e.roles, f"{e.method} {e.path}"


async def test_no_customer_route_shows_or_changes_another_customers_data(world):
    client, alice = world["client"], world["tokens"]["alice"]
    checked = 0
    for e in _entries():
        if e.public or Role.CUSTOMER not in e.roles:
            continue
        path = _fill(e.path, world["b"])
        resp = await client.request(e.method, path, headers={"Authorization": f"Bearer {alice}"},
                                    json={} if e.method != "GET" else None)
        body = await resp.text()
        assert SECRET not in body, f"{e.method} {e.path} leaked another tenant's data"
        if "{" in e.path or e.method != "GET":
            assert resp.status in (400, 403, 404), f"{e.method} {e.path} -> {resp.status}"
        checked += 1
    assert checked >= 4


async def test_staff_only_routes_refuse_customers_and_anonymous_callers(world):
    client, alice = world["client"], world["tokens"]["alice"]
    for e in _entries():
        if e.public:
            continue
        path = _fill(e.path, world["b"])
        anon = await client.request(e.method, path)
        assert anon.status == 401, f"{e.method} {e.path} answered an anonymous caller"
        if Role.CUSTOMER not in e.roles:
            resp = await client.request(e.method, path, headers={"Authorization": f"Bearer {alice}"})
            assert resp.status == 403, f"{e.method} {e.path}"


async def test_a_customer_sees_their_own_services_and_staff_see_all(world):
    client = world["client"]
    mine = await (await client.get("/api/v1/services",
                                   headers={"Authorization": f"Bearer {world['tokens']['alice']}"})).json()
    assert [s["name"] for s in mine] == ["svc-a"]
    staff = await (await client.get("/api/v1/services",
                                    headers={"Authorization": f"Bearer {world['tokens']['nora']}"})).json()
    assert {s["name"] for s in staff} == {"svc-a", f"svc-{SECRET}"}


async def test_an_unknown_or_revoked_token_is_refused(world):
    resp = await world["client"].get("/api/v1/me", headers={"Authorization": "Bearer ngb_not-a-token"})
    assert resp.status == 401
