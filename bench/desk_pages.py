"""The desk's pages at 2,500 customers and 50,000 tickets: p50/p95/p99 of each page, on SQLite and PostgreSQL.

Measured through the real app on loopback (aiohttp's TestServer, a bearer token, ``Accept: text/html``),
one request at a time, ``--rounds`` each after one warm-up:

* ``/desk`` (the first page of the open queue), ``/desk?department=technical&overdue=1`` (a filtered page) and
  ``/desk?page=40`` (a deep page);
* ``/desk/tickets/{id}`` (a ticket with a thread, a monitor and an incident);
* ``/desk/sla`` (this Jalali month's report);
* ``/portal/tickets`` for the customer with the most tickets (2,000).

The data is bulk-inserted (Core ``INSERT`` of lists): 2,500 customers with a service each, 50,000 tickets
spread over 180 days, 10% still open (the queue), one customer holding 2,000 of them. PostgreSQL runs in a
scratch database created and dropped here. Target: p95 under 300 ms for every page (issue 13).

Usage: ``python bench/desk_pages.py [--db sqlite|postgresql|both] [--rounds 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from aiohttp import ClientSession  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from all_models import load_all  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from dashboards.web.app import build_app  # noqa: E402
from dashboards.web.deps import WebDeps  # noqa: E402
from incidents.models import Incident  # noqa: E402
from monitor.accounts import Role, User, issue_token  # noqa: E402
from monitor.clock import ManualClock  # noqa: E402
from monitor.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from monitor.models import Customer, Monitor, MonitorState, Service  # noqa: E402
from tickets.models import Ticket, TicketMessage  # noqa: E402

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("NEGAHBAN_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CUSTOMERS, TICKETS, HEAVY = 2500, 50_000, 2000
TARGET_MS = 300.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


async def pg_admin(sql: str) -> None:
    engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def populate(sm) -> dict:
    rnd = random.Random(13)
    async with sm.begin() as s:
        await s.execute(insert(Customer.__table__), [
            {"name": f"cust-{i:04d}", "display_name": f"مشتری {i}", "verified": True} for i in range(CUSTOMERS)])
        cust = [r for (r,) in (await s.execute(select(Customer.id).order_by(Customer.id)))]
        await s.execute(insert(Service.__table__), [
            {"name": f"svc-{i:04d}", "display_name": f"سرویس {i}", "customer_id": c} for i, c in enumerate(cust)])
        svc = dict((await s.execute(select(Service.customer_id, Service.id))).all())
        tech = User(username="tara", role=Role.TECHNICIAN, active=True)
        heavy_user = User(username="heavy", role=Role.CUSTOMER, customer_id=cust[0], active=True)
        s.add_all([tech, heavy_user])
        await s.flush()
        rows = []
        for i in range(TICKETS):
            c = cust[0] if i < HEAVY else rnd.choice(cust)
            opened = NOW - timedelta(minutes=rnd.randrange(0, 180 * 24 * 60))
            is_open = rnd.random() < 0.10
            band = "office" if rnd.random() < 0.6 else "outside"
            due = opened + timedelta(hours=1 if band == "office" else 3)
            answered = None if is_open and rnd.random() < 0.6 else opened + timedelta(minutes=rnd.randrange(5, 300))
            rows.append({
                "customer_id": c, "service_id": svc[c], "department": rnd.choice(("technical", "financial", "sales")),
                "source": "customer", "subject": f"درخواست شمارهٔ {i}", "body": "متن درخواست مشتری", "fields": {},
                "status": rnd.choice(("open", "answered", "waiting_on_customer")) if is_open else "closed",
                "priority": rnd.choice(("urgent", "important", "normal")), "requested_priority": "normal",
                "scope": rnd.choice((None, "in", "out")), "assignee_id": tech.id if rnd.random() < 0.2 else None,
                "opened_at": opened, "sla_band": band, "first_response_due": due,
                "first_response_at": answered if (answered and answered <= NOW) else None,
                "closed_at": None if is_open else opened + timedelta(days=1), "shown_article_ids": []})
        for k in range(0, len(rows), 5000):
            await s.execute(insert(Ticket.__table__), rows[k:k + 5000])
        ticket_id = (await s.execute(select(Ticket.id).where(Ticket.customer_id == cust[0],
                                                             Ticket.status == "open").limit(1))).scalar_one()
        await s.execute(insert(TicketMessage.__table__), [
            {"ticket_id": ticket_id, "author_kind": ("customer", "staff", "internal")[j % 3], "author_id": tech.id,
             "body": f"پیام {j}", "at": NOW - timedelta(minutes=60 - j)} for j in range(12)])
        mon = Monitor(name="svc-0000-http", kind="http", target="http://127.0.0.1/", service_id=svc[cust[0]])
        s.add(mon)
        await s.flush()
        s.add(MonitorState(monitor_id=mon.id, state="DOWN", since=NOW))
        s.add(Incident(dedup_key="k", open_key="k", source="monitor", severity="urgent", status="triggered",
                       title="قطعی", service_id=svc[cust[0]], opened_at=NOW))
        tokens = {"tara": await issue_token(s, tech.id, "bench", NOW),
                  "heavy": await issue_token(s, heavy_user.id, "bench", NOW)}
    return {"ticket_id": ticket_id, "tokens": tokens}


async def timed(http: ClientSession, url: str, token: str, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    out = []
    for i in range(n + 1):
        t = time.perf_counter()
        async with http.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, (url, resp.status)
        if i:  # the first is a warm-up
            out.append((time.perf_counter() - t) * 1000)
    return out


async def run(kind: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            url, scratch = f"sqlite+aiosqlite:///{tmp}/bench.db", None
        else:
            scratch = f"ngb_bench_desk_{uuid.uuid4().hex[:6]}"
            await pg_admin(f'CREATE DATABASE "{scratch}"')
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + scratch
        engine = make_engine(url)
        try:
            await upgrade(engine)
            sm = make_sessionmaker(engine)
            t0 = time.perf_counter()
            world = await populate(sm)
            if kind == "postgresql":
                async with engine.connect() as conn:
                    await conn.execute(text("ANALYZE"))
            print(f"database={kind} customers={CUSTOMERS} tickets={TICKETS} "
                  f"populated_in_s={time.perf_counter() - t0:.1f}")
            deps = WebDeps(sessionmaker=sm, clock=ManualClock(NOW), registry=CollectorRegistry(),
                           cookie_secure=False)
            server = TestServer(build_app(deps), host="127.0.0.1")
            await server.start_server()
            base = str(server.make_url("")).rstrip("/")
            pages = [("desk_first_page", "/desk", "tara"),
                     ("desk_filtered", "/desk?department=technical&overdue=1", "tara"),
                     ("desk_deep_page", "/desk?page=40", "tara"),
                     ("desk_ticket", f"/desk/tickets/{world['ticket_id']}", "tara"),
                     ("desk_sla", "/desk/sla", "tara"),
                     ("portal_tickets_2000", "/portal/tickets", "heavy")]
            try:
                async with ClientSession() as http:
                    for name, path, who in pages:
                        ms = await timed(http, base + path, world["tokens"][who], rounds)
                        p95 = pct(ms, 95)
                        print(f"{kind} {name} n={len(ms)} p50={statistics.median(ms):.1f} p95={p95:.1f} "
                              f"p99={pct(ms, 99):.1f} max={max(ms):.1f} ms "
                              f"{'ok' if p95 < TARGET_MS else 'MISSES'} (p95 < {TARGET_MS:g})")
            finally:
                await server.close()
        finally:
            await engine.dispose()
            if scratch:
                await pg_admin(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


async def main(which: str, rounds: int) -> None:
    load_all()
    print("load average before " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    for kind in ("sqlite", "postgresql") if which == "both" else (which,):
        await run(kind, rounds)
    print("load average after " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=40)
    a = ap.parse_args()
    asyncio.run(main(a.db, a.rounds))
