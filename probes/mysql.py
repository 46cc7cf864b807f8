"""MySQL/MariaDB probe: read the server's greeting (protocol 10), then try a password-less login and quit.

No credentials are needed. The login attempt is there because a client that hangs up right after the
greeting is a *handshake* error to the server, and ``max_connect_errors`` (default 100) of those in a row
block the probing host ("Host ... is blocked"); a refused login is an *authentication* error, which does not
count (see the server's ``host_cache``). ``user: null`` reads the greeting only (safe from loopback, which the
host cache ignores).
"""

from __future__ import annotations

import struct
from typing import Literal

from pydantic import Field, field_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase
from probes.net import Conn, converse
from probes.tcp import host_port

__all__ = ["MysqlSpec", "probe_mysql"]

# Capabilities of the login attempt: 4.1 protocol, 4.1 auth (length-prefixed response), plugin auth.
_CLIENT_CAPS = 0x0000_0200 | 0x0000_8000 | 0x0008_0000
_UTF8MB4 = 45
_COM_QUIT = b"\x01"
# Server errors that mean "alive but not serving clients": DOWN with a reason of their own.
_ERRORS = {1040: "too_many_connections", 1129: "host_blocked", 1130: "host_not_allowed",
           1053: "shutting_down", 1203: "too_many_connections"}
_ACCESS_DENIED = 1045
_MAX_PACKET = 1 << 16  # greetings and login answers are a few hundred bytes


class MysqlSpec(SpecBase):
    """``target`` is ``host`` or ``host:port`` (3306 by default)."""

    kind: Literal["mysql"] = "mysql"
    timeout_s: float = Field(5.0, gt=0, le=120)
    user: str | None = Field("negahban", min_length=1, max_length=80)
    ip_version: Literal[0, 4, 6] = 0
    degraded_latency_s: float | None = Field(None, gt=0)

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host_port(v, 3306)
        return v


async def probe_mysql(spec: MysqlSpec, ctx) -> ProbeResult:
    host, port = host_port(spec.target, 3306)

    async def talk(conn: Conn, details: dict) -> tuple[Outcome, str, str]:
        seq, greeting = await _packet(conn, "the greeting")
        _greeting(greeting, details)
        if spec.user is None:
            return Outcome.UP, "ok", f"MySQL {details['server_version']} greets"
        return await _login(conn, spec.user, seq + 1, details)

    return await converse(spec, ctx, host, port, talk)


def _whole_packet(buf: bytearray) -> int:
    if len(buf) < 4:
        return 0
    size = 4 + int.from_bytes(buf[:3], "little")
    if size > _MAX_PACKET:  # not MySQL (an SSH or HTTP banner read as a length): judge what came
        return len(buf)
    return size if len(buf) >= size else 0


async def _packet(conn: Conn, what: str) -> tuple[int, bytes]:
    raw = await conn.stream.read_until(_whole_packet, what)
    return raw[3], raw[4:]


def _send(conn: Conn, seq: int, payload: bytes) -> None:
    conn.stream.transport.write(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)


def _error(payload: bytes, details: dict) -> Failure:
    """An ERR packet: 0xff, code, optional '#' + SQLSTATE, message."""
    code = details["error_code"] = int.from_bytes(payload[1:3], "little")
    text = payload[3:]
    if text[:1] == b"#":
        text = text[6:]
    message = text.decode("utf-8", "replace")[:300]
    return Failure(_ERRORS.get(code, "server_error"), f"MySQL error {code}: {message}")


def _greeting(payload: bytes, details: dict) -> None:
    if payload[:1] == b"\xff":
        raise _error(payload, details)
    if payload[:1] != b"\x0a":
        raise Failure("protocol_error", f"not a MySQL greeting (protocol byte {payload[:1].hex() or 'none'})")
    end = payload.find(b"\x00", 1)
    if end < 0 or len(payload) < end + 5:
        raise Failure("protocol_error", "truncated MySQL greeting")
    details["protocol"] = 10
    version = payload[1:end].decode("utf-8", "replace")
    # MariaDB puts "5.5.5-" before its version so that old replication clients accept it
    details["server_version"] = version[6:] if version.startswith("5.5.5-") and "MariaDB" in version else version
    details["connection_id"] = struct.unpack_from("<I", payload, end + 1)[0]


async def _login(conn: Conn, user: str, seq: int, details: dict) -> tuple[Outcome, str, str]:
    version = details["server_version"]
    _send(conn, seq, struct.pack("<IIB23x", _CLIENT_CAPS, 1 << 24, _UTF8MB4) + user.encode() + b"\x00"
          + b"\x00" + b"mysql_native_password\x00")
    for _ in range(3):  # at most a couple of auth-method switches before OK or ERR
        seq, reply = await _packet(conn, "the answer to the login")
        if reply[:1] == b"\x00":
            details["auth"] = "ok"
            _send(conn, 0, _COM_QUIT)
            return Outcome.UP, "ok", f"MySQL {version}: logged in as {user} without a password"
        if reply[:1] == b"\xff":
            code = int.from_bytes(reply[1:3], "little")
            if code == _ACCESS_DENIED:
                details["auth"] = "denied"
                return Outcome.UP, "ok", f"MySQL {version} answers (login as {user} refused, as expected)"
            raise _error(reply, details)
        if reply[:1] != b"\xfe":
            break
        _send(conn, seq + 1, b"")  # an auth switch: answer it with the same empty password
    details["auth"] = "incomplete"
    return Outcome.UP, "ok", f"MySQL {version} greets (login not finished)"
