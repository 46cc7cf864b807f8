"""POP3 probe: greeting (``+OK``), STLS or implicit TLS (995) with the certificate judged, optional USER/PASS,
QUIT. Phases: ``resolve``, ``connect``, ``tls``, ``banner``, ``starttls``, ``login``."""

from __future__ import annotations

from typing import Literal

from probes.base import Failure, ProbeResult
from probes.mail_wire import Dialogue, MailProtocol, MailSpec, line_end, probe_mail

__all__ = ["Pop3Spec", "probe_pop3"]


class Pop3Spec(MailSpec):
    kind: Literal["pop3"] = "pop3"


async def probe_pop3(spec: Pop3Spec, ctx) -> ProbeResult:
    return await probe_mail(spec, ctx, _POP3)


async def _converse(d: Dialogue) -> str:
    spec = d.spec
    greeting = await d.step("banner", None, line_end)
    d.banner(greeting, accepted=greeting.startswith("+OK"), refused=greeting.startswith("-ERR"), protocol="POP3")
    done = ["greeting"]
    if spec.tls_mode == "starttls":
        # STLS straight away (RFC 2595): a server without it answers -ERR, which saves a CAPA round trip.
        reply = await d.step("starttls", "STLS", line_end)
        if not reply.startswith("+OK"):
            raise Failure("starttls_unavailable", f"STLS refused: {reply.strip()[:200]}")
        await d.upgrade()
        done.append("STLS")
    if spec.username is not None:
        for command, shown in ((f"USER {spec.username}", "USER"), (f"PASS {spec.password}", "PASS")):
            reply = await d.step("login", command, line_end, shown=shown)
            if not reply.startswith("+OK"):
                raise Failure("auth_failed", f"{shown} as {spec.username!r} refused: {reply.strip()[:200]}")
        done.append("USER/PASS")
    return f"POP3 {' + '.join(done)} ok at {d.details['address']}"


_POP3 = MailProtocol("POP3", _converse, "QUIT", line_end)
