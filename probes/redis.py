"""Redis probe: ``PING`` expects ``+PONG``, optionally after ``AUTH`` (password, or ACL user and password).

``-NOAUTH`` proves the server is alive but wants a password: UP with ``details["auth"] = "required"``, unless
the spec says ``require_auth: true`` (then a password is expected and NOAUTH is DOWN). ``-LOADING`` (the
dataset is still being read from disk) and ``-MASTERDOWN`` (a replica that lost its primary) are DEGRADED.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from probes.base import Failure, Outcome, ProbeResult
from probes.net import Conn, converse
from probes.tcp import TlsFields, host_port

__all__ = ["RedisSpec", "probe_redis"]

_DEGRADED = {"LOADING": "loading", "MASTERDOWN": "master_down", "BUSY": "busy"}
_AUTH_FAILED = {"WRONGPASS", "ERR", "NOPERM"}


class RedisSpec(TlsFields):
    """``target`` is ``host`` or ``host:port`` (6379 by default)."""

    kind: Literal["redis"] = "redis"
    timeout_s: float = Field(5.0, gt=0, le=120)
    username: str | None = Field(None, min_length=1, max_length=256)
    password: str | None = Field(None, min_length=1, max_length=512, validate_default=True)
    require_auth: bool = False

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host_port(v, 6379)
        return v

    @field_validator("password")
    @classmethod
    def _user_needs_password(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("username") is not None:
            raise ValueError("a username needs a password")
        return v


def _command(*args: str) -> bytes:
    """One command in RESP: an array of bulk strings (a password with spaces or CRLF stays one argument)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _line(buf: bytearray) -> int:
    end = buf.find(b"\r\n")
    return end + 2 if end >= 0 else 0


async def _reply(conn: Conn, what: str) -> str:
    return (await conn.stream.read_until(_line, what))[:-2].decode("utf-8", "replace")


async def probe_redis(spec: RedisSpec, ctx) -> ProbeResult:
    host, port = host_port(spec.target, 6379)

    async def talk(conn: Conn, details: dict) -> tuple[Outcome, str, str]:
        auth = [a for a in (spec.username, spec.password) if a is not None]
        conn.stream.transport.write((_command("AUTH", *auth) if auth else b"") + _command("PING"))
        if auth:
            _check_auth(await _reply(conn, "the answer to AUTH"), details)
        return _judge_ping(await _reply(conn, "the answer to PING"), spec, details)

    return await converse(spec, ctx, host, port, talk, spec.tls_context(ctx))


def _check_auth(reply: str, details: dict) -> None:
    if reply == "+OK":
        details["auth"] = "ok"
        return
    code = reply[1:].split(" ", 1)[0]
    details["error"] = reply[1:201]
    if reply.startswith("-") and code in _AUTH_FAILED:
        raise Failure("auth_failed", f"Redis refused the password: {reply[1:201]}")
    raise Failure("protocol_error", f"unexpected answer to AUTH: {reply[:200]!r}")


def _judge_ping(reply: str, spec: RedisSpec, details: dict) -> tuple[Outcome, str, str]:
    if reply == "+PONG":
        return Outcome.UP, "ok", "Redis answers PONG"
    if not reply.startswith("-"):
        raise Failure("protocol_error", f"not a Redis answer to PING: {reply[:200]!r}")
    code, text = reply[1:].split(" ", 1)[0], reply[1:201]
    details["error"] = text
    if code == "NOAUTH":
        details["auth"] = "required"
        if spec.require_auth:
            raise Failure("auth_required", f"Redis wants a password and the spec has none: {text}")
        return Outcome.UP, "ok", "Redis answers, and asks for a password"
    if code in _DEGRADED:
        return Outcome.DEGRADED, _DEGRADED[code], f"Redis: {text}"
    raise Failure("server_error", f"Redis: {text}")
