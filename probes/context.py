"""The probe context: every network collaborator a probe uses, built once at start-up.

The service calls ``await ProbeContext.create(...)`` at start-up and ``await ctx.close()`` at shutdown. Tests
build their own with a test CA and the ICMP mode they need.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from probes.icmp_engine import IcmpEngine

__all__ = ["ProbeContext", "make_context", "system_resolve", "IcmpMode"]

Resolve = Callable[[str, int], Awaitable[list[str]]]
IcmpMode = Literal["auto", "privileged", "unprivileged", "off"]


async def system_resolve(host: str, family: int) -> list[str]:
    """Resolve ``host`` with the system resolver (getaddrinfo); addresses of ``family`` (0 = any)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ProbeContext:
    """Collaborators a probe may use: everything that touches the network comes from here.

    There is no shared HTTP session or connection pool on purpose: every HTTP/TCP check opens a fresh
    connection (a pooled keep-alive must not hide a dead server) and carries no cookies or auth of another
    monitor. The two TLS contexts are shared because building one costs milliseconds; they hold no session
    cache, so every handshake is a full one.
    """

    ssl_verify: ssl.SSLContext
    ssl_noverify: ssl.SSLContext
    resolve: Resolve = system_resolve
    icmp: IcmpEngine | None = None
    dns_servers: list[str] = field(default_factory=list)
    now: Callable[[], datetime] = _utcnow
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def create(cls, *, icmp: IcmpMode = "auto", trust_ca_pem: str | bytes | None = None,
                     resolve: Resolve = system_resolve, now: Callable[[], datetime] = _utcnow,
                     dns_servers: list[str] | None = None) -> ProbeContext:
        """Build the context. Raise ``IcmpUnavailable`` (saying what to change) if ICMP was asked for and
        neither raw nor datagram ICMP sockets can be opened; ``icmp="off"`` skips ICMP entirely."""
        engine = None if icmp == "off" else IcmpEngine.open(icmp)
        return cls(ssl_verify=_verify_context(trust_ca_pem), ssl_noverify=_noverify_context(),
                   resolve=resolve, icmp=engine, dns_servers=dns_servers or _system_dns_servers(), now=now)

    async def close(self) -> None:
        if self.icmp is not None:
            self.icmp.close()
            self.icmp = None
        for extra in self.extras.values():  # shared engines a probe kind keeps here (e.g. SNMP's)
            close = getattr(extra, "close", None)
            if callable(close) and inspect.isawaitable(result := close()):
                await result


make_context = ProbeContext.create


def _verify_context(trust_ca_pem: str | bytes | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if trust_ca_pem:
        pem = trust_ca_pem.decode() if isinstance(trust_ca_pem, bytes) else trust_ca_pem
        ctx.load_verify_locations(cadata=pem)
    _no_session_reuse(ctx)
    return ctx


def _noverify_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _no_session_reuse(ctx)
    return ctx


def _no_session_reuse(ctx: ssl.SSLContext) -> None:
    # TLS 1.3 tickets would let a later handshake skip work a real client does; a check must be a full one.
    ctx.options |= ssl.OP_NO_TICKET


def _system_dns_servers() -> list[str]:
    try:
        import dns.resolver

        return list(dns.resolver.Resolver().nameservers)
    except Exception:  # no /etc/resolv.conf: DNS probes must then name their resolver
        return []
