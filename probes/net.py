"""Connection plumbing shared by the HTTP and TCP probes: resolve, connect, TLS, certificate expiry.

Plain asyncio protocols instead of a client library: every check is one fresh connection, each phase is timed
exactly where it happens, and the CPU per check stays well under an HTTP client's (see bench/).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from probes.base import Failure, Outcome

__all__ = ["Conn", "Stream", "resolve", "open_conn", "connect_only", "start_tls", "cert_verdict", "numeric_family"]

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
_X509_V_ERR_CERT_HAS_EXPIRED = 10
_FAMILIES = {0: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}


def numeric_family(host: str) -> int:
    """Return AF_INET/AF_INET6 if ``host`` is an address literal, else 0."""
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return fam
        except OSError:
            pass
    return 0


async def resolve(ctx, host: str, ip_version: int) -> tuple[str, int, float]:
    """Return (address, family, seconds spent resolving) for ``host``; ``ip_version`` is 0, 4 or 6."""
    want = _FAMILIES[ip_version]
    fam = numeric_family(host)
    if fam:
        if want and fam != want:
            raise Failure("dns_error", f"{host} is not an IPv{ip_version} address")
        return host, fam, 0.0
    start = time.perf_counter()
    try:
        addrs = await ctx.resolve(host, want)
    except (OSError, UnicodeError) as exc:
        raise Failure("dns_error", f"cannot resolve {host}: {exc}") from None
    if not addrs:
        raise Failure("dns_error", f"{host} has no IPv{ip_version or '4/6'} address")
    return addrs[0], numeric_family(addrs[0]), time.perf_counter() - start


class Stream(asyncio.Protocol):
    """Collects what the peer sends; ``wait()`` returns when ``done_when(buf)`` holds, at EOF, or on error."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.first_byte_at: float | None = None
        self.eof = False
        self.error: BaseException | None = None
        self.done_when = lambda buf: False
        self._waiter: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
        self.buf += data
        if self._waiter is not None and self.done_when(self.buf):
            self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = self.error or exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        if self.eof or self.done_when(self.buf):
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@dataclass
class Conn:
    stream: Stream
    address: str
    phases: dict[str, float] = field(default_factory=dict)
    peer_cert_der: bytes | None = None


async def open_conn(ctx, host: str, port: int, ip_version: int, tls: ssl.SSLContext | None,
                    server_name: str | None, details: dict, phases: dict[str, float]) -> Conn:
    """Resolve, connect and (optionally) handshake TLS; record ``details["address"]`` and each finished
    phase in ``phases`` (so a failure still shows how far it got). Raise ``Failure`` on error.

    The caller must ``conn.stream.close()`` (a ``finally`` does it, so cancellation leaks nothing)."""
    addr, _, phases["resolve"] = await resolve(ctx, host, ip_version)
    details["address"] = addr
    loop = asyncio.get_running_loop()
    stream = Stream()
    conn = Conn(stream, addr, phases)
    t0 = time.perf_counter()
    try:
        await loop.create_connection(lambda: stream, addr, port)
    except OSError as exc:
        raise _connect_failure(exc, addr, port) from None
    conn.phases["connect"] = time.perf_counter() - t0
    if tls is not None:
        try:
            await start_tls(conn, tls, server_name or host)
        except BaseException:  # a timeout or cancellation mid-handshake must not leak the connection
            stream.close()
            raise
    return conn


async def connect_only(ctx, host: str, port: int, ip_version: int, details: dict) -> dict[str, float]:
    """Resolve and connect, then close: a bare socket, no transport, for the cheapest TCP check."""
    addr, fam, resolve_s = await resolve(ctx, host, ip_version)
    details["address"] = addr
    sock = socket.socket(fam, socket.SOCK_STREAM)
    t0 = time.perf_counter()
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (addr, port))
    except OSError as exc:
        raise _connect_failure(exc, addr, port) from None
    finally:
        sock.close()
    return {"resolve": resolve_s, "connect": time.perf_counter() - t0}


async def start_tls(conn: Conn, tls: ssl.SSLContext, server_name: str) -> None:
    """Handshake TLS on ``conn`` (at connect, or after a STARTTLS command); record the ``tls`` phase and the
    peer certificate. Raise ``Failure`` (``cert_expired``, ``tls_error``) on error, the connection closed."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    stream = conn.stream
    try:
        stream.transport = await loop.start_tls(stream.transport, stream, tls, server_hostname=server_name)
    except ssl.SSLCertVerificationError as exc:
        stream.close()
        if exc.verify_code == _X509_V_ERR_CERT_HAS_EXPIRED:
            raise Failure("cert_expired", f"certificate expired: {exc.verify_message}") from None
        raise Failure("tls_error", f"certificate not trusted: {exc.verify_message}") from None
    except (ssl.SSLError, ConnectionError) as exc:
        stream.close()
        raise Failure("tls_error", f"TLS handshake failed: {exc}") from None
    conn.phases["tls"] = time.perf_counter() - t0
    conn.peer_cert_der = stream.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)


def _connect_failure(exc: OSError, addr: str, port: int) -> Failure:
    where = f"{addr}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return Failure("refused", f"connection refused by {where}")
    if exc.errno in _UNREACHABLE:
        return Failure("unreachable", f"{where} unreachable: {exc.strerror}")
    return Failure("connect_error", f"cannot connect to {where}: {exc}")


def cert_verdict(der: bytes | None, now: datetime, warn_days: float, details: dict) -> Failure | None:
    """Record the certificate's not-after in ``details``; return a Failure if it expired or expires soon."""
    if der is None:
        return None
    try:
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError as exc:  # a certificate cryptography cannot parse: say so rather than crash the check
        details["cert_error"] = str(exc)[:200]
        return None
    details["cert_not_after"] = not_after.isoformat()
    days = (not_after - now).total_seconds() / 86400
    details["cert_days_left"] = round(days, 2)
    if days <= 0:
        return Failure("cert_expired", f"certificate expired on {not_after:%Y-%m-%d}")
    if days < warn_days:
        return Failure("cert_expiring", f"certificate expires in {days:.1f} days ({not_after:%Y-%m-%d})",
                       Outcome.DEGRADED)
    return None
