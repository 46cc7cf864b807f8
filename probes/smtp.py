"""SMTP probe: banner (220), EHLO, STARTTLS or implicit TLS with the certificate judged, optional AUTH
(PLAIN or LOGIN), QUIT. Phases: ``resolve``, ``connect``, ``tls``, ``banner``, ``ehlo``, ``starttls``, ``auth``."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field

from probes.base import Failure, ProbeResult
from probes.mail_wire import Dialogue, MailProtocol, MailSpec, probe_mail

__all__ = ["SmtpSpec", "probe_smtp", "smtp_reply_end"]


class SmtpSpec(MailSpec):
    kind: Literal["smtp"] = "smtp"
    ehlo: str = Field("negahban.probe", min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\[\]-]+$")
    auth_mechanism: Literal["auto", "PLAIN", "LOGIN"] = "auto"  # auto: PLAIN if offered, else LOGIN


def smtp_reply_end(buf: bytes | bytearray) -> int:
    """Length of the first complete SMTP reply in ``buf`` (0 if none yet): lines ``250-...`` continue it,
    any other line (``250 ...``, or something that is not SMTP at all) ends it."""
    pos = 0
    while (nl := buf.find(b"\n", pos)) >= 0:
        if buf[pos + 3:pos + 4] != b"-" or not buf[pos:pos + 3].isdigit():
            return nl + 1
        pos = nl + 1
    return 0


def _code(text: str) -> int | None:
    return int(text[:3]) if text[:3].isdigit() else None


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1][:200] if text.strip() else ""


async def probe_smtp(spec: SmtpSpec, ctx) -> ProbeResult:
    return await probe_mail(spec, ctx, _SMTP)


async def _converse(d: Dialogue) -> str:
    spec: SmtpSpec = d.spec  # type: ignore[assignment]
    banner = await d.step("banner", None, smtp_reply_end)
    code = _code(banner)
    d.banner(banner, accepted=code == 220, refused=code is not None and code >= 400, protocol="SMTP")
    extensions = await _ehlo(d, spec)
    done = ["EHLO"]
    if spec.tls_mode == "starttls":
        await _starttls(d, extensions)
        extensions = await _ehlo(d, spec)  # RFC 3207: forget what was said before TLS
        done.append("STARTTLS")
    if spec.username is not None:
        await _auth(d, spec, extensions)
        done.append("AUTH")
    d.details["smtp_extensions"] = sorted(extensions)
    return f"SMTP {' + '.join(done)} ok at {d.details['address']}"


async def _ehlo(d: Dialogue, spec: SmtpSpec) -> dict[str, str]:
    reply = await d.step("ehlo", f"EHLO {spec.ehlo}", smtp_reply_end)
    if _code(reply) != 250:
        raise Failure("ehlo_failed", f"EHLO refused: {_last_line(reply)}")
    extensions = {}
    for line in reply.splitlines()[1:]:
        keyword, _, params = line[4:].strip().partition(" ")
        if keyword:
            extensions[keyword.upper()] = params.upper()
    return extensions


async def _starttls(d: Dialogue, extensions: dict[str, str]) -> None:
    if "STARTTLS" not in extensions:
        raise Failure("starttls_unavailable", "the server does not offer STARTTLS")
    reply = await d.step("starttls", "STARTTLS", smtp_reply_end)
    if _code(reply) != 220:
        raise Failure("starttls_failed", f"STARTTLS refused: {_last_line(reply)}")
    await d.upgrade()


async def _auth(d: Dialogue, spec: SmtpSpec, extensions: dict[str, str]) -> None:
    offered = extensions.get("AUTH", "").split()
    mechanism = spec.auth_mechanism if spec.auth_mechanism != "auto" else \
        next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None or mechanism not in offered:
        raise Failure("auth_unavailable", f"the server offers no usable AUTH mechanism "
                                          f"(offered: {' '.join(offered) or 'none'})")
    user, password = spec.username.encode(), spec.password.encode()
    if mechanism == "PLAIN":
        reply = await d.step("auth", "AUTH PLAIN " + _b64(b"\0" + user + b"\0" + password), smtp_reply_end,
                             shown="AUTH PLAIN")
    else:
        reply = await d.step("auth", "AUTH LOGIN", smtp_reply_end)
        for value, shown in ((user, "the username"), (password, "the password")):
            if _code(reply) != 334:
                break
            reply = await d.step("auth", _b64(value), smtp_reply_end, shown=shown)
    if _code(reply) != 235:
        raise Failure("auth_failed", f"AUTH {mechanism} as {spec.username!r} refused: {_last_line(reply)}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_SMTP = MailProtocol("SMTP", _converse, "QUIT", smtp_reply_end)
