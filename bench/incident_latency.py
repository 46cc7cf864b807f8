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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import select, text

from incidents.models import Incident
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import Flip, Monitor
from monitor.policy import Policy
from monitor.settings import load_settings
from negahban.service import build_service


async def start_target(status: dict[str, int]) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status.get(request.match_info["name"], 200), text="ok")

    app = web.Application()
    app.router.add_get("/m/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


def inventory(n: int, port: int, interval: float, faults: list[str] = (), failing: set[int] = frozenset(),
              steady_port: int | None = None) -> str:
    """``failing`` monitors check the bench's own (switchable) target; the rest, when ``steady_port`` is
    given, check bench/targets.py in a process of its own, so the service's loop is not also serving them."""
    customers = "\n".join(f"  - {{name: c{c}, verified: true, services: [{{name: s{c}}}]}}"
                          for c in range(n // 10 + 1))
    monitors = [f"  - {{name: m{i}, kind: http, target: \"http://127.0.0.1:"
                f"{port if steady_port is None or i in failing else steady_port}/m/m{i}\", "
                f"service: s{i // 10}, interval: {interval}}}" for i in range(n)]
    monitors += [f"  - {{name: f{i}, kind: tcp, target: \"{addr}:80\", timeout_s: {FAULT_TIMEOUT_S}, "
                 f"service: s{i}, interval: {interval}}}" for i, addr in enumerate(faults)]
    return f"customers:\n{customers}\nmonitors:\n" + "\n".join(monitors) + "\n"


FAULT_TIMEOUT_S = 1.0  # the namespace monitors' probe timeout: a cut link is a connect that never answers


class SteadyTargets:
    """bench/targets.py (HTTP 200 on every 127.x address) in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("targets.py"))],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[0])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class FaultHosts:
    """(b) hosts behind a link: one network namespace per fault, a veth into it, a TCP listener inside
    (served by this loop). ``cut(i)`` takes link i down once and returns the wall-clock time of the fault."""

    def __init__(self, n: int) -> None:
        from tests.netns import Netns  # the tests' helper: unique names, root namespace untouched
        self.nses, self.links, self.servers = [], [], []
        try:
            for _ in range(n):
                ns = Netns.create("ngbb")
                self.nses.append(ns)
                self.links.append(ns.veth())
        except BaseException:
            self.delete()
            raise

    @property
    def addresses(self) -> list[str]:
        return [link.ns_addr for link in self.links]

    async def listen(self) -> None:
        for ns, link in zip(self.nses, self.links, strict=True):
            sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((link.ns_addr, 80))
            sock.listen(64)
            sock.setblocking(False)
            self.servers.append(await asyncio.get_running_loop().create_server(asyncio.Protocol, sock=sock))

    def cut(self, i: int) -> datetime:
        at = datetime.now(UTC)
        self.links[i].down()
        return at

    def delete(self) -> None:
        for server in self.servers:
            server.close()
        for ns in self.nses:
            ns.delete()


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
    hosts = FaultHosts(args.faults if wake else 0)
    steady = SteadyTargets()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db, tmp) as url:
        settings = load_settings({}, database_url=url, listen_port=0, run_scheduler=True)
        service = await build_service(settings)
        try:
            await hosts.listen()
            names = random.Random(1).sample(range(args.monitors), args.failures)
            inv, specs = parse_inventory(inventory(args.monitors, port, args.interval, hosts.addresses,
                                                   set(names), steady.port))
            await apply_inventory(service.sessionmaker, inv, specs, service.clock.now())
            workers = service.extras["incidents"]
            if not wake:
                workers.engine.wake = asyncio.Event()  # detached from the runner: the sweep alone
            await service.start()
            await asyncio.sleep(args.interval * 1.2)  # warm-up: every monitor checked and UP
            cuts = asyncio.create_task(cut_links(hosts, args.interval))
            for n in names:
                status[f"m{n}"] = 500
                await asyncio.sleep(args.interval / args.failures)
            faults = await cuts
            result = await collect(service, args, len(names) + len(faults))
            result["fault"] = await fault_latencies(service.sessionmaker, faults)
            return result
        finally:
            await service.stop()
            await target.cleanup()
            hosts.delete()
            steady.stop()


async def cut_links(hosts: FaultHosts, interval: float) -> dict[str, datetime]:
    """Cut each namespace's link once, at random moments over one interval (so at every phase of the
    monitors' check cycle). Returns monitor name -> the fault's wall-clock time."""
    rng = random.Random(2)
    plan = sorted((rng.uniform(0, interval), i) for i in range(len(hosts.links)))
    start, faults = time.monotonic(), {}
    for offset, i in plan:
        await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
        faults[f"f{i}"] = await asyncio.to_thread(hosts.cut, i)
    return faults


async def fault_latencies(sm, faults: dict[str, datetime]) -> list[float]:
    """Fault (link down) -> ticket opened, per namespace monitor."""
    tickets = await ticket_times(sm)
    async with sm() as s:
        rows = (await s.execute(select(Monitor.name, Incident.id).join(Incident, Incident.monitor_id == Monitor.id)
                                .where(Monitor.name.in_(list(faults))))).all()
    return [(_aware(tickets[iid]) - faults[name]).total_seconds() for name, iid in rows if iid in tickets]


def _aware(opened) -> datetime:
    if isinstance(opened, str):  # SQLite hands a raw query's timestamps back as text
        opened = datetime.fromisoformat(opened)
    return opened if opened.tzinfo is not None else opened.replace(tzinfo=UTC)


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
            ticket_lat.append((_aware(opened) - at_by_monitor[mid]).total_seconds())
    return {"incident": incident_lat, "ticket": ticket_lat}


def report(name: str, values: list[float], unit_over: float = 1.0) -> str:
    if not values:
        return f"{name}: no samples"
    over = sum(v > unit_over for v in values)
    return (f"{name}: n={len(values)} p50={statistics.median(values) * 1000:.0f}ms "
            f"p90={percentile(values, 90) * 1000:.0f}ms p99={percentile(values, 99) * 1000:.0f}ms "
            f"max={max(values) * 1000:.0f}ms over_{unit_over:g}s={over}")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--monitors", type=int, default=2000)
    p.add_argument("--interval", type=float, default=20.0)
    p.add_argument("--failures", type=int, default=40)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite",
                   help="a scratch SQLite file, or a scratch PostgreSQL database on 127.0.0.1:5432")
    p.add_argument("--faults", type=int, default=0,
                   help="(b) extra monitors behind a veth in a network namespace each, each link cut once")
    p.add_argument("--no-peer", action="store_true", help="skip the sweep-only peer run (halves the time)")
    args = p.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the namespaces and the targets' process are removed on the way out
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logging.basicConfig(level=logging.WARNING)
    woken = await run_case(args, wake=True)
    swept = {"incident": [], "ticket": []} if args.no_peer else await run_case(args, wake=False)
    print(f"monitors={args.monitors} interval={args.interval}s failures={args.failures} db={args.db}")
    for stage in ("incident", "ticket"):
        print("  wake-up  " + report(stage, woken[stage]))
        if not args.no_peer:
            print("  sweep    " + report(stage, swept[stage]))
        if woken[stage] and swept[stage]:
            ratio = percentile(swept[stage], 99) / max(percentile(woken[stage], 99), 1e-6)
            print(f"  {stage} p99 ratio sweep/wake-up: {ratio:.1f}x")
    if args.faults:
        policy = Policy()
        target = args.interval + (policy.down_after - 1) * policy.retry_interval_s + 2
        print("  fault->ticket " + report("link down", woken["fault"], unit_over=target)
              + f" target_p99<={target:.0f}s (interval {args.interval:g} + {policy.down_after - 1} re-checks x "
              f"{policy.retry_interval_s:g}s + 2; probe timeout {FAULT_TIMEOUT_S:g}s)")


if __name__ == "__main__":
    asyncio.run(main())
