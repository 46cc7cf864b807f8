"""Probe agents at scale: a central ``negahban serve`` and three ``negahban agent`` processes on this machine,
against blackbox_exporter driven at one agent's rate on the same targets in the same run.

    PYTHONPATH=. /work/main/.venv/bin/python bench/agents_bench.py [--db sqlite|postgresql] [--monitors 10000]
        [--interval 30] [--seconds 180] [--blackbox-rate RATE] [--kinds http,tcp]

1. Targets: bench/targets.py in a process of its own (127.40.x.y addresses on ``lo``, HTTP and TCP).
2. A fresh database: three locations (east, west, north; each with one TCP canary on loopback) applied with
   ``negahban inventory apply``, ``--monitors`` monitors (HTTP and TCP in turn) each checked from all three at
   ``--interval``, a token per location from ``negahban location token NAME``.
3. ``negahban serve`` (the central side: it probes none of these monitors itself, it takes the agents' batches,
   votes and evaluates) and one ``negahban agent`` per location, each a process of its own; CPU from
   /proc/PID/stat (on PostgreSQL also the central side's database backends, found through pg_stat_activity),
   RSS from /proc/PID/status.
4. After one interval of warm-up (every monitor checked from every location) and once the incident engine has
   read the first flips, a window of ``--seconds``: blackbox_exporter is asked through /probe for
   ``--blackbox-rate`` probes a second (default: one agent's rate, monitors / interval) of the same kinds on
   the same target addresses.
5. After the window (and a short drain), ``location_results`` joined with ``agent_batches`` gives, per result,
   when its check started (``at``, the agent's clock) and when the central side received its batch
   (``received_at``): results received in the window (central CPU per result), checks started in the window
   per location (each agent's CPU per check; received against planned), and the lag received - at.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import (  # noqa: E402
    BLACKBOX_MODULES,
    cpu_s,
    drive_blackbox,
    drop_db,
    free_port,
    fresh_db,
    pg_backend_pids,
    pids_cpu,
    settled,
    start,
    target_for,
    wait_http,
)
from monitor.db import make_engine  # noqa: E402
from monitor.models import AgentBatch, Flip, LocationResult, Monitor  # noqa: E402
from monitor.scheduler import phase_of  # noqa: E402
from probes import SPECS  # noqa: E402

LOCATIONS = ("east", "west", "north")
CLI = [sys.executable, "-m", "negahban.cli"]


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def cli(args: list[str], url: str) -> str:
    env = {**os.environ, "NEGAHBAN_DATABASE_URL": url, "PYTHONPATH": str(ROOT), "NEGAHBAN_LOG_LEVEL": "WARNING"}
    proc = subprocess.run(CLI + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"negahban {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


async def populate(url: str, n: int, kinds: list[str], ports: dict[str, int], interval: float) -> None:
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        target = target_for(kind, i, ports)
        SPECS[kind].model_validate({"kind": kind, "target": target, "timeout_s": 5.0})
        rows.append({"name": f"agents-{i}", "kind": kind, "target": target, "interval_s": interval,
                     "timeout_s": 5.0, "spec": {}, "thresholds": {}, "policy": {}, "enabled": True,
                     "locations": list(LOCATIONS)})
    engine = make_engine(url)
    async with engine.begin() as conn:
        for k in range(0, n, 1000):
            await conn.execute(insert(Monitor), rows[k:k + 1000])
    await engine.dispose()


async def first_flips(url: str, n: int, bound_s: float) -> None:
    engine = make_engine(url)
    deadline = time.monotonic() + bound_s
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                if (await conn.execute(select(func.count()).select_from(Flip))).scalar() >= n:
                    return
            await asyncio.sleep(1)
    finally:
        await engine.dispose()
    raise RuntimeError(f"fewer than {n} first flips within {bound_s} s")


async def read_results(url: str, t0: datetime, t1: datetime, interval: float) -> dict:
    """Per location: checks started in [t0, t1), the planned starts in [t0, t1) that were run (each check is
    counted in the slot of the latest planned start before it), checks beyond one per slot (re-checks) and
    how late each check started; overall: results received in [t0, t1] and their lags."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(LocationResult.location, LocationResult.monitor_id, LocationResult.at, AgentBatch.received_at, LocationResult.outcome,
                       LocationResult.reason)
                .join(AgentBatch, AgentBatch.id == LocationResult.batch_id)
                .where(AgentBatch.received_at >= t0))).all()
            flips = (await conn.execute(select(Flip.old_state, Flip.new_state, Flip.reason, func.count())
                                        .where(Flip.at >= t0, Flip.at <= t1)
                                        .group_by(Flip.old_state, Flip.new_state, Flip.reason))).all()
            ids = (await conn.execute(select(Monitor.id).where(Monitor.name.like("agents-%")))).scalars().all()
    finally:
        await engine.dispose()
    started: dict[str, int] = dict.fromkeys(LOCATIONS, 0)
    received, lags, failed = 0, [], Counter()
    slots: dict[str, Counter] = {loc: Counter() for loc in LOCATIONS}
    late: dict[str, list[float]] = {loc: [] for loc in LOCATIONS}
    a0, a1 = t0.timestamp(), t1.timestamp()
    for loc, mid, at, rec, outcome, reason in rows:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        rec = rec.replace(tzinfo=UTC) if rec.tzinfo is None else rec
        ts = at.timestamp()
        phase = phase_of(mid, interval)
        planned = phase + math.floor((ts - phase) / interval) * interval
        if a0 <= planned < a1:
            slots[loc][(mid, planned)] += 1
        if t0 <= at < t1:
            started[loc] = started.get(loc, 0) + 1
            late[loc].append(ts - planned)
            if outcome != "up":
                failed[f"{loc} {outcome} {reason}"] += 1
        if t0 <= rec <= t1:
            received += 1
            lags.append((rec - at).total_seconds())
    return {"started": started, "slots": {loc: len(c) for loc, c in slots.items()},
            "extra": {loc: sum(c.values()) - len(c) for loc, c in slots.items()},
            "lateness": {loc: (quantile(v, 0.5), quantile(v, 0.99)) for loc, v in late.items()},
            "received": received, "lags": lags, "failed": dict(failed),
            "flips": {f"{old}->{new} ({reason})": n for old, new, reason, n in flips},
            "planned": sum(math.ceil((a1 - phase_of(m, interval)) / interval)
                           - math.ceil((a0 - phase_of(m, interval)) / interval) for m in ids)}


async def run(args, kinds: list[str], ports: dict[str, int], tmp: Path) -> dict:
    url = await fresh_db(args.db, tmp, "agents")
    canary = f"tcp:127.40.255.1:{ports['tcp']}"
    locs = "\n".join(f"  - {{name: {n}, display_name: {n}, canaries: ['{canary}']}}" for n in LOCATIONS)
    (tmp / "inv.yaml").write_text(f"locations:\n{locs}\n", encoding="utf-8")
    cli(["inventory", "apply", str(tmp / "inv.yaml")], url)
    await populate(url, args.monitors, kinds, ports, args.interval)
    for name in LOCATIONS:
        (tmp / f"{name}.token").write_text(cli(["location", "token", name], url).strip() + "\n")
    web_ports, bb_port = [free_port() for _ in range(args.nodes)], free_port()
    logs = {name: open(tmp / f"{name}.log", "w") for name in ("central", *LOCATIONS)}  # noqa: ASYNC230, SIM115
    centrals = []
    for n, web_port in enumerate(web_ports):
        env = {"NEGAHBAN_DATABASE_URL": url, "NEGAHBAN_LISTEN_PORT": str(web_port), "NEGAHBAN_LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT), "NEGAHBAN_COOKIE_SECURE": "false", "NEGAHBAN_ICMP": "off"}
        if args.nodes > 1:  # several engine nodes on one PostgreSQL (monitor.leases); agents spread over them
            env["NEGAHBAN_NODE_NAME"] = f"central-{n}"
        centrals.append(start(CLI + ["serve"], env, stdout=subprocess.DEVNULL, stderr=logs["central"]))
    central = centrals[0]
    (tmp / "bb.yml").write_text(BLACKBOX_MODULES)
    blackbox = start(["prometheus-blackbox-exporter", f"--config.file={tmp / 'bb.yml'}",
                      f"--web.listen-address=127.0.0.1:{bb_port}", "--log.level=error"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agents: dict[str, subprocess.Popen] = {}
    try:
        for web_port in web_ports:
            await wait_http(web_port, "/healthz", 120)
        await wait_http(bb_port, "/metrics", 30)
        agent_env = {k: v for k, v in os.environ.items() if not k.startswith("NEGAHBAN_")} | {"PYTHONPATH": str(ROOT)}
        for i, name in enumerate(LOCATIONS):
            web_port = web_ports[i % len(web_ports)]
            agents[name] = start(CLI + ["agent", "--central", f"http://127.0.0.1:{web_port}", "--token-file",
                                        str(tmp / f"{name}.token"), "--buffer", str(tmp / f"{name}.db"),
                                        "--id", f"{name}-1", "--icmp", "off"],
                                 agent_env, stdout=subprocess.DEVNULL, stderr=logs[name])
        t_warm = time.monotonic()
        await asyncio.sleep(args.interval + 5)  # warm-up: every monitor checked once from every location
        await first_flips(url, args.monitors, 120)  # ... the central side has voted on every monitor once
        await settled(url, 120)  # ... and the incident engine has read those first flips (UNKNOWN -> UP)
        warm = time.monotonic() - t_warm
        pg_pids = await pg_backend_pids(url) if args.db == "postgresql" else []
        pids = {"central": central.pid, "blackbox": blackbox.pid} | {n: p.pid for n, p in agents.items()} | \
            {f"central-{i}": c.pid for i, c in enumerate(centrals) if i}
        c0 = {k: cpu_s(p) for k, p in pids.items()}
        pg0 = pids_cpu(pg_pids)
        t0, m0 = datetime.now(UTC), time.monotonic()
        spies = [start([args.py_spy, "record", "-f", "raw", "--nonblocking", "-r", "50", "-d",
                                   str(int(args.seconds)), "-p", str(pids[k]), "-o", f"{args.profile}/{k}.txt"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for k in ("central", "east")] if args.profile else []
        counts: dict[str, int] = {}
        rate = args.blackbox_rate or args.monitors / args.interval
        await drive_blackbox(bb_port, kinds, ports, rate, args.seconds, counts, first=0, span=args.monitors)
        t1, wall = datetime.now(UTC), time.monotonic() - m0
        c1 = {k: cpu_s(p) for k, p in pids.items()}
        pg1 = pids_cpu(pg_pids)
        for spy in spies:
            spy.wait(60)
        rss = {k: rss_mb(p) for k, p in pids.items() if k != "blackbox"}
        for name, proc in ((f"central-{i}", c) for i, c in enumerate(centrals)):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} during the window; see its log")
        for name, proc in agents.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} during the window; see its log")
        await asyncio.sleep(5)  # the checks started just before t1 are sent within a send period or two
        res = await read_results(url, t0, t1, args.interval)
    finally:
        for proc in (*agents.values(), *centrals):
            proc.send_signal(signal.SIGTERM)
        blackbox.terminate()
        for proc in (*agents.values(), *centrals):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        blackbox.wait(10)
        for f in logs.values():
            f.close()
        for name in ("central", *LOCATIONS):
            tracebacks = (tmp / f"{name}.log").read_text().count("Traceback")
            if tracebacks:
                print(f"{name}: {tracebacks} tracebacks in its log", file=sys.stderr)
                print((tmp / f"{name}.log").read_text()[-3000:], file=sys.stderr)
        await drop_db(url)
    cpu = {k: c1[k] - c0[k] for k in c0}
    for k in [k for k in cpu if k.startswith("central-")]:  # every node's CPU is the central side's
        cpu["central"] += cpu.pop(k)
        rss["central"] = tuple(a + b for a, b in zip(rss["central"], rss.pop(k), strict=True))
    return {"wall": wall, "warm": warm, "rate": rate, "cpu": cpu, "pg_cpu": pg1 - pg0, "rss": rss,
            "bb_probes": sum(v for k, v in counts.items() if k != "failed"), "bb_failed": counts.get("failed", 0),
            **res}


def report(args, kinds: list[str], r: dict, load: tuple[float, float, float]) -> None:
    wall, cpu = r["wall"], r["cpu"]
    planned_loc = args.monitors * wall / args.interval
    started = r["started"]
    received = r["received"]
    per_result = cpu["central"] / max(received, 1)
    per_result_db = (cpu["central"] + r["pg_cpu"]) / max(received, 1)
    per_probe = cpu["blackbox"] / max(r["bb_probes"], 1)
    pg = args.db == "postgresql"
    print(f"== {args.db}, {args.nodes} central node(s): {args.monitors} monitors ({'/'.join(kinds)}) x "
          f"{len(LOCATIONS)} locations every "
          f"{args.interval:g} s, {wall:.0f} s measured after {r['warm']:.0f} s of warm-up; "
          f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"results received by central   {received} (planned {len(LOCATIONS) * planned_loc:.0f}, "
          f"{100 * (received / (len(LOCATIONS) * planned_loc) - 1):+.2f} %, {received / wall:.0f}/s)")
    print(f"central CPU per result        {1000 * per_result:.3f} ms"
          + (f"  (+ its PostgreSQL backends: {1000 * per_result_db:.3f} ms)" if pg else "")
          + f"; {cpu['central'] / wall:.3f} cores" + (f" (+ {r['pg_cpu'] / wall:.3f} backends)" if pg else ""))
    per_check = {}
    for name in LOCATIONS:
        per_check[name] = cpu[name] / max(started[name], 1)
        print(f"agent {name:<5} checks           {started[name]} started in the window (planned {planned_loc:.0f}, "
              f"{100 * (started[name] / planned_loc - 1):+.2f} %); CPU per check {1000 * per_check[name]:.3f} ms; "
              f"{cpu[name] / wall:.3f} cores; RSS {r['rss'][name][0]:.0f} MB (peak {r['rss'][name][1]:.0f})")
        p50, p99 = r["lateness"][name]
        print(f"            schedule           planned starts in the window run: {r['slots'][name]} of "
              f"{planned_loc:.0f}; re-checks beyond one per slot {r['extra'][name]}; lateness p50 / p99 "
              f"{1000 * p50:.0f} / {1000 * p99:.0f} ms")
    mean_agent = sum(cpu[n] for n in LOCATIONS) / max(sum(started.values()), 1)
    print(f"blackbox_exporter per probe   {1000 * per_probe:.3f} ms  ({r['bb_probes']} probes at "
          f"{r['rate']:.0f}/s asked, {r['bb_failed']} failed; {cpu['blackbox'] / wall:.3f} cores)")
    print(f"ratio agent / blackbox        {mean_agent / per_probe:.2f}  (per agent: "
          + ", ".join(f"{n} {per_check[n] / per_probe:.2f}" for n in LOCATIONS) + ")")
    print(f"ratio central / blackbox      {per_result / per_probe:.2f}  (central CPU per result received)")
    print(f"result lag p50 / p99 / max    {r['lags'] and 1000 * quantile(r['lags'], 0.5):.0f} ms / "
          f"{1000 * quantile(r['lags'], 0.99):.0f} ms / {1000 * max(r['lags'], default=0):.0f} ms "
          "(central received_at - the check's start)")
    print(f"checks not up in the window   {sum(r['failed'].values())} "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(r['failed'].items())) or 'none'}); flips in the window: "
          f"{', '.join(f'{k} {v}' for k, v in sorted(r['flips'].items())) or 'none'}")
    print(f"central RSS                   {r['rss']['central'][0]:.0f} MB (peak {r['rss']['central'][1]:.0f})")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--monitors", type=int, default=10000)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--blackbox-rate", type=float, default=0.0, help="probes a second (default: one agent's "
                    "rate, monitors / interval)")
    ap.add_argument("--kinds", default="http,tcp")
    ap.add_argument("--nodes", type=int, default=1, help="central engine nodes on one PostgreSQL (agents spread "
                    "over them)")
    ap.add_argument("--profile", default="", help="a folder: py-spy profiles (raw) of the central process and "
                    "agent east during the window (their CPU figures then include py-spy's pauses)")
    ap.add_argument("--py-spy", default="py-spy")
    args = ap.parse_args()
    if args.nodes > 1 and args.db != "postgresql":
        ap.error("--nodes above 1 needs --db postgresql")
    kinds = args.kinds.split(",")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        targets = start([sys.executable, "bench/targets.py"], stdout=subprocess.PIPE, text=True)
        try:
            http_port, tcp_port = map(int, targets.stdout.readline().split())
            r = await run(args, kinds, {"http": http_port, "tcp": tcp_port}, tmp)
        finally:
            targets.terminate()
            targets.wait(10)
    report(args, kinds, r, load)


if __name__ == "__main__":
    asyncio.run(main())
