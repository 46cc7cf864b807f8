"""IMAP probe: greeting (``* OK``), STARTTLS or implicit TLS (993) with the certificate judged, optional
LOGIN, LOGOUT. Phases: ``resolve``, ``connect``, ``tls``, ``banner``, ``starttls``, ``login``."""

from __future__ import annotations

from typing import Literal

from probes.base import Failure, ProbeResult
from probes.mail_wire import Dialogue, MailProtocol, MailSpec, line_end, probe_mail

__all__ = ["ImapSpec", "probe_imap"]


class ImapSpec(MailSpec):
    kind: Literal["imap"] = "imap"


def _tagged(tag: str):
    """The end of the reply to command ``tag``: its tagged status line (untagged ``*`` lines come before)."""
    mark = tag.encode() + b" "

    def end(buf: bytes | bytearray) -> int:
        if buf.startswith(mark):
            return buf.find(b"\n") + 1
        at = buf.find(b"\n" + mark)
        return 0 if at < 0 else buf.find(b"\n", at + 1) + 1
    return end


def _status(reply: str, tag: str) -> tuple[str, str]:
    """(``OK``/``NO``/``BAD``, the tagged line) of a reply."""
    line = next((ln for ln in reply.splitlines() if ln.startswith(tag + " ")), "")
    return line[len(tag) + 1:].split(" ", 1)[0].upper(), line.strip()[:200]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def probe_imap(spec: ImapSpec, ctx) -> ProbeResult:
    return await probe_mail(spec, ctx, _IMAP)


async def _converse(d: Dialogue) -> str:
    spec = d.spec
    greeting = await d.step("banner", None, line_end)
    d.banner(greeting, accepted=greeting.startswith(("* OK", "* PREAUTH")), refused=greeting.startswith("* BYE"),
             protocol="IMAP")
    done = ["greeting"]
    if spec.tls_mode == "starttls":
        status, line = _status(await d.step("starttls", "n1 STARTTLS", _tagged("n1")), "n1")
        if status != "OK":
            raise Failure("starttls_unavailable", f"STARTTLS refused: {line}")
        await d.upgrade()
        done.append("STARTTLS")
    if spec.username is not None and not greeting.startswith("* PREAUTH"):
        command = f"n2 LOGIN {_quoted(spec.username)} {_quoted(spec.password)}"
        status, line = _status(await d.step("login", command, _tagged("n2"), shown="LOGIN"), "n2")
        if status != "OK":
            raise Failure("auth_failed", f"LOGIN as {spec.username!r} refused: {line}")
        done.append("LOGIN")
    return f"IMAP {' + '.join(done)} ok at {d.details['address']}"


_IMAP = MailProtocol("IMAP", _converse, "n9 LOGOUT", _tagged("n9"))
