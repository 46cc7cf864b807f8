"""What the mail probes (SMTP, IMAP, POP3) share: the spec fields, a line dialogue over one fresh connection
from ``probes/net.py``, and the probe's frame (timeout, STARTTLS, certificate verdict, a polite goodbye).

Hand-written rather than aiosmtplib/imaplib: the three protocols are a few request/reply lines each, and one
dialogue on the connection plumbing the TCP and HTTP probes already use gives all three the same resolver,
the same TLS contexts and certificate verdict, a phase timed exactly where it happens, and the cheap CPU per
check of plain asyncio protocols (see bench/smtp_vs_blackbox.py).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase, up_or_degraded, valid_regex
from probes.net import Conn, cert_verdict, open_conn, start_tls
from probes.tcp import split_host_port

__all__ = ["MailSpec", "Dialogue", "MailProtocol", "probe_mail", "line_end", "IMPLICIT_TLS_PORTS"]

IMPLICIT_TLS_PORTS = frozenset({465, 993, 995})  # SMTPS (RFC 8314), IMAPS, POP3S
MAX_REPLY_BYTES = 65536
GOODBYE_WAIT_S = 1.0  # a server that never answers QUIT/LOGOUT costs at most this; it changes no verdict
_NO_CRLF = re.compile(r"^[^\r\n\x00]*$")


class MailSpec(SpecBase):
    """Fields of every mail probe. ``target`` is ``host:port``; ``tls`` defaults to ``implicit`` on ports
    465/993/995 and to ``starttls`` elsewhere (a server that does not offer it is DOWN, ``starttls_unavailable``).
    Credentials are optional, go together, and are only ever sent over TLS."""

    tls: Literal["starttls", "implicit", "none"] | None = None
    tls_verify: bool = True
    server_name: str | None = None
    cert_expiry_warn_days: float = Field(14.0, ge=0)
    ip_version: Literal[0, 4, 6] = 0
    expect_banner: str | None = None  # a regex the greeting must match (e.g. "Postfix")
    username: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = Field(None, min_length=1, max_length=1024, repr=False)
    degraded_latency_s: float | None = Field(None, gt=0)

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        split_host_port(v)
        return v

    @field_validator("expect_banner")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return valid_regex(v, "expect_banner")

    @field_validator("username", "password")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None and not _NO_CRLF.match(v):
            raise ValueError("must not contain CR, LF or NUL (it is sent on one protocol line)")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> MailSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.username is not None and self.tls_mode == "none":
            raise ValueError("credentials are only sent over TLS: set tls to starttls or implicit")
        return self

    @property
    def tls_mode(self) -> str:
        if self.tls is not None:
            return self.tls
        return "implicit" if split_host_port(self.target)[1] in IMPLICIT_TLS_PORTS else "starttls"


def line_end(buf: bytes | bytearray) -> int:
    """Length of the first complete line in ``buf`` (0 if none yet): a one-line reply (IMAP greeting, POP3)."""
    return buf.find(b"\n") + 1


class Dialogue:
    """Commands and replies over one connection; each step is timed into ``phases`` under its name (a phase
    of several round trips, such as AUTH LOGIN, is their sum). ``stage`` names the step in progress, so a
    timeout says what the server did not answer."""

    def __init__(self, spec: MailSpec, ctx, conn: Conn, host: str, phases: dict[str, float],
                 details: dict[str, Any]) -> None:
        self.spec, self.ctx, self.conn, self.host = spec, ctx, conn, host
        self.phases, self.details = phases, details
        self.stage = "banner"

    def send(self, line: str) -> None:
        self.conn.stream.transport.write(line.encode() + b"\r\n")

    async def step(self, phase: str, command: str | None, complete: Callable[[bytearray], int],
                   shown: str | None = None) -> str:
        """Send ``command`` (if any) and return the server's complete reply as text; ``shown`` replaces the
        command in error messages (a secret is never echoed)."""
        self.stage = phase
        t0 = time.perf_counter()
        if command is not None:
            self.send(command)
        text = await self._reply(complete, shown or (command.split(" ", 1)[0] if command else phase))
        self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - t0
        return text

    async def _reply(self, complete: Callable[[bytearray], int], what: str) -> str:
        stream = self.conn.stream
        stream.done_when = lambda buf: complete(buf) > 0 or len(buf) > MAX_REPLY_BYTES
        await stream.wait()
        n = complete(stream.buf)
        if not n:
            why = "reply too long" if len(stream.buf) > MAX_REPLY_BYTES else "connection closed"
            raise Failure("protocol_error", f"{why} waiting for the answer to {what}: "
                                            f"{_snippet(bytes(stream.buf))!r}")
        text = bytes(stream.buf[:n]).decode("utf-8", "replace")
        del stream.buf[:n]
        return text

    async def upgrade(self) -> None:
        """TLS after the server agreed to STARTTLS/STLS. Bytes already buffered came before the handshake
        and are refused (a man in the middle could inject them: CVE-2011-0411)."""
        if self.conn.stream.buf:
            raise Failure("protocol_error", "the server sent data after agreeing to start TLS")
        self.stage = "tls"
        await start_tls(self.conn, tls_context(self.spec, self.ctx), self.spec.server_name or self.host)

    def banner(self, text: str, accepted: bool, refused: bool, protocol: str) -> None:
        """Judge the greeting: a refusal (SMTP 4xx/5xx, IMAP ``* BYE``, POP3 ``-ERR``) is ``banner_rejected``
        with the server's text; anything else that is not a greeting is ``protocol_error``."""
        first = text.strip()
        self.details["banner"] = first[:200]
        if refused:
            raise Failure("banner_rejected", f"the server refused the session: {first[:200]}")
        if not accepted:
            raise Failure("protocol_error", f"not an {protocol} greeting: {first[:200]!r}")
        if self.spec.expect_banner is not None and re.search(self.spec.expect_banner, text) is None:
            raise Failure("banner_mismatch", f"banner does not match {self.spec.expect_banner!r}: {first[:200]}")


def tls_context(spec: MailSpec, ctx) -> ssl.SSLContext:
    return ctx.ssl_verify if spec.tls_verify else ctx.ssl_noverify


def _snippet(data: bytes) -> str:
    return data[:120].decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class MailProtocol:
    """One mail protocol for ``probe_mail``: ``converse`` runs the dialogue after connect (and implicit TLS)
    and returns the success message; ``goodbye`` is the polite last command and ``goodbye_end`` its reply."""

    name: str
    converse: Callable[[Dialogue], Awaitable[str]]
    goodbye: str
    goodbye_end: Callable[[bytearray], int]


async def probe_mail(spec: MailSpec, ctx, protocol: MailProtocol) -> ProbeResult:
    start = time.perf_counter()
    phases: dict[str, float] = {}
    details: dict[str, Any] = {"tls_mode": spec.tls_mode}
    conn: Conn | None = None
    dialogue: Dialogue | None = None
    try:
        async with asyncio.timeout(spec.timeout_s):
            host, port = split_host_port(spec.target)
            implicit = tls_context(spec, ctx) if spec.tls_mode == "implicit" else None
            conn = await open_conn(ctx, host, port, spec.ip_version, implicit, spec.server_name, details, phases)
            dialogue = Dialogue(spec, ctx, conn, host, phases, details)
            message = await protocol.converse(dialogue)
            latency = time.perf_counter() - start
            await _goodbye(dialogue, protocol)
        return _judge(spec, ctx, conn, message, latency, phases, details)
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, "timeout", _timeout_message(spec, dialogue, phases),
                           time.perf_counter() - start, phases, details)
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start, phases, details)
    finally:
        if conn is not None:
            conn.stream.close()


async def _goodbye(dialogue: Dialogue, protocol: MailProtocol) -> None:
    """QUIT/LOGOUT and wait briefly for the answer, so the server logs a clean end rather than a reset."""
    try:
        async with asyncio.timeout(GOODBYE_WAIT_S):
            await dialogue.step("quit", protocol.goodbye, protocol.goodbye_end)
    except (TimeoutError, Failure):
        dialogue.details["goodbye"] = "no answer"
    dialogue.phases.pop("quit", None)  # not part of the check's latency


def _timeout_message(spec: MailSpec, dialogue: Dialogue | None, phases: dict) -> str:
    if dialogue is not None:
        what = "no banner" if dialogue.stage == "banner" else f"no answer during {dialogue.stage}"
    else:
        what = "TLS handshake did not finish" if "connect" in phases else "no connection"
    return f"{what} within {spec.timeout_s:g}s"


def _judge(spec: MailSpec, ctx, conn: Conn, message: str, latency: float, phases: dict,
           details: dict) -> ProbeResult:
    verdict = cert_verdict(conn.peer_cert_der, ctx.now(), spec.cert_expiry_warn_days, details)
    if verdict is not None:
        return ProbeResult(verdict.outcome, verdict.reason, verdict.message, latency, phases, details)
    outcome, reason, text = up_or_degraded(latency, spec.degraded_latency_s, message)
    return ProbeResult(outcome, reason, text, latency, phases, details)
