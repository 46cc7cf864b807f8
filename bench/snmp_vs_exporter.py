"""CPU per SNMP check: our probe against prometheus-snmp-exporter, against the same real snmpd, same run.

    PYTHONPATH=. python bench/snmp_vs_exporter.py [--checks 2000] [--concurrency 50] [--rounds 3]

snmpd (Debian's, started here on a loopback port with its own config) runs in its own process; its CPU is
counted for nobody. Ours: ``probe_snmp`` in this process (CPU from getrusage(RUSAGE_SELF)), each check given
the previous result as the runner does. snmp_exporter: started with a module that GETs sysUpTime.0, driven
through ``/snmp`` over HTTP (its real interface, as blackbox_exporter is driven through ``/probe``), CPU from
/proc/<pid>/stat; the HTTP client's CPU (this process) is not counted for it. One check = one GET of
sysUpTime.0 (v2c, or v3 authPriv SHA-256/AES). Prints CPU-milliseconds per check and our ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes import SnmpSpec, make_context, probe_snmp  # noqa: E402
from tests.probes.snmpd import SnmpAgent, V3User, free_udp_port  # noqa: E402

EXPORTER = "/usr/bin/prometheus-snmp-exporter"
TICK = os.sysconf("SC_CLK_TCK")
USER = V3User("bench", "SHA-256", "bench-auth-key", "AES", "bench-priv-key")

# snmp_exporter 0.21 (Debian bookworm) keeps the auth inside each module.
EXPORTER_CONFIG = """
uptime_v2c:
  get: [1.3.6.1.2.1.1.3.0]
  metrics:
  - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge}
  version: 2
  auth: {community: public}
uptime_v3:
  get: [1.3.6.1.2.1.1.3.0]
  metrics:
  - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge}
  version: 3
  auth:
    username: bench
    security_level: authPriv
    auth_protocol: SHA256
    password: bench-auth-key
    priv_protocol: AES
    priv_password: bench-priv-key
"""


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def pool(n: int, worker, concurrency: int) -> list:
    results: list = []
    it = iter(range(n))

    async def run() -> None:
        for i in it:
            results.append(await worker(i))

    await asyncio.gather(*(run() for _ in range(concurrency)))
    return results


async def ours(spec: SnmpSpec, ctx, checks: int, concurrency: int) -> tuple[float, int]:
    previous: dict[int, object] = {}

    async def one(i: int) -> bool:
        lane = i % concurrency
        r = await probe_snmp(spec, ctx, previous=previous.get(lane))
        previous[lane] = r
        return r.ok

    await probe_snmp(spec, ctx)  # the engine for these credentials is built once per service, not per check
    start = self_cpu()
    ok = await pool(checks, one, concurrency)
    return (self_cpu() - start) / checks, sum(ok)


async def exporter(session: aiohttp.ClientSession, url: str, pid: int, checks: int,
                   concurrency: int) -> tuple[float, int]:
    async def one(_: int) -> bool:
        async with session.get(url) as resp:
            text = await resp.text()
            return resp.status == 200 and "\nsysUpTime " in text

    await one(0)
    start = proc_cpu(pid)
    ok = await pool(checks, one, concurrency)
    return (proc_cpu(pid) - start) / checks, sum(ok)


def start_exporter(workdir: Path) -> tuple[subprocess.Popen, int]:
    config = workdir / "snmp.yml"
    config.write_text(EXPORTER_CONFIG)
    port = free_udp_port()  # a free number; TCP on the same number is free too on an idle loopback
    proc = subprocess.Popen([EXPORTER, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "exporter.log", "wb"))
    return proc, port


async def wait_http(url: str, bound_s: float = 10.0) -> None:
    deadline = time.monotonic() + bound_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"snmp_exporter did not answer at {url}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="snmp-bench-"))
    agent = SnmpAgent(workdir / "snmpd", v3_users=[USER])
    agent.start()
    proc, port = start_exporter(workdir)
    ctx = await make_context(icmp="off")
    base = f"http://127.0.0.1:{port}/snmp?target=127.0.0.1:{agent.port}&module="
    specs = {"v2c": SnmpSpec(target="127.0.0.1", port=agent.port, timeout_s=5),
             "v3": SnmpSpec(target="127.0.0.1", port=agent.port, timeout_s=5, version="3", user=USER.name,
                            auth_protocol="SHA-256", auth_key=USER.auth_key, priv_protocol="AES",
                            priv_key=USER.priv_key)}
    try:
        await wait_http(f"http://127.0.0.1:{port}/")
        rows = []
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            for name, spec in specs.items():
                mine, theirs = [], []
                for _ in range(args.rounds):
                    cpu, ok = await ours(spec, ctx, args.checks, args.concurrency)
                    mine.append((cpu, ok))
                    cpu, ok = await exporter(session, base + f"uptime_{name}", proc.pid, args.checks,
                                             args.concurrency)
                    theirs.append((cpu, ok))
                m = statistics.median(c for c, _ in mine)
                t = statistics.median(c for c, _ in theirs)
                rows.append((name, m, t, min(o for _, o in mine), min(o for _, o in theirs)))
    finally:
        await ctx.close()
        proc.terminate()
        proc.wait(10)
        agent.stop()
    print(f"{args.checks} checks x {args.rounds} rounds, {args.concurrency} in flight; CPU-ms per check (median)")
    print(f"{'auth':5} {'negahban':>9} {'snmp_exporter':>14} {'ours/exporter':>14} {'ok (ours/theirs)':>18}")
    for name, m, t, ok_m, ok_t in rows:
        print(f"{name:5} {m * 1000:9.3f} {t * 1000:14.3f} {m / t:13.2f}x {ok_m:>8}/{ok_t:<8}")


if __name__ == "__main__":
    asyncio.run(main())
