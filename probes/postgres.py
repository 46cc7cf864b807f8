"""PostgreSQL probe: optional SSLRequest and TLS, then a StartupMessage, and the server's first answer judged.

No credentials are needed: an authentication request, or a refusal such as "database does not exist" or "role
does not exist", both prove the server is up and serving. "The database system is starting up" / "shutting
down" (SQLSTATE 57P03 and the rest of class 57) is DOWN; class 53 ("too many clients already", 53300; out of
memory or disk) is DEGRADED: the server answers, but new clients are refused.
"""

from __future__ import annotations

import struct
from typing import Literal

from pydantic import Field, field_validator

from probes.base import Failure, Outcome, ProbeResult
from probes.net import Conn, converse, start_tls
from probes.tcp import TlsFields, host_port

__all__ = ["PostgresSpec", "probe_postgres"]

_SSL_REQUEST = struct.pack("!II", 8, 80877103)
_PROTOCOL_3 = 196608
_MAX_MESSAGE = 1 << 16  # the answers before ReadyForQuery are small
_AUTH_METHODS = {0: "ok", 2: "kerberos", 3: "password", 5: "md5", 7: "gss", 9: "sspi", 10: "sasl"}
_DOWN_CLASSES = {"57": "cannot_connect_now", "58": "system_error", "XX": "internal_error"}
_DEGRADED_CLASSES = {"53": "insufficient_resources"}
_REASONS = {"57P03": "cannot_connect_now", "53300": "too_many_clients", "57P01": "shutting_down"}


class PostgresSpec(TlsFields):
    """``target`` is ``host`` or ``host:port`` (5432 by default)."""

    kind: Literal["postgres"] = "postgres"
    timeout_s: float = Field(5.0, gt=0, le=120)
    user: str = Field("negahban", min_length=1, max_length=63)
    database: str = Field("postgres", min_length=1, max_length=63)

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host_port(v, 5432)
        return v


async def probe_postgres(spec: PostgresSpec, ctx) -> ProbeResult:
    host, port = host_port(spec.target, 5432)

    async def talk(conn: Conn, details: dict) -> tuple[Outcome, str, str]:
        if spec.tls:
            await _ssl_request(conn, spec.tls_context(ctx), spec.server_name or host, details)
        conn.stream.transport.write(_startup(spec.user, spec.database))
        return await _judge(conn, spec, details)

    return await converse(spec, ctx, host, port, talk)


async def _ssl_request(conn: Conn, tls, server_name: str, details: dict) -> None:
    conn.stream.transport.write(_SSL_REQUEST)
    answer = await conn.stream.read_until(lambda buf: 1 if buf else 0, "the answer to SSLRequest")
    if answer == b"N":
        raise Failure("tls_unavailable", "the server does not offer TLS (SSLRequest answered N)")
    if answer != b"S":
        raise Failure("protocol_error", f"unexpected answer {answer!r} to SSLRequest")
    await start_tls(conn, tls, server_name)
    details["tls"] = True


def _startup(user: str, database: str) -> bytes:
    params = b"".join(k + b"\x00" + v.encode() + b"\x00" for k, v in
                      ((b"user", user), (b"database", database), (b"application_name", "negahban")))
    body = struct.pack("!I", _PROTOCOL_3) + params + b"\x00"
    return struct.pack("!I", len(body) + 4) + body


def _whole_message(buf: bytearray) -> int:
    if len(buf) < 5:
        return 0
    size = 1 + struct.unpack_from("!I", buf, 1)[0]
    if size > _MAX_MESSAGE:  # not PostgreSQL (an HTTP or SSH banner read as a length): judge what came
        return len(buf)
    return size if len(buf) >= size else 0


async def _message(conn: Conn) -> tuple[bytes, bytes]:
    raw = await conn.stream.read_until(_whole_message, "the answer to the startup message")
    return raw[:1], raw[5:]


async def _judge(conn: Conn, spec: PostgresSpec, details: dict) -> tuple[Outcome, str, str]:
    kind, body = await _message(conn)
    if kind == b"E":
        return _error(body, details)
    if kind != b"R" or len(body) < 4:
        raise Failure("protocol_error", f"not a PostgreSQL answer (message type {kind!r})")
    code = struct.unpack_from("!I", body)[0]
    details["auth"] = _AUTH_METHODS.get(code, str(code))
    if code != 0:
        return Outcome.UP, "ok", f"PostgreSQL asks for {details['auth']} authentication"
    await _until_ready(conn, details)
    conn.stream.transport.write(b"X\x00\x00\x00\x04")  # Terminate: a clean goodbye, nothing in the log
    version = details.get("server_version", "?")
    return Outcome.UP, "ok", f"PostgreSQL {version}: logged in as {spec.user} without a password"


async def _until_ready(conn: Conn, details: dict) -> None:
    """After AuthenticationOk: read ParameterStatus messages (server_version) until ReadyForQuery."""
    while True:
        kind, body = await _message(conn)
        if kind == b"Z":
            return
        if kind == b"E":  # with trust auth, a missing role or database is told after AuthenticationOk
            details["auth"] = "refused"
            outcome, reason, message = _error(body, details)
            raise Failure(reason, message, outcome)
        if kind == b"S":
            name, value, _ = body.split(b"\x00", 2)
            if name == b"server_version":
                details["server_version"] = value.decode("utf-8", "replace")


def _down_reason(sqlstate: str, text: str) -> str | None:
    # 57P03 covers several states; the English message tells them apart (a translated one keeps the code's name)
    for words, reason in (("starting up", "starting_up"), ("shutting down", "shutting_down"),
                          ("recovery", "in_recovery")):
        if sqlstate == "57P03" and words in text:
            return reason
    return _REASONS.get(sqlstate)


def _error(body: bytes, details: dict) -> tuple[Outcome, str, str]:
    fields = {f[:1].decode("latin-1"): f[1:].decode("utf-8", "replace") for f in body.split(b"\x00") if f}
    sqlstate, text = fields.get("C", ""), fields.get("M", "")[:300]
    details.update(sqlstate=sqlstate, error=text)
    cls = sqlstate[:2]
    if cls in _DOWN_CLASSES:
        raise Failure(_down_reason(sqlstate, text) or _DOWN_CLASSES[cls], f"PostgreSQL {sqlstate}: {text}")
    if cls in _DEGRADED_CLASSES:
        return Outcome.DEGRADED, _REASONS.get(sqlstate, _DEGRADED_CLASSES[cls]), f"PostgreSQL {sqlstate}: {text}"
    return Outcome.UP, "ok", f"PostgreSQL answers ({sqlstate}: {text})"
