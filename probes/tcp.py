"""TCP probe: connect, optionally TLS (with certificate expiry), optionally send and expect a banner."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Literal

from pydantic import Field, field_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase, up_or_degraded, valid_regex
from probes.net import Conn, cert_verdict, connect_only, numeric_family, open_conn

__all__ = ["TcpSpec", "TlsFields", "probe_tcp", "split_host_port", "host_port"]


def split_host_port(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6addr]:port`` -> (host, port); ValueError if malformed."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ValueError("target must be host:port (IPv6 as [addr]:port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 target must be written [addr]:port")
    return host, int(port)


def host_port(target: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``v6addr``, ``[v6addr]`` or ``[v6addr]:port`` -> (host, port)."""
    if target.startswith("[") and target.endswith("]"):
        return target[1:-1], default_port
    if target.count(":") > 1 and not target.startswith("["):
        if numeric_family(target):
            return target, default_port
        raise ValueError("an IPv6 target must be written [addr]:port")
    if ":" not in target:
        return target, default_port
    return split_host_port(target)


class TlsFields(SpecBase):
    """The TLS options of a protocol probe that may run over TLS (off unless ``tls: true``)."""

    tls: bool = False
    tls_verify: bool = True
    server_name: str | None = None
    cert_expiry_warn_days: float = Field(14.0, ge=0)
    ip_version: Literal[0, 4, 6] = 0
    degraded_latency_s: float | None = Field(None, gt=0)

    def tls_context(self, ctx):
        """The client TLS context this spec asks for, or None without TLS."""
        if not self.tls:
            return None
        return ctx.ssl_verify if self.tls_verify else ctx.ssl_noverify


class TcpSpec(SpecBase):
    kind: Literal["tcp"] = "tcp"
    send: str | None = None
    expect: str | None = None  # a regex the peer's bytes must match (e.g. "^SSH-2.0-")
    tls: bool = False
    tls_verify: bool = True
    server_name: str | None = None
    cert_expiry_warn_days: float = Field(14.0, ge=0)
    ip_version: Literal[0, 4, 6] = 0
    max_read_bytes: int = Field(65536, gt=0)
    degraded_latency_s: float | None = Field(None, gt=0)

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        split_host_port(v)
        return v

    @field_validator("expect")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return valid_regex(v, "expect", as_bytes=True)


async def probe_tcp(spec: TcpSpec, ctx) -> ProbeResult:
    start = time.perf_counter()
    phases: dict[str, float] = {}
    details: dict[str, Any] = {}
    stage = "connect"
    conn: Conn | None = None
    try:
        async with asyncio.timeout(spec.timeout_s):
            host, port = split_host_port(spec.target)
            if not spec.tls and spec.send is None and spec.expect is None:
                phases.update(await connect_only(ctx, host, port, spec.ip_version, details))
                return _connected(spec, time.perf_counter() - start, phases, details)
            tls = (ctx.ssl_verify if spec.tls_verify else ctx.ssl_noverify) if spec.tls else None
            conn = await open_conn(ctx, host, port, spec.ip_version, tls, spec.server_name, details, phases)
            stage = "expect"
            await _converse(spec, conn, details)
        return _judge(spec, ctx, conn, time.perf_counter() - start, phases, details)
    except TimeoutError:
        reason, what = ("expect_mismatch", f"connected, no answer matching {spec.expect!r}") \
            if stage == "expect" else ("timeout", "no connection")
        return ProbeResult(Outcome.DOWN, reason, f"{what} within {spec.timeout_s:g}s",
                           time.perf_counter() - start, phases, details)
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start, phases, details)
    finally:
        if conn is not None:
            conn.stream.close()


async def _converse(spec: TcpSpec, conn: Conn, details: dict) -> None:
    stream = conn.stream
    if spec.send is not None:
        stream.transport.write(spec.send.encode())
    if spec.expect is None:
        return
    pattern = re.compile(spec.expect.encode())
    stream.done_when = lambda buf: len(buf) >= spec.max_read_bytes or pattern.search(buf) is not None
    sent = time.perf_counter()
    await stream.wait()
    first = stream.first_byte_at or time.perf_counter()
    conn.phases["processing"] = first - sent
    details["banner"] = bytes(stream.buf[:200]).decode("utf-8", "replace")
    if pattern.search(stream.buf) is None:
        raise Failure("expect_mismatch", f"answer does not match {spec.expect!r}")


def _judge(spec: TcpSpec, ctx, conn: Conn, latency: float, phases: dict, details: dict) -> ProbeResult:
    verdict = cert_verdict(conn.peer_cert_der, ctx.now(), spec.cert_expiry_warn_days, details)
    if verdict is not None:
        return ProbeResult(verdict.outcome, verdict.reason, verdict.message, latency, phases, details)
    return _connected(spec, latency, phases, details)


def _connected(spec: TcpSpec, latency: float, phases: dict, details: dict) -> ProbeResult:
    outcome, reason, message = up_or_degraded(latency, spec.degraded_latency_s,
                                              f"connected to {details['address']}")
    return ProbeResult(outcome, reason, message, latency, phases, details)
