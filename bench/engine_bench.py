"""The whole service under 10,000 monitors, against blackbox_exporter measured in the same run.

    PYTHONPATH=. /work/venv/bin/python bench/engine_bench.py [--db sqlite|postgresql] [--monitors 10000]
        [--interval 30] [--seconds 300] [--blackbox-rate 50]

1. Targets: bench/targets.py in a process of its own (127.40.x.y addresses, HTTP and TCP; ICMP answered by
   the kernel). Monitors of every kind the probe registry has among http/tcp/icmp, mixed evenly.
2. The service: ``python -m negahban.cli serve`` in a process of its own on a fresh database. Its CPU (and,
   on PostgreSQL, the CPU of its database backends) comes from /proc; lateness, missed and overlapping runs
   and the number of checks from its own /metrics, read at the start and the end of the window.
3. blackbox_exporter, probed through /probe at ``--blackbox-rate`` per second over the same kinds of targets
   during the same window; its CPU from /proc.
4. A simulated year of history for 200 monitors on a second fresh database: storage per monitor, and the
   time of a year-long uptime query for one monitor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.history import simulate_year  # noqa: E402
from monitor.accounts import Role, create_user, issue_token  # noqa: E402
from monitor.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from monitor.models import Monitor  # noqa: E402
from probes import PROBERS, SPECS  # noqa: E402

PG_ADMIN = os.environ.get("PG_TEST_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TICK = os.sysconf("SC_CLK_TCK")
BLACKBOX_MODULES = """modules:
  http: {prober: http, timeout: 5s, http: {preferred_ip_protocol: ip4}}
  tcp: {prober: tcp, timeout: 5s, tcp: {preferred_ip_protocol: ip4}}
  icmp: {prober: icmp, timeout: 5s, icmp: {preferred_ip_protocol: ip4}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def host(i: int) -> str:
    return f"127.40.{i // 250}.{i % 250 + 1}"


def target_for(kind: str, i: int, ports: dict[str, int]) -> str:
    return {"http": f"http://{host(i)}:{ports['http']}/m{i}", "tcp": f"{host(i)}:{ports['tcp']}",
            "icmp": host(i)}[kind]


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def fresh_db(kind: str, tmp: Path, name: str) -> str:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / name}.db"
    else:
        db = f"ngb_bench_{name}_{uuid.uuid4().hex[:6]}"
        await admin(f'CREATE DATABASE "{db}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


async def drop_db(url: str) -> None:
    if url.startswith("postgresql"):
        await admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


async def populate(url: str, n: int, kinds: list[str], ports: dict[str, int], interval: float) -> None:
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        target = target_for(kind, i, ports)
        SPECS[kind].model_validate({"kind": kind, "target": target, "timeout_s": 5.0})
        rows.append({"name": f"bench-{i}", "kind": kind, "target": target, "interval_s": interval,
                     "timeout_s": 5.0, "spec": {}, "thresholds": {}, "policy": {}, "enabled": True})
    engine = make_engine(url)
    async with engine.begin() as conn:
        for k in range(0, n, 1000):
            await conn.execute(insert(Monitor), rows[k:k + 1000])
    await engine.dispose()


def start(argv: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=ROOT, **kw)


async def scrape_token(url: str) -> str:
    """A NOC service account's token: /metrics answers nobody else."""
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as s:
        user = await create_user(s, f"bench-{uuid.uuid4().hex[:6]}", Role.NOC)
        token = await issue_token(s, user.id, "bench", datetime.now(UTC))
    await engine.dispose()
    return token


async def scrape(port: int, token: str | None = None) -> dict[str, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as r:
        body = await r.text()
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(body):
        for sample in fam.samples:
            if sample.name.startswith("negahban_"):
                out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def quantile(before: dict, after: dict, q: float) -> float:
    name = "negahban_schedule_lateness_seconds_bucket"
    buckets = sorted(((float(dict(k)["le"]), after[name][k] - before.get(name, {}).get(k, 0.0))
                      for k in after[name]), key=lambda b: b[0])
    total = buckets[-1][1]
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-9))
        prev_le, prev_n = le, n
    return prev_le


def diff(before: dict, after: dict, name: str) -> float:
    return sum(after.get(name, {}).values()) - sum(before.get(name, {}).values())


async def wait_http(port: int, path: str, bound_s: float) -> None:
    deadline = time.monotonic() + bound_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"nothing answered on port {port} within {bound_s} s")


async def settled(url: str, bound_s: float) -> None:
    """Wait until no flip is left unprocessed (the first check of every monitor is a flip)."""
    engine = make_engine(url)
    deadline = time.monotonic() + bound_s
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM flips WHERE processed_at IS NULL"))).scalar()
            if not left:
                return
            await asyncio.sleep(2)
    finally:
        await engine.dispose()


async def pg_backend_pids(url: str) -> list[int]:
    import asyncpg

    db = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def pids_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_s(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


async def drive_blackbox(port: int, kinds: list[str], ports: dict[str, int], rate: float, seconds: float,
                         counts: dict[str, int], first: int = 5000, span: int = 3000) -> None:
    """Ask blackbox_exporter for ``rate`` probes a second, kinds in turn, for ``seconds``, on the targets
    ``first`` ... ``first + span - 1`` (``target_for``)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
        async def one(kind: str, i: int) -> None:
            params = {"module": kind, "target": target_for(kind, i, ports)}
            async with s.get(f"http://127.0.0.1:{port}/probe", params=params) as r:
                body = await r.text()
            if "probe_success 1" in body:
                counts[kind] = counts.get(kind, 0) + 1
            else:
                counts["failed"] = counts.get("failed", 0) + 1

        tasks, end, i = set(), time.monotonic() + seconds, 0
        step = 0.1
        while time.monotonic() < end:
            for _ in range(round(rate * step)):
                t = asyncio.create_task(one(kinds[i % len(kinds)], first + i % span))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(step)
        if tasks:
            await asyncio.wait(tasks, timeout=10)


def merged(scrapes: list[dict]) -> dict:
    """The samples of several nodes' /metrics added together (counters and histogram buckets)."""
    out: dict[str, dict] = {}
    for one in scrapes:
        for name, series in one.items():
            dst = out.setdefault(name, {})
            for k, v in series.items():
                dst[k] = dst.get(k, 0.0) + v
    return out


async def run_service(args, kinds: list[str], ports: dict[str, int], tmp: Path) -> dict:
    url = await fresh_db(args.db, tmp, "live")
    await populate(url, args.monitors, kinds, ports, args.interval)
    token = await scrape_token(url)
    web_ports, bb_port = [free_port() for _ in range(args.nodes)], free_port()
    services = []
    for n, web_port in enumerate(web_ports):
        env = {"NEGAHBAN_DATABASE_URL": url, "NEGAHBAN_LISTEN_PORT": str(web_port),
               "NEGAHBAN_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), "NEGAHBAN_COOKIE_SECURE": "false"}
        if args.nodes > 1:
            env["NEGAHBAN_NODE_NAME"] = f"bench-{n}"
        services.append(start([sys.executable, "-m", "negahban.cli", "serve"], env))
    (tmp / "bb.yml").write_text(BLACKBOX_MODULES)
    blackbox = start(["prometheus-blackbox-exporter", f"--config.file={tmp / 'bb.yml'}",
                      f"--web.listen-address=127.0.0.1:{bb_port}", "--log.level=error"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def scrape_all() -> dict:
        return merged([await scrape(p, token) for p in web_ports])

    def services_cpu() -> float:
        return sum(cpu_s(s.pid) for s in services)

    try:
        for web_port in web_ports:
            await wait_http(web_port, "/metrics", 120)
        await wait_http(bb_port, "/metrics", 30)
        await asyncio.sleep(args.interval + 5)  # warm-up: every monitor has been checked once
        await settled(url, 180)  # ... and the incident engine has read their first flips (UNKNOWN -> UP)
        pg_pids = await pg_backend_pids(url) if args.db == "postgresql" else []
        # The window runs from the moment each scrape is sent (the counters are read as it is served), so the
        # time a scrape takes to come back is not left out of the window while its checks are counted in it.
        t0 = time.monotonic()
        m0, s0, p0, b0 = await scrape_all(), services_cpu(), pids_cpu(pg_pids), cpu_s(blackbox.pid)
        scrape0 = time.monotonic() - t0
        rss0 = sum(rss_mb(s.pid) for s in services)
        counts: dict[str, int] = {}
        await drive_blackbox(bb_port, kinds, ports, args.blackbox_rate, args.seconds, counts)
        t1 = time.monotonic()
        wall = t1 - t0
        m1, s1, p1, b1 = await scrape_all(), services_cpu(), pids_cpu(pg_pids), cpu_s(blackbox.pid)
        rss1 = sum(rss_mb(s.pid) for s in services)
        print(f"scrape durations              {scrape0 * 1000:.0f} ms / {(time.monotonic() - t1) * 1000:.0f} ms")
    finally:
        for service in services:
            service.send_signal(signal.SIGTERM)
        blackbox.terminate()
        for service in services:
            service.wait(60)
        blackbox.wait(10)
    await drop_db(url)
    checks = diff(m0, m1, "negahban_checks_total")
    up = m1["negahban_checks_total"].get((("outcome", "up"),), 0) - \
        m0.get("negahban_checks_total", {}).get((("outcome", "up"),), 0)
    probes = sum(v for k, v in counts.items() if k != "failed")
    return {"wall": wall, "checks": checks, "failed": checks - up, "service_cpu": s1 - s0, "pg_cpu": p1 - p0, "bb_cpu": b1 - b0,
            "bb_probes": probes, "bb_failed": counts.get("failed", 0),
            "p50": quantile(m0, m1, 0.5), "p99": quantile(m0, m1, 0.99),
            "missed": diff(m0, m1, "negahban_schedule_missed_total"),
            "overlaps": diff(m0, m1, "negahban_schedule_overlaps_skipped_total"), "rss_mb": max(rss0, rss1)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(args, kinds: list[str], r: dict, year: dict) -> None:
    per_check = r["service_cpu"] / max(r["checks"], 1)
    per_check_db = (r["service_cpu"] + r["pg_cpu"]) / max(r["checks"], 1)
    per_probe = r["bb_cpu"] / max(r["bb_probes"], 1)
    expected = args.monitors * r["wall"] / args.interval
    print(f"== {args.db}: {args.monitors} monitors ({'/'.join(kinds)}) every {args.interval:g} s on "
          f"{args.nodes} node(s), {r['wall']:.0f} s measured")
    print(f"checks                        {r['checks']:.0f} (planned {expected:.0f}, {r['checks'] / r['wall']:.0f}/s, "
          f"{r['failed']:.0f} not up)")
    print(f"service CPU per check         {1000 * per_check:.3f} ms"
          + (f"  (+ its PostgreSQL backends: {1000 * per_check_db:.3f} ms)" if args.db == "postgresql" else ""))
    print(f"blackbox_exporter per probe   {1000 * per_probe:.3f} ms  ({r['bb_probes']} probes, "
          f"{r['bb_failed']} failed)")
    print(f"ratio service/blackbox        {per_check / per_probe:.2f}"
          + (f"  (with PostgreSQL backends: {per_check_db / per_probe:.2f})" if args.db == "postgresql" else "")
          + "   target <= 1.0 for HTTP")
    print(f"average CPU                   {r['service_cpu'] / r['wall']:.3f} cores"
          + (f"  (+ PostgreSQL backends: {r['pg_cpu'] / r['wall']:.3f})" if args.db == "postgresql" else "")
          + "   target <= 0.5")
    print(f"lateness p50 / p99            {1000 * r['p50']:.1f} ms / {1000 * r['p99']:.1f} ms   target p99 <= 1 s")
    print(f"missed / overlapping runs     {r['missed']:.0f} / {r['overlaps']:.0f}   target 0 / 0")
    print(f"service RSS (all nodes)       {r['rss_mb']:.0f} MB")
    if year is None:
        return
    print(f"storage per monitor, 1 year   {year['bytes_per_monitor'] / 1024:.1f} KB   target <= 300 KB "
          f"({year['detail']})")
    print(f"year-long uptime query        {year['uptime_ms']:.1f} ms (median of {year['reps']})   target <= 50 ms")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--monitors", type=int, default=10000)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--blackbox-rate", type=float, default=50.0)
    ap.add_argument("--skip-live", action="store_true", help="only the simulated year")
    ap.add_argument("--nodes", type=int, default=1, help="engine nodes sharing the database (PostgreSQL)")
    ap.add_argument("--skip-year", action="store_true", help="only the live run")
    args = ap.parse_args()
    if args.nodes > 1 and args.db != "postgresql":
        ap.error("--nodes above 1 needs --db postgresql")
    kinds = [k for k in ("http", "tcp", "icmp") if k in PROBERS]
    random.seed(1)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        targets = start([sys.executable, "bench/targets.py"], stdout=subprocess.PIPE, text=True)
        try:
            http_port, tcp_port = map(int, targets.stdout.readline().split())
            ports = {"http": http_port, "tcp": tcp_port}
            live = await run_service(args, kinds, ports, tmp) if not args.skip_live else None
        finally:
            targets.terminate()
            targets.wait(10)
        year = None
        if not args.skip_year:
            url = await fresh_db(args.db, tmp, "year")
            try:
                year = await simulate_year(url, monitors=200)
            finally:
                await drop_db(url)
    if live:
        report(args, kinds, live, year)
    else:
        print(year)


if __name__ == "__main__":
    asyncio.run(main())
