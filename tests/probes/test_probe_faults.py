"""Real faults between the prober (root namespace) and a target host behind a veth in a test namespace:
link down, 30% ICMP loss (nftables inside the namespace), 300 ms of delay (in the HTTP server; in a user-space
echo responder for ICMP), and recovery."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from probes import HttpSpec, IcmpSpec, Outcome, TcpSpec, probe_http, probe_icmp, probe_tcp
from tests.probes.conftest import Seen, make_app, serve

pytestmark = pytest.mark.netns

@pytest.fixture
async def ns_http(netns_link):
    """An HTTP server listening inside the namespace; yields (ns, link, base URL, Seen)."""
    ns, link = netns_link
    sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((link.ns_addr, 0))
    sock.listen(64)
    seen = Seen()
    runner, port = await serve(make_app(seen), sock=sock)
    yield ns, link, f"http://{link.ns_addr}:{port}", seen
    seen.hang.set()
    await runner.cleanup()


def _patient(spec):
    return spec.model_copy(update={"timeout_s": 5.0})


async def test_http_down_on_link_down_within_timeout_and_up_again(ns_http, ctx):
    ns, link, base, _ = ns_http
    spec = HttpSpec(target=base + "/text", timeout_s=1.0)
    assert (await probe_http(spec, ctx)).ok
    link.down()
    result = await probe_http(spec, ctx)
    assert result.outcome is Outcome.DOWN and result.reason in ("timeout", "unreachable"), result.message
    assert result.latency_s <= 1.0 + 0.2
    link.up()
    # Recovery is about the outcome, not speed: a generous timeout keeps a loaded machine from failing it
    # (a healthy target answers at once either way).
    assert (await probe_http(_patient(spec), ctx)).ok


async def test_http_degraded_by_300ms_delay_then_up_when_restored(ns_http, ctx):
    _, _, base, seen = ns_http
    spec = HttpSpec(target=base + "/slow", timeout_s=2.0, degraded_latency_s=0.2)
    seen.delay_s = 0.3
    slow = await probe_http(spec, ctx)
    assert (slow.outcome, slow.reason) == (Outcome.DEGRADED, "latency"), slow.message
    assert slow.phases["processing"] >= 0.3
    seen.delay_s = 0.0
    assert (await probe_http(spec, ctx)).ok


async def test_tcp_down_on_link_down_and_up_again(ns_http, ctx):
    ns, link, base, _ = ns_http
    spec = TcpSpec(target=base.removeprefix("http://"), timeout_s=1.0)
    assert (await probe_tcp(spec, ctx)).ok
    link.down()
    result = await probe_tcp(spec, ctx)
    assert result.outcome is Outcome.DOWN and result.reason in ("timeout", "unreachable"), result.message
    assert result.latency_s <= 1.2
    link.up()
    # Recovery is about the outcome, not speed: a generous timeout keeps a loaded machine from failing it
    # (a healthy target answers at once either way).
    assert (await probe_tcp(_patient(spec), ctx)).ok


async def test_icmp_down_on_link_down_within_timeout_and_up_again(netns_link, ctx):
    ns, link = netns_link
    spec = IcmpSpec(target=link.ns_addr, count=3, interval_s=0.05, timeout_s=1.0)
    assert (await probe_icmp(spec, ctx)).ok
    link.down()
    result = await probe_icmp(spec, ctx)
    assert result.outcome is Outcome.DOWN and result.reason in ("timeout", "unreachable"), result.message
    assert result.phases["loss"] == 1.0
    link.up()
    # Recovery is about the outcome, not speed: a generous timeout keeps a loaded machine from failing it
    # (a healthy target answers at once either way).
    assert (await probe_icmp(_patient(spec), ctx)).ok


async def test_icmp_degraded_with_the_measured_loss_under_30_percent_drop(netns_link, ctx):
    ns, link = netns_link
    # 400 echoes: the drop count is Binomial(400, 0.3), mean 120, sd 9.2; the bounds below are > 6 sd away.
    spec = IcmpSpec(target=link.ns_addr, count=400, interval_s=0.003, timeout_s=4.0,
                    degraded_loss=0.1, down_loss=0.6)
    ns.drop(30)  # meta l4proto icmp numgen random mod 100 < 30 drop
    lossy = await probe_icmp(spec, ctx)
    assert (lossy.outcome, lossy.reason) == (Outcome.DEGRADED, "loss"), lossy.message
    assert 0.15 < lossy.phases["loss"] < 0.45
    assert lossy.details["sent"] == 400
    ns.clear_drops()
    healthy = await probe_icmp(spec.model_copy(update={"count": 50}), ctx)
    assert healthy.ok and healthy.phases["loss"] == 0


class DelayedEchoResponder:
    """Answers echo requests inside the namespace ``delay_s`` late (the kernel's own replies are off there)."""

    def __init__(self, sock: socket.socket, delay_s: float) -> None:
        self.sock, self.delay_s = sock, delay_s
        self.loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self.loop.add_reader(sock, self._on_request)

    def _on_request(self) -> None:
        data, (src, _) = self.sock.recvfrom(2048)
        icmp = data[(data[0] & 0x0F) * 4:]
        if icmp[0] != 8:
            return
        reply = bytearray(b"\x00\x00\x00\x00" + icmp[4:])
        struct.pack_into("!H", reply, 2, _checksum(bytes(reply)))
        self.loop.call_later(self.delay_s, self.sock.sendto, bytes(reply), (src, 0))

    def close(self) -> None:
        self.loop.remove_reader(self.sock)
        self.sock.close()


def _checksum(data: bytes) -> int:
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


async def test_icmp_degraded_by_300ms_delay_then_up_when_restored(netns_link, ctx):
    ns, link = netns_link
    ns.sysctl("net.ipv4.icmp_echo_ignore_all", 1)
    responder = DelayedEchoResponder(ns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), 0.3)
    spec = IcmpSpec(target=link.ns_addr, count=3, interval_s=0.05, timeout_s=2.0, degraded_rtt_s=0.2)
    try:
        slow = await probe_icmp(spec, ctx)
    finally:
        responder.close()
    assert (slow.outcome, slow.reason) == (Outcome.DEGRADED, "latency"), slow.message
    assert slow.phases["rtt_min"] >= 0.3 and slow.phases["loss"] == 0
    ns.sysctl("net.ipv4.icmp_echo_ignore_all", 0)
    restored = await probe_icmp(spec, ctx)
    assert restored.ok and restored.phases["rtt_max"] < 0.2
