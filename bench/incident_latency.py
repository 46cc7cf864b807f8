"""Time from the confirming probe to the incident (and to the ticket, when the desk's auto-ticketing runs),
with many monitors running through the real service (scheduler, runner, evaluate, incident workers).

    PYTHONPATH=. python bench/incident_latency.py --monitors 2000 --interval 20 --failures 40

Every monitor checks a loopback HTTP target; after a warm-up, ``--failures`` of them start failing, spread
over one interval. The confirming probe's time is the flip's ``at``; the incident exists once the flip is
processed (``processed_at``), the ticket at its ``opened_at``. The peer, measured in the same run, is the
same service with the in-process wake-up detached (the periodic sweep only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import select, text

from incidents.models import Incident
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import Flip
from monitor.service import build_service
from monitor.settings import load_settings


async def start_target(status: dict[str, int]) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status.get(request.match_info["name"], 200), text="ok")

    app = web.Application()
    app.router.add_get("/m/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


def inventory(n: int, port: int, interval: float) -> str:
    customers = "\n".join(f"  - {{name: c{c}, verified: true, services: [{{name: s{c}}}]}}"
                          for c in range(n // 10 + 1))
    monitors = "\n".join(f"  - {{name: m{i}, kind: http, target: \"http://127.0.0.1:{port}/m/m{i}\", "
                         f"service: s{i // 10}, interval: {interval}}}" for i in range(n))
    return f"customers:\n{customers}\nmonitors:\n{monitors}\n"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def scratch_database(kind: str, tmp: str):
    """A fresh database per case: a SQLite file, or a PostgreSQL database created and dropped here."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"ngb_bench_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # its own loop: called from inside the bench's running loop
        pool.submit(asyncio.run, run()).result()


async def ticket_times(sm) -> dict[int, object]:
    """incident id -> ticket opened_at, if the desk's ticket table exists."""
    async with sm() as s:
        try:
            rows = await s.execute(text("SELECT incident_id, opened_at FROM tickets WHERE incident_id IS NOT NULL"))
        except Exception:
            return {}
        return {i: at for i, at in rows}


async def run_case(args, wake: bool) -> dict[str, list[float]]:
    status: dict[str, int] = {}
    target, port = await start_target(status)
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db, tmp) as url:
        settings = load_settings({}, database_url=url, listen_port=0, run_scheduler=True)
        service = await build_service(settings)
        try:
            inv, specs = parse_inventory(inventory(args.monitors, port, args.interval))
            await apply_inventory(service.sessionmaker, inv, specs, service.clock.now())
            workers = service.extras["incidents"]
            if not wake:
                workers.engine.wake = asyncio.Event()  # detached from the runner: the sweep alone
            await service.start()
            await asyncio.sleep(args.interval * 1.2)  # warm-up: every monitor checked and UP
            names = random.Random(1).sample(range(args.monitors), args.failures)
            for n in names:
                status[f"m{n}"] = 500
                await asyncio.sleep(args.interval / args.failures)
            return await collect(service, args, len(names))
        finally:
            await service.stop()
            await target.cleanup()


async def collect(service, args, expected: int) -> dict[str, list[float]]:
    deadline = time.monotonic() + args.interval * 3 + 30
    while time.monotonic() < deadline:
        async with service.sessionmaker() as s:
            rows = (await s.execute(select(Flip.at, Flip.processed_at, Flip.monitor_id)
                                    .where(Flip.new_state == "DOWN"))).all()
        if len(rows) >= expected and all(r.processed_at for r in rows):
            break
        await asyncio.sleep(0.5)
    tickets = await ticket_times(service.sessionmaker)
    incident_lat = [(r.processed_at - r.at).total_seconds() for r in rows if r.processed_at]
    async with service.sessionmaker() as s:
        by_monitor = dict((await s.execute(select(Incident.monitor_id, Incident.id))).all())
    at_by_monitor = {r.monitor_id: r.at for r in rows}
    ticket_lat = []
    for mid, iid in by_monitor.items():
        opened = tickets.get(iid)
        if opened is not None and mid in at_by_monitor:
            if isinstance(opened, str):  # SQLite hands a raw query's timestamps back as text
                opened = datetime.fromisoformat(opened)
            if opened.tzinfo is None:
                opened = opened.replace(tzinfo=UTC)
            ticket_lat.append((opened - at_by_monitor[mid]).total_seconds())
    return {"incident": incident_lat, "ticket": ticket_lat}


def report(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    over = sum(v > 1.0 for v in values)
    return (f"{name}: n={len(values)} p50={statistics.median(values) * 1000:.0f}ms "
            f"p90={percentile(values, 90) * 1000:.0f}ms p99={percentile(values, 99) * 1000:.0f}ms "
            f"max={max(values) * 1000:.0f}ms over_1s={over}")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--monitors", type=int, default=2000)
    p.add_argument("--interval", type=float, default=20.0)
    p.add_argument("--failures", type=int, default=40)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite",
                   help="a scratch SQLite file, or a scratch PostgreSQL database on 127.0.0.1:5432")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    woken = await run_case(args, wake=True)
    swept = await run_case(args, wake=False)
    print(f"monitors={args.monitors} interval={args.interval}s failures={args.failures} db={args.db}")
    for stage in ("incident", "ticket"):
        print("  wake-up  " + report(stage, woken[stage]))
        print("  sweep    " + report(stage, swept[stage]))
        if woken[stage] and swept[stage]:
            ratio = percentile(swept[stage], 99) / max(percentile(woken[stage], 99), 1e-6)
            print(f"  {stage} p99 ratio sweep/wake-up: {ratio:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
