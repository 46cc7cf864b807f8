"""CPU per SMTP check: our ``smtp`` probe against blackbox_exporter's ``tcp`` prober with a query/expect
dialogue for SMTP, on the same loopback targets in the same run.

    PYTHONPATH=. python bench/smtp_vs_blackbox.py [--targets 1000] [--concurrency 100] [--rounds 3]

Targets are 127.20.x.y addresses served by a small SMTP responder (this file with ``--serve``) in its own
process, so its CPU is counted for nobody. Two dialogues, the same on both sides:
  plain:    banner 220, EHLO, QUIT (221)
  starttls: banner 220, EHLO, STARTTLS, TLS handshake (no verification on either side), EHLO, QUIT
Ours: ``PROBERS["smtp"]`` in this process (getrusage); blackbox_exporter: /probe, CPU from /proc/<pid>/stat.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback_servers import listener  # noqa: E402
from bench.probes_vs_blackbox import Bench, addresses, blackbox, ours, report, start_blackbox, wait_http  # noqa: E402
from probes import SmtpSpec, make_context  # noqa: E402

_DIALOGUE = """
      query_response:
        - expect: "^220 "
        - send: "EHLO prober\\r"
        - expect: "^250 "
{starttls}        - send: "QUIT\\r"
        - expect: "^221 "
"""
_STARTTLS = """        - send: "STARTTLS\\r"
        - expect: "^220 "
        - starttls: true
        - send: "EHLO prober\\r"
        - expect: "^250 "
"""
BLACKBOX_CONFIG = f"""
modules:
  plain:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
{_DIALOGUE.format(starttls="")}
  starttls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config: {{insecure_skip_verify: true}}
{_DIALOGUE.format(starttls=_STARTTLS)}
"""

EHLO_REPLY = b"250-bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n"


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: ssl.SSLContext) -> None:
    writer.write(b"220 bench.test ESMTP ready\r\n")
    try:
        while line := await reader.readline():
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(EHLO_REPLY)
            elif verb == b"STARTTLS":
                writer.write(b"220 2.0.0 go ahead\r\n")
                await writer.drain()
                await writer.start_tls(tls)
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"502 5.5.2 not here\r\n")
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve(cert_pem: str) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_pem)
    sock = listener()
    server = await asyncio.start_server(lambda r, w: _session(r, w, tls), sock=sock, backlog=4096)
    print(sock.getsockname()[1], flush=True)
    await server.serve_forever()


def start_server(tmp: Path) -> tuple[subprocess.Popen, int]:
    cert = trustme.CA().issue_cert("bench.test")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "cert.pem"))
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp / "cert.pem")], stdout=subprocess.PIPE,
                            text=True)
    return proc, int(proc.stdout.readline())


async def run(b: Bench, port: int, rounds: int) -> None:
    n = len(b.targets)
    print(f"{n} loopback targets, {b.concurrency} checks in flight, median of {rounds} rounds; "
          f"CPU-seconds per 1000 checks\n")
    ratios = []
    for mode in ("plain", "starttls"):
        specs = [SmtpSpec(target=f"{t}:{port}", timeout_s=5, tls="none" if mode == "plain" else "starttls",
                          tls_verify=False, ehlo="prober") for t in b.targets]
        bb_targets = [f"{t}:{port}" for t in b.targets]
        got = []
        for _ in range(rounds):
            got.append({"negahban": await ours("smtp", specs, b.ctx, b.concurrency),
                        "blackbox_exporter": await blackbox(b.session, b.bb_port, b.bb_pid, mode, bb_targets,
                                                            b.concurrency)})
        medians = report(f"smtp {mode}", n, got)
        ratios.append((mode, medians["negahban"] / medians["blackbox_exporter"]))
    print("\nratios (ours / blackbox_exporter):")
    for mode, ratio in ratios:
        print(f"  smtp {mode:<9} {ratio:6.2f}x")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", metavar="CERT_PEM", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return await serve(args.serve)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server, port = start_server(tmp)
        bb, bb_port = start_blackbox(tmp, BLACKBOX_CONFIG)
        try:
            await wait_http(f"http://127.0.0.1:{bb_port}/metrics")
            ctx = await make_context(icmp="off")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as session:
                await run(Bench(ctx, session, bb.pid, bb_port, addresses(args.targets), args.concurrency),
                          port, args.rounds)
            await ctx.close()
        finally:
            for proc in (bb, server):
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
