"""The public status page under load: requests per second and latency of ``/status`` and
``/status/feed.atom`` with 200 public services and 90 days of history, without and with the page's cache.

The app runs in its own process (``--serve``, one event loop, as one node of the service would) on a
loopback port; this process is the load: ``--clients`` concurrent aiohttp clients, each sending its next
request as soon as the last one is answered, for a bounded ``--seconds`` per path and mode. No request
starts after the deadline; those under way are waited for (``drain_s``) and counted, and requests per second
are over the whole time, drain included.

Modes: ``uncached`` replaces the status cache with one that renders every request (what the page would cost
without it); ``cached`` is the service as it runs (one shared render at most ``STATUS_TTL_S`` old, renders
single-flight).

Data: ``--services`` public services in 8 status-page groups, one monitor each, 100 days of flips (a
10-minute outage every 36 hours per monitor, staggered), the engine's rollup rows for the 90 days (hourly)
and the months around them (daily), 30 resolved incidents of the last 14 days and 2 open ones, each with two
public updates; every tenth service is DOWN now (a partial outage banner).

Usage: ``python bench/status_rps.py [DATABASE_URL] [--services 200] [--clients 50] [--seconds 20]``
(default database: a scratch SQLite file; a PostgreSQL URL names a scratch database that is dropped and
created again).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from all_models import load_all  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from dashboards.web.app import build_app  # noqa: E402
from dashboards.web.deps import WebDeps  # noqa: E402
from dashboards.web.status_routes import STATUS_CACHE  # noqa: E402
from incidents.models import Incident, IncidentAffected  # noqa: E402
from incidents.statuspage.models import PublicUpdate  # noqa: E402
from monitor.clock import SystemClock  # noqa: E402
from monitor.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from monitor.models import Customer, Flip, Monitor, MonitorState, RollupArchive, Service  # noqa: E402
from monitor.rollups import DAY, HOUR, Bucket, month_index, pack  # noqa: E402

GROUPS = ("میزبانی وب", "ایمیل", "سرور مجازی", "سرور اختصاصی", "دامنه و دی‌ان‌اس", "پایگاه داده", "ذخیره‌سازی",
          "شبکه")


async def populate(sm, services: int, now: datetime) -> None:
    ids = list(range(1, services + 1))
    async with sm.begin() as s:
        await s.execute(insert(Customer), [{"id": 1, "name": "bench", "display_name": "مشتری", "verified": True}])
        await s.execute(insert(Service), [{"id": i, "name": f"svc-{i}", "display_name": f"سرویس آزمایشی {i}",
                                           "customer_id": 1, "public_status": True,
                                           "status_group": GROUPS[i % len(GROUPS)]} for i in ids])
        await s.execute(insert(Monitor), [{"id": i, "name": f"mon-{i}", "kind": "http",
                                           "target": f"http://127.0.0.1:9/{i}", "service_id": i} for i in ids])
        await s.execute(insert(MonitorState), [{"monitor_id": i, "state": "DOWN" if i % 10 == 0 else "UP",
                                                "since": now - timedelta(hours=1)} for i in ids])
        flips = []
        for i in ids:
            t = now - timedelta(days=100)
            flips.append({"monitor_id": i, "at": t, "old_state": "UNKNOWN", "new_state": "UP", "processed_at": t})
            t += timedelta(minutes=7 * i)
            while t < now - timedelta(minutes=10):
                flips += [{"monitor_id": i, "at": t, "old_state": "UP", "new_state": "DOWN", "processed_at": t},
                          {"monitor_id": i, "at": t + timedelta(minutes=10), "old_state": "DOWN",
                           "new_state": "UP", "processed_at": t}]
                t += timedelta(hours=36)
        await s.execute(insert(Flip), flips)
        end_day = int(now.timestamp()) // DAY
        periods = sorted({month_index(d)[0] for d in range(end_day - 100, end_day + 1)})
        day = Bucket(288, 286, 0, 2, 0.01, 288 * 0.05, 0.4)
        hour = Bucket(12, 12, 0, 0, 0.01, 0.6, 0.1)
        await s.execute(insert(RollupArchive), [{"monitor_id": m, "resolution": DAY, "period": p,
                                                 "slots": pack([day] * 31)} for m in ids for p in periods])
        await s.execute(insert(RollupArchive), [{"monitor_id": m, "resolution": HOUR, "period": d,
                                                 "slots": pack([hour] * 24)}
                                                for m in ids for d in range(end_day - 90, end_day + 1)])
        for n in range(32):
            svc = ids[(n * 7) % len(ids)]
            opened = now - timedelta(hours=10 * n + 1)
            resolved = None if n < 2 else opened + timedelta(minutes=40)
            inc = Incident(dedup_key=f"monitor:{svc}", source="monitor", severity="urgent" if n % 3 else "important",
                           status="triggered" if resolved is None else "resolved", title=f"mon-{svc} is DOWN",
                           service_id=svc, customer_id=1, opened_at=opened, resolved_at=resolved)
            s.add(inc)
            await s.flush()
            s.add(IncidentAffected(incident_id=inc.id, key=f"monitor:{svc}", monitor_id=svc, service_id=svc,
                                   customer_id=1, added_at=opened))
            s.add_all([PublicUpdate(incident_id=inc.id, at=opened + timedelta(minutes=5), status="investigating",
                                    text="در حال بررسی مشکل هستیم."),
                       PublicUpdate(incident_id=inc.id, at=opened + timedelta(minutes=30),
                                    status="resolved" if resolved else "identified",
                                    text="علت پیدا شد و مشکل برطرف شد." if resolved else "علت پیدا شد.")])


class _Uncached:
    """The status cache's interface, rendering every request: what the page costs without the cache."""

    renders = 0

    async def get(self, _key, render):
        self.renders += 1
        return await render()


def serve(url: str, port: int, mode: str) -> None:
    load_all()
    engine = make_engine(url)
    deps = WebDeps(sessionmaker=make_sessionmaker(engine), clock=SystemClock(), registry=CollectorRegistry(),
                   support_channels=[("تلفن اضطراری", "۰۲۱-۰۰۰۰۰۰۰۰")])
    app = build_app(deps)
    if mode == "uncached":
        app[STATUS_CACHE] = _Uncached()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def load(base: str, path: str, clients: int, seconds: float) -> dict:
    """``clients`` loops for ``seconds``: none starts a request after the deadline, and the ones under way
    are waited for (so the server is idle again for the next measurement); throughput is what was answered
    over the whole time, the drain included."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=300)
    # The gzipped bytes are read, not inflated: a visitor's browser inflates the page on its own CPU, and
    # inflating 1.26 MB per answer in this one load process would measure the load, not the server.
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                     headers={"Accept-Encoding": "gzip"}) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                async with session.get(base + path) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    return {"requests": len(lat), "rps": len(lat) / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": lat[-1] * 1000 if lat else float("nan"), "drain_s": max(0.0, elapsed - seconds),
            "errors": errors}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_ready(base: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.returncode is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                async with session.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


async def _first_render_ms(base: str, path: str) -> tuple[float, int, int]:
    async with aiohttp.ClientSession() as session:
        t = time.perf_counter()
        async with session.get(base + path) as resp:
            body = await resp.read()
            assert resp.status == 200, (path, resp.status)
        return (time.perf_counter() - t) * 1000, len(body), int(resp.headers.get("Content-Length", len(body)))


async def _scratch_pg(url: str, *, create: bool) -> None:
    u = make_url(url)
    admin = make_engine(u.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT", pool_size=1)
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}"'))
        if create:
            await conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    await admin.dispose()


async def main(args) -> None:
    load_all()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite+aiosqlite:///{tmp}/status-bench.db"
        if url.startswith("postgresql"):
            await _scratch_pg(url, create=True)
        engine = make_engine(url)
        await upgrade(engine)
        t = time.perf_counter()
        await populate(make_sessionmaker(engine), args.services, datetime.now(UTC))
        await engine.dispose()
        print(f"database={make_url(url).get_backend_name()} services={args.services} clients={args.clients} "
              f"seconds={args.seconds:g} (populated in {time.perf_counter() - t:.1f} s)")
        print(f"{'mode':<9} {'path':<18} {'first_ms':>9} {'bytes':>8} {'on_wire':>8} {'requests':>9} {'req/s':>8} {'p50_ms':>8} "
              f"{'p99_ms':>8} {'max_ms':>8} {'drain_s':>7} {'errors':>6}")
        for mode in ("uncached", "cached"):
            port = _free_port()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", url, "--port", str(port), "--mode", mode,
                env={**os.environ, "PYTHONPATH": str(ROOT)})
            base = f"http://127.0.0.1:{port}"
            try:
                await _wait_ready(base, proc)
                for path in ("/status", "/status/feed.atom"):
                    first, size, wire = await _first_render_ms(base, path)
                    r = await load(base, path, args.clients, args.seconds)
                    print(f"{mode:<9} {path:<18} {first:>9.1f} {size:>8} {wire:>8} {r['requests']:>9} {r['rps']:>8.1f} "
                          f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['drain_s']:>7.1f} "
                          f"{r['errors']:>6}", flush=True)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        if url.startswith("postgresql"):
            await _scratch_pg(url, create=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="database URL (default: a scratch SQLite file)")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("uncached", "cached"), help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve:
        serve(ns.serve, ns.port, ns.mode)
    else:
        asyncio.run(main(ns))
