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
import subprocess
import sys
import tempfile
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


def start_blackbox(tmp: Path) -> tuple[subprocess.Popen, int]:
    import socket

    (tmp / "blackbox.yml").write_text(BLACKBOX_CONFIG)
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


def row(name: str, n: int, cpu: float, ok: int) -> float:
    per = cpu / n * 1000
    print(f"  {name:<28} {per:8.3f} CPU-s/1000   ({ok}/{n} up)")
    return per


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=100)
    args = ap.parse_args()
    n, conc = args.targets, args.concurrency
    targets = addresses(n)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        servers, (http_port, tcp_port, https_port) = start_servers(tmp)
        bb, bb_port = start_blackbox(tmp)
        try:
            await wait_http(f"http://127.0.0.1:{bb_port}/metrics")
            await run_all(targets, conc, bb.pid, bb_port, http_port, tcp_port, https_port)
        finally:
            for proc in (bb, servers):
                proc.terminate()
                proc.wait(10)


async def run_all(targets, conc, bb_pid, bb_port, http_port, tcp_port, https_port) -> None:
    n = len(targets)
    ctx = await make_context(icmp="privileged")
    kinds = {
        "http": ("http", [HttpSpec(target=f"http://{t}:{http_port}/", timeout_s=5) for t in targets],
                 [f"http://{t}:{http_port}/" for t in targets]),
        "tcp": ("tcp", [TcpSpec(target=f"{t}:{tcp_port}", timeout_s=5) for t in targets],
                [f"{t}:{tcp_port}" for t in targets]),
        "icmp": ("icmp", [IcmpSpec(target=t, count=1, timeout_s=2) for t in targets], targets),
        "https": ("http", [HttpSpec(target=f"https://{t}:{https_port}/", timeout_s=5, tls_verify=False)
                           for t in targets], [f"https://{t}:{https_port}/" for t in targets]),
    }
    print(f"{n} loopback targets, {conc} probes in flight, CPU-seconds per 1000 probes\n")
    summary = []
    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:
        for name, (kind, specs, bb_targets) in kinds.items():
            print(f"{name}:")
            our = row("negahban", n, *await ours(kind, specs, ctx, conc))
            theirs = row("blackbox_exporter", n, *await blackbox(session, bb_port, bb_pid, name, bb_targets, conc))
            summary.append((name, "blackbox_exporter", our / theirs, {"http": 0.75, "tcp": 0.5, "icmp": 0.4}.get(name)))
            if name == "icmp":
                fp = row("fping", n, *fping(targets))
                row("icmplib async_multiping", n, *await icmplib_multiping(targets, conc))
                summary.append((name, "fping", our / fp, 4.0))
    await ctx.close()
    print("\nratios (ours / peer):")
    for name, peer, ratio, goal in summary:
        verdict = "" if goal is None else f"  target <= {goal:g}x: {'met' if ratio <= goal else 'MISSED'}"
        print(f"  {name:<6} vs {peer:<18} {ratio:6.2f}x{verdict}")


if __name__ == "__main__":
    asyncio.run(main())
