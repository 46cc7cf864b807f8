"""CPU cost of our probes against blackbox_exporter and fping, on >= 2000 loopback targets.

    PYTHONPATH=. /work/venv/bin/python bench/probes_vs_blackbox.py [--targets 2000] [--concurrency 100]

Targets are 127.20.x.y addresses; HTTP, TCP and HTTPS targets are served by bench/loopback_servers.py in a
separate process (its CPU is counted for nobody). For each kind the same targets are probed by us (this
process, CPU from getrusage(RUSAGE_SELF)), by blackbox_exporter through its /probe endpoint (its CPU from
/proc/<pid>/stat) and, for ICMP, by fping (child rusage) and by icmplib's own async_multiping (one socket per
ping, for reference). One probe = one check of one target (ICMP: one echo). Prints CPU-seconds per 1000 probes
and our ratio to each peer. Needs root (raw ICMP), prometheus-blackbox-exporter and fping.
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
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes import PROBERS, HttpSpec, IcmpSpec, TcpSpec, make_context  # noqa: E402

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
TICK = os.sysconf("SC_CLK_TCK")

BLACKBOX_CONFIG = """
modules:
  http:
    prober: http
    timeout: 5s
    http: {preferred_ip_protocol: ip4, ip_protocol_fallback: false}
  https:
    prober: http
    timeout: 5s
    http: {preferred_ip_protocol: ip4, ip_protocol_fallback: false, tls_config: {insecure_skip_verify: true}}
  tcp:
    prober: tcp
    timeout: 5s
    tcp: {preferred_ip_protocol: ip4, ip_protocol_fallback: false}
  icmp:
    prober: icmp
    timeout: 2s
    icmp: {preferred_ip_protocol: ip4, ip_protocol_fallback: false}
"""


def addresses(n: int) -> list[str]:
    return [f"127.20.{i // 250}.{i % 250 + 1}" for i in range(n)]


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def pool(items, worker, concurrency: int) -> list:
    """Run ``worker(item)`` over ``items`` with at most ``concurrency`` in flight; results in order."""
    results: list = [None] * len(items)
    it = iter(enumerate(items))

    async def run() -> None:
        for i, item in it:
            results[i] = await worker(item)

    await asyncio.gather(*(run() for _ in range(concurrency)))
    return results


async def ours(kind: str, specs: list, ctx, concurrency: int) -> tuple[float, int]:
    prober = PROBERS[kind]
    await pool(specs[:100], lambda s: prober(s, ctx), concurrency)  # warm-up
    cpu0 = self_cpu()
    results = await pool(specs, lambda s: prober(s, ctx), concurrency)
    return self_cpu() - cpu0, sum(r.ok for r in results)


async def blackbox(session, port: int, pid: int, module: str, targets: list[str], concurrency: int):
    async def one(target: str) -> bool:
        async with session.get(f"http://127.0.0.1:{port}/probe", params={"module": module, "target": target}) as r:
            return "\nprobe_success 1" in await r.text()

    await pool(targets[:100], one, concurrency)
    cpu0 = proc_cpu(pid)
    ok = await pool(targets, one, concurrency)
    return proc_cpu(pid) - cpu0, sum(ok)


def fping(targets: list[str]) -> tuple[float, int]:
    cpu0 = children_cpu()
    out = subprocess.run(["fping", "-c", "1", "-q", "-i", "1", "-t", "1000", *targets], capture_output=True,
                         text=True, timeout=120)
    return children_cpu() - cpu0, out.stderr.count("xmt/rcv/%loss = 1/1/")


async def icmplib_multiping(targets: list[str], concurrency: int) -> tuple[float, int]:
    from icmplib import async_multiping

    cpu0 = self_cpu()
    hosts = await async_multiping(targets, count=1, timeout=1, concurrent_tasks=concurrency, privileged=True)
    return self_cpu() - cpu0, sum(h.is_alive for h in hosts)


def start_servers(tmp: Path) -> tuple[subprocess.Popen, list[int]]:
    ca = trustme.CA()
    cert = ca.issue_cert("bench.test")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "cert.pem"))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("loopback_servers.py")),
                             str(tmp / "cert.pem"), str(tmp / "cert.pem")], stdout=subprocess.PIPE, text=True)
    return proc, [int(p) for p in proc.stdout.readline().split()]


def start_blackbox(tmp: Path, config: str = BLACKBOX_CONFIG) -> tuple[subprocess.Popen, int]:
    import socket

    (tmp / "blackbox.yml").write_text(config)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([BLACKBOX, f"--config.file={tmp / 'blackbox.yml'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


async def wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


GOALS = {("http", "blackbox_exporter"): 0.75, ("tcp", "blackbox_exporter"): 0.5,
         ("icmp", "blackbox_exporter"): 0.4, ("icmp", "fping"): 4.0}


@dataclass
class Bench:
    ctx: object
    session: aiohttp.ClientSession
    bb_pid: int
    bb_port: int
    targets: list[str]
    concurrency: int


async def measure(b: Bench, name: str, kind: str, specs: list, bb_targets: list[str]) -> dict[str, tuple]:
    """One round for one kind: {peer: (cpu seconds, probes up)}."""
    got = {"negahban": await ours(kind, specs, b.ctx, b.concurrency),
           "blackbox_exporter": await blackbox(b.session, b.bb_port, b.bb_pid, name, bb_targets, b.concurrency)}
    if name == "icmp":
        got["fping"] = fping(b.targets)
        got["icmplib async_multiping"] = await icmplib_multiping(b.targets, b.concurrency)
    return got


def report(name: str, n: int, rounds: list[dict[str, tuple]]) -> dict[str, float]:
    """Print the median (and range) over rounds of CPU-s per 1000 probes; return the medians."""
    print(f"{name}:")
    medians = {}
    for peer in rounds[0]:
        per = sorted(r[peer][0] / n * 1000 for r in rounds)
        ups = min(r[peer][1] for r in rounds)
        medians[peer] = statistics.median(per)
        print(f"  {peer:<26} {medians[peer]:7.3f}  (range {per[0]:.3f}-{per[-1]:.3f}; min up {ups}/{n})")
    return medians


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        servers, ports = start_servers(tmp)
        bb, bb_port = start_blackbox(tmp)
        try:
            await wait_http(f"http://127.0.0.1:{bb_port}/metrics")
            ctx = await make_context(icmp="privileged")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as session:
                b = Bench(ctx, session, bb.pid, bb_port, addresses(args.targets), args.concurrency)
                await run_all(b, ports, args.rounds)
            await ctx.close()
        finally:
            for proc in (bb, servers):
                proc.terminate()
                proc.wait(10)


def kinds(targets: list[str], http_port: int, tcp_port: int, https_port: int) -> dict[str, tuple]:
    return {
        "http": ("http", [HttpSpec(target=f"http://{t}:{http_port}/", timeout_s=5) for t in targets],
                 [f"http://{t}:{http_port}/" for t in targets]),
        "tcp": ("tcp", [TcpSpec(target=f"{t}:{tcp_port}", timeout_s=5) for t in targets],
                [f"{t}:{tcp_port}" for t in targets]),
        "icmp": ("icmp", [IcmpSpec(target=t, count=1, timeout_s=2) for t in targets], targets),
        "https": ("http", [HttpSpec(target=f"https://{t}:{https_port}/", timeout_s=5, tls_verify=False)
                           for t in targets], [f"https://{t}:{https_port}/" for t in targets]),
    }


async def run_all(b: Bench, ports: list[int], rounds: int) -> None:
    n = len(b.targets)
    print(f"{n} loopback targets, {b.concurrency} probes in flight, median of {rounds} rounds; "
          f"CPU-seconds per 1000 probes\n")
    ratios = []
    for name, (kind, specs, bb_targets) in kinds(b.targets, *ports).items():
        medians = report(name, n, [await measure(b, name, kind, specs, bb_targets) for _ in range(rounds)])
        for peer in ("blackbox_exporter", "fping"):
            if peer in medians:
                ratios.append((name, peer, medians["negahban"] / medians[peer], GOALS.get((name, peer))))
    print("\nratios (ours / peer):")
    for name, peer, ratio, goal in ratios:
        verdict = "" if goal is None else f"  target <= {goal:g}x: {'met' if ratio <= goal else 'MISSED'}"
        print(f"  {name:<6} vs {peer:<18} {ratio:6.2f}x{verdict}")


if __name__ == "__main__":
    asyncio.run(main())
