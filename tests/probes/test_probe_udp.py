"""UDP probe: the test DNS server (tests/probes/dns_server.py), a loopback NTP responder, a socket that never
answers (timeout) and a closed port (ICMP port unreachable: refused)."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.message
import pytest
from pydantic import ValidationError

from probes import PROBERS, Outcome, UdpSpec, probe_udp
from tests.probes.dns_server import DnsServer
from tests.probes.port_servers import free_port


@pytest.fixture
async def dns_server():
    server = await DnsServer().start()
    yield f"127.0.0.1:{server.port}"
    await server.stop()


class _Ntp(asyncio.DatagramProtocol):
    """Answers an NTP client request as a server would: mode 4, the client's transmit time as origin."""

    def __init__(self, first_byte: int, stratum: int) -> None:
        self.first_byte, self.stratum = first_byte, stratum

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = bytes([self.first_byte, self.stratum, 6, 0xEC]) + bytes(8) + b"RATE" + bytes(8) + data[40:48] \
            + bytes(16)
        self.transport.sendto(reply, addr)


@pytest.fixture
async def ntp_server():
    """Yields make(first_byte, stratum) -> host:port of a loopback NTP responder."""
    transports = []

    async def make(first_byte: int = 0x24, stratum: int = 2) -> str:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Ntp(first_byte, stratum),
                                                           local_addr=("127.0.0.1", 0))
        transports.append(transport)
        return f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"

    yield make
    for t in transports:
        t.close()


async def test_the_dns_preset_asks_the_dns_server_and_checks_the_answer_is_ours(dns_server, ctx):
    result = await PROBERS["udp"](UdpSpec(target=dns_server, preset="dns", dns_name="test."), ctx)
    assert (result.outcome, result.reason, result.details["rcode"]) == (Outcome.UP, "ok", "NOERROR")
    nx = await probe_udp(UdpSpec(target=dns_server, preset="dns", dns_name="nowhere.invalid."), ctx)
    assert (nx.outcome, nx.details["rcode"]) == (Outcome.UP, "NXDOMAIN")  # an answer is an answer: alive
    assert {"resolve", "processing"} <= result.phases.keys()


@pytest.mark.parametrize(("expect", "outcome", "reason"), [
    ({"expect_hex_prefix": "4e47"}, Outcome.UP, "ok"),  # the reply starts with our query id, 0x4e47
    ({"expect_hex_prefix": "4e4781"}, Outcome.UP, "ok"),  # ... and the QR bit
    ({"expect_hex_prefix": "ffff"}, Outcome.DOWN, "expect_mismatch"),
    ({"expect": "www\\x04test"}, Outcome.UP, "ok"),
    ({"expect": "^HELLO"}, Outcome.DOWN, "expect_mismatch"),
    ({}, Outcome.UP, "ok"),
])
async def test_raw_bytes_out_and_a_prefix_or_regex_back(dns_server, ctx, expect, outcome, reason):
    query = dns.message.make_query("www.test.", "A", id=0x4E47).to_wire()
    result = await probe_udp(UdpSpec(target=dns_server, send_hex=query.hex(), **expect), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    assert result.details["reply_hex"].startswith("4e47")


@pytest.mark.parametrize(("first_byte", "stratum", "outcome", "reason"), [
    (0x24, 2, Outcome.UP, "ok"),  # LI 0, version 4, mode 4 (server)
    (0x24, 0, Outcome.DOWN, "ntp_kiss_of_death"),
    (0xE4, 16, Outcome.DEGRADED, "ntp_unsynchronised"),  # LI 3: clock not synchronised
    (0x23, 2, Outcome.DOWN, "expect_mismatch"),  # mode 3: a client, not a server
])
async def test_the_ntp_preset_checks_mode_origin_and_stratum(ntp_server, ctx, first_byte, stratum, outcome, reason):
    result = await probe_udp(UdpSpec(target=await ntp_server(first_byte, stratum), preset="ntp"), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message


async def test_no_reply_is_a_timeout(ctx):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:  # bound, so no ICMP error: just silence
        quiet.bind(("127.0.0.1", 0))
        result = await probe_udp(UdpSpec(target=f"127.0.0.1:{quiet.getsockname()[1]}", send_text="hello",
                                         timeout_s=0.3), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout")


async def test_a_closed_port_answers_port_unreachable_and_is_refused(ctx):
    result = await probe_udp(UdpSpec(target=f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}", preset="ntp"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "refused")
    assert "port unreachable" in result.message


async def test_it_works_over_ipv6(ctx):
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as echo:
        echo.bind(("::1", 0))
        echo.setblocking(False)
        loop = asyncio.get_running_loop()
        probe = asyncio.create_task(probe_udp(UdpSpec(target=f"[::1]:{echo.getsockname()[1]}",
                                                      send_text="ping", expect="^pong"), ctx))
        data, addr = await loop.sock_recvfrom(echo, 64)
        await loop.sock_sendto(echo, b"pong " + data, addr)
        result = await probe
    assert result.ok, result.message


@pytest.mark.parametrize(("fields", "field"), [
    ({}, "send_text"),
    ({"preset": "dns", "send_hex": "00"}, "send_text"),
    ({"send_hex": "xyz"}, "send_hex"),
    ({"send_text": "a", "expect": "a", "expect_hex_prefix": "61"}, "expect_hex_prefix"),
    ({"send_text": "a", "expect": "("}, "expect"),
    ({"preset": "ntp", "target": "127.0.0.1"}, "target"),
    ({"preset": "snmp"}, "preset"),
])
def test_bad_specs_are_refused_naming_the_field(fields, field):
    with pytest.raises(ValidationError) as err:
        UdpSpec(**({"target": "127.0.0.1:123"} | fields))
    assert field in [e["loc"][0] for e in err.value.errors()], err.value.errors()


def test_the_ntp_request_is_a_48_byte_version_4_client_packet():
    from probes.udp import _ntp_request

    packet = _ntp_request()
    assert len(packet) == 48 and packet[0] == 0x23
    assert struct.unpack("!I", packet[40:44])[0] > 3_900_000_000  # seconds since 1900: after 2023
