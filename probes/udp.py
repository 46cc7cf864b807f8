"""UDP probe: send one datagram, expect a reply matching a regex or a byte prefix within the timeout.

Presets build the request and judge the reply: ``dns`` (a query for ``dns_name``, the reply must answer it)
and ``ntp`` (a client request; the reply must be a server reply with a non-zero stratum). The socket is
connected, so an ICMP port unreachable comes back as ConnectionRefusedError: DOWN ``refused``. No reply at
all is DOWN ``timeout`` (UDP cannot tell a dead host from a silent service).
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import time
from typing import Any, Literal

import dns.exception
import dns.message
import dns.rcode
from pydantic import Field, ValidationInfo, field_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase, up_or_degraded, valid_regex
from probes.net import resolve
from probes.tcp import split_host_port

__all__ = ["UdpSpec", "probe_udp"]

_NTP_EPOCH = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


class UdpSpec(SpecBase):
    """``target`` is ``host:port``. Give ``send_hex`` or ``send_text`` (or a ``preset``), and optionally
    ``expect`` (a regex over the reply's bytes) or ``expect_hex_prefix``; without either any reply passes."""

    kind: Literal["udp"] = "udp"
    timeout_s: float = Field(3.0, gt=0, le=120)
    preset: Literal["dns", "ntp"] | None = None
    dns_name: str = Field(".", min_length=1, max_length=255)
    send_hex: str | None = Field(None, max_length=2 * 1400)
    send_text: str | None = Field(None, max_length=1400, validate_default=True)
    expect: str | None = None
    expect_hex_prefix: str | None = Field(None, validate_default=True)
    ip_version: Literal[0, 4, 6] = 0
    degraded_latency_s: float | None = Field(None, gt=0)

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        split_host_port(v)
        return v

    @field_validator("send_hex", "expect_hex_prefix")
    @classmethod
    def _hex(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.field_name == "expect_hex_prefix" and v is not None and info.data.get("expect") is not None:
            raise ValueError("give expect or expect_hex_prefix, not both")
        if v is not None:
            try:
                bytes.fromhex(v)
            except ValueError:
                raise ValueError("not hexadecimal bytes (e.g. '1b00ff')") from None
        return v

    @field_validator("expect")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return valid_regex(v, "expect", as_bytes=True)

    @field_validator("send_text")
    @classmethod
    def _one_request(cls, v: str | None, info: ValidationInfo) -> str | None:
        if "preset" not in info.data or "send_hex" not in info.data:
            return v  # one of them is invalid, and that error says so
        given = [n for n in ("preset", "send_hex") if info.data.get(n) is not None] + (["send_text"] if v else [])
        if len(given) != 1:
            raise ValueError(f"give exactly one of preset, send_hex, send_text (got {', '.join(given) or 'none'})")
        return v


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.got.done():
            self.got.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.got.done():
            self.got.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.got.done():
            self.got.set_exception(exc or ConnectionError("socket closed"))


async def probe_udp(spec: UdpSpec, ctx) -> ProbeResult:
    start = time.perf_counter()
    phases: dict[str, float] = {}
    details: dict[str, Any] = {}
    try:
        async with asyncio.timeout(spec.timeout_s):
            host, port = split_host_port(spec.target)
            addr, _, phases["resolve"] = await resolve(ctx, host, spec.ip_version)
            details["address"] = addr
            request, judge = _request(spec)
            t0 = time.perf_counter()
            try:
                reply = await _exchange(addr, port, request)
            finally:
                phases["processing"] = time.perf_counter() - t0
        message = judge(reply, request, details)
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, "timeout", f"no UDP reply within {spec.timeout_s:g}s",
                           time.perf_counter() - start, phases, details)
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start, phases, details)
    latency = time.perf_counter() - start
    return ProbeResult(*up_or_degraded(latency, spec.degraded_latency_s, message), latency, phases, details)


async def _exchange(addr: str, port: int, request: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(_Reply, remote_addr=(addr, port))
    except OSError as exc:
        raise Failure("unreachable", f"cannot send to {addr}:{port}: {exc.strerror or exc}") from None
    try:
        transport.sendto(request)
        return await proto.got
    except ConnectionRefusedError:
        raise Failure("refused", f"{addr}:{port} answered ICMP port unreachable") from None
    except OSError as exc:
        raise Failure("unreachable", f"{addr}:{port}: {exc.strerror or exc}") from None
    finally:
        transport.close()


def _request(spec: UdpSpec):
    """Return (datagram, judge); ``judge(reply, request, details)`` returns a message or raises Failure."""
    if spec.preset == "dns":
        return dns.message.make_query(spec.dns_name, "NS").to_wire(), _judge_dns
    if spec.preset == "ntp":
        return _ntp_request(), _judge_ntp
    data = bytes.fromhex(spec.send_hex) if spec.send_hex is not None else spec.send_text.encode()
    return data, lambda reply, request, details: _judge_bytes(spec, reply, details)


def _judge_bytes(spec: UdpSpec, reply: bytes, details: dict) -> str:
    details["reply_hex"] = reply[:64].hex()
    if spec.expect is not None and re.search(spec.expect.encode(), reply) is None:
        raise Failure("expect_mismatch", f"the reply does not match {spec.expect!r}")
    if spec.expect_hex_prefix is not None and not reply.startswith(bytes.fromhex(spec.expect_hex_prefix)):
        raise Failure("expect_mismatch", f"the reply does not start with {spec.expect_hex_prefix}")
    return f"UDP reply of {len(reply)} bytes"


def _judge_dns(reply: bytes, request: bytes, details: dict) -> str:
    try:
        query, answer = dns.message.from_wire(request), dns.message.from_wire(reply)
    except dns.exception.DNSException as exc:
        raise Failure("expect_mismatch", f"not a DNS reply: {exc}") from None
    if not query.is_response(answer):
        raise Failure("expect_mismatch", "a DNS message that does not answer our query")
    details["rcode"] = dns.rcode.to_text(answer.rcode())
    return f"DNS answers ({details['rcode']})"


def _ntp_request() -> bytes:
    # LI 0, version 4, mode 3 (client); the transmit timestamp is echoed back as the origin timestamp
    now = time.time() + _NTP_EPOCH
    return bytes([0x23]) + bytes(39) + struct.pack("!I", int(now)) + os.urandom(4)


def _judge_ntp(reply: bytes, request: bytes, details: dict) -> str:
    if len(reply) < 48 or reply[0] & 0x07 != 4:
        raise Failure("expect_mismatch", "not an NTP server reply")
    if reply[24:32] != request[40:48]:
        raise Failure("expect_mismatch", "an NTP reply to another request (origin timestamp differs)")
    stratum = details["stratum"] = reply[1]
    if stratum == 0:
        raise Failure("ntp_kiss_of_death", f"NTP kiss-o'-death {reply[12:16].decode('ascii', 'replace')!r}")
    if reply[0] >> 6 == 3:
        raise Failure("ntp_unsynchronised", "the NTP server says its clock is not synchronised",
                      Outcome.DEGRADED)
    return f"NTP answers (stratum {stratum})"
