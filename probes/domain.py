"""Domain expiry probe: the registration's expiry date by RDAP (RFC 9083), with a WHOIS fallback (RFC 3912).

RDAP is asked first: ``GET {rdap_base}/domain/{name}`` and the ``events`` entry whose ``eventAction`` is
``expiration``. The default base is ``https://rdap.org``, a public redirector to each TLD's authoritative
RDAP server (redirects are followed); a TLD without RDAP answers 404 there. Then WHOIS on TCP 43 (``name\\r\\n``,
read to EOF) is asked and the expiry line parsed: ``Registry Expiry Date:``, ``Expiration Date:``,
``expire-date:`` (IRNIC, .ir), ``paid-till:`` and the like. Dates are ISO/Gregorian; a year below 1700 is read
as Solar Hijri (Jalali) and converted. The whole probe fits in ``timeout_s``: RDAP gets at most half of it.

whodap is not used: its client builds itself from IANA's bootstrap file, fetched over the network at start,
and has no plain base-URL setting, so it could not be pointed at a registry mirror or a loopback server
without reaching into its internals (and it would add httpx). RDAP here is one GET.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Literal

import aiohttp
import jdatetime
from pydantic import Field, field_validator

from probes.base import Outcome, ProbeResult, SpecBase
from probes.tcp import host_port

__all__ = ["DomainSpec", "probe_domain", "parse_whois_expiry", "rdap_expiry", "whois_server_for"]

DEFAULT_RDAP_BASE = "https://rdap.org"
# The WHOIS server of a TLD we know (xn--mgba3a4f16a is .ایران); any other TLD is asked at
# ``{tld}.whois-servers.net``, a long-standing DNS alias to each registry's server.
WHOIS_SERVERS = {"ir": "whois.nic.ir", "xn--mgba3a4f16a": "whois.nic.ir", "com": "whois.verisign-grs.com",
                 "net": "whois.verisign-grs.com", "org": "whois.pir.org"}
MAX_WHOIS_BYTES = 256 * 1024
MAX_RDAP_BYTES = 1024 * 1024

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainSpec(SpecBase):
    kind: Literal["domain"] = "domain"
    # A registration changes once a year and registries throttle frequent askers: checked daily by default.
    default_interval_s: ClassVar[float] = 86400.0
    max_interval_s: ClassVar[float] = 86400.0
    degraded_days: float = Field(30.0, ge=0, le=3650)
    rdap_base: str | None = None      # e.g. https://rdap.example-registry.ir/rdap; None: rdap.org
    rdap: bool = True                 # false: WHOIS only (a TLD known to have no RDAP)
    whois_server: str | None = None   # host or host:port; None: by TLD (see WHOIS_SERVERS)

    @field_validator("target")
    @classmethod
    def _domain(cls, v: str) -> str:
        name = v.strip().rstrip(".").lower()
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"target {v!r} is not a domain name (IDNA encoding failed)") from None
        labels = name.split(".")
        if len(labels) < 2 or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
            raise ValueError(f"target {v!r} must be a registered domain name such as example.ir")
        return name

    @field_validator("rdap_base")
    @classmethod
    def _base(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", v):
            raise ValueError("rdap_base must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("whois_server")
    @classmethod
    def _whois(cls, v: str | None) -> str | None:
        if v is not None:
            host_port(v, 43)
        return v


class _Lookup(Exception):
    """One source gave no expiry date; ``code`` is ``timeout``, ``not_found``, ``no_date``, ``error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def whois_server_for(domain: str) -> str:
    tld = domain.rsplit(".", 1)[-1]
    return WHOIS_SERVERS.get(tld, f"{tld}.whois-servers.net")


async def probe_domain(spec: DomainSpec, ctx) -> ProbeResult:
    start = time.perf_counter()
    deadline = start + spec.timeout_s
    phases: dict[str, float] = {}
    details: dict[str, Any] = {}
    errors: dict[str, _Lookup] = {}
    expires: datetime | None = None
    if spec.rdap:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(spec.timeout_s / 2):
                expires = await rdap_expiry(spec.rdap_base or DEFAULT_RDAP_BASE, spec.target, ctx)
            details["source"] = "rdap"
        except TimeoutError:
            errors["rdap"] = _Lookup("timeout", f"no answer within {spec.timeout_s / 2:g}s")
        except _Lookup as exc:
            errors["rdap"] = exc
        phases["rdap"] = time.perf_counter() - t0
    if expires is None:
        t0 = time.perf_counter()
        server = spec.whois_server or whois_server_for(spec.target)
        budget = max(deadline - t0, 0.001)
        try:
            async with asyncio.timeout(budget):
                expires = parse_whois_expiry(await whois_query(server, spec.target))
            details["source"] = "whois"
        except TimeoutError:
            errors["whois"] = _Lookup("timeout", f"{server}: no answer within {budget:.3g}s")
        except _Lookup as exc:
            errors["whois"] = _Lookup(exc.code, f"{server}: {exc.message}")
        phases["whois"] = time.perf_counter() - t0
    latency = time.perf_counter() - start
    for source, exc in errors.items():
        details[f"{source}_error"] = exc.code
    if expires is None:
        reason = "timeout" if all(e.code == "timeout" for e in errors.values()) else "lookup_failed"
        message = "; ".join(f"{source}: {e.message}" for source, e in errors.items())
        return ProbeResult(Outcome.DOWN, reason, f"no expiry date for {spec.target} ({message})",
                           latency, phases, details)
    return _judge(spec, ctx.now(), expires, latency, phases, details)


def _judge(spec: DomainSpec, now: datetime, expires: datetime, latency: float, phases: dict,
           details: dict) -> ProbeResult:
    left = (expires - now).total_seconds() / 86400
    details["expires_at"] = expires.isoformat()
    details["days_left"] = int(left // 1)
    when = expires.date().isoformat()
    if left <= 0:
        return ProbeResult(Outcome.DOWN, "domain_expired", f"{spec.target} expired on {when}",
                           latency, phases, details)
    if left < spec.degraded_days:
        return ProbeResult(Outcome.DEGRADED, "domain_expiring",
                           f"{spec.target} expires on {when}, in {left:.0f} days (< {spec.degraded_days:g})",
                           latency, phases, details)
    return ProbeResult(Outcome.UP, "ok", f"{spec.target} expires on {when}", latency, phases, details)


async def rdap_expiry(base: str, domain: str, ctx) -> datetime:
    """The ``expiration`` event of ``{base}/domain/{domain}``; ``_Lookup`` when there is none."""
    # A fresh connection per check, like every probe (see ProbeContext); TLS verified with the context's CAs.
    connector = aiohttp.TCPConnector(ssl=ctx.ssl_verify, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            async with session.get(f"{base}/domain/{domain}", max_redirects=3,
                                   headers={"Accept": "application/rdap+json, application/json"}) as resp:
                if resp.status == 404:
                    raise _Lookup("not_found", f"{resp.url} answered 404 (no RDAP record)")
                if resp.status != 200:
                    raise _Lookup("error", f"{resp.url} answered HTTP {resp.status}")
                raw = await resp.content.read(MAX_RDAP_BYTES + 1)
        except aiohttp.ClientError as exc:
            raise _Lookup("error", f"{type(exc).__name__}: {exc}") from None
    if len(raw) > MAX_RDAP_BYTES:
        raise _Lookup("error", "answer larger than 1 MiB")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise _Lookup("error", "answer is not JSON") from None
    if not isinstance(doc, dict) or doc.get("objectClassName", "domain") != "domain":
        raise _Lookup("error", "answer is not an RDAP domain object")
    for event in doc.get("events") or []:
        if isinstance(event, dict) and event.get("eventAction") == "expiration":
            at = _parse_date(str(event.get("eventDate", "")))
            if at is None:
                raise _Lookup("error", f"unreadable expiration date {event.get('eventDate')!r}")
            return at
    raise _Lookup("no_date", "no expiration event in the RDAP answer")


async def whois_query(server: str, domain: str) -> str:
    """Ask ``server`` (host or host:port) about ``domain``; the whole answer (to EOF) as text."""
    host, port = host_port(server, 43)
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise _Lookup("error", f"cannot connect: {exc.strerror or exc}") from None
    try:
        writer.write(f"{domain}\r\n".encode("ascii"))
        await writer.drain()
        buf = bytearray()
        while len(buf) <= MAX_WHOIS_BYTES and (chunk := await reader.read(65536)):
            buf += chunk
        return buf[:MAX_WHOIS_BYTES].decode("utf-8", "replace")
    except OSError as exc:
        raise _Lookup("error", f"connection failed: {exc.strerror or exc}") from None
    finally:
        writer.close()


# Most specific first: a gTLD answer carries both the registry's and the registrar's date; the registry's wins.
_WHOIS_KEYS = ("registry expiry date", "registrar registration expiration date", "expiration date",
               "expiry date", "expire-date", "expire date", "expiration time", "expires on", "expires",
               "paid-till", "renewal date")
_WHOIS_LINE = re.compile(r"^\s*([a-z][a-z \-]*?)\s*:\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_NOT_FOUND = re.compile(r"no entries found|no match|not found|no data found|status:\s*free", re.IGNORECASE)


def parse_whois_expiry(text: str) -> datetime:
    """The expiry date in a WHOIS answer (UTC); ``_Lookup`` when it has none or it cannot be read."""
    found: dict[str, str] = {}
    for m in _WHOIS_LINE.finditer(text):
        key = m.group(1).lower()
        if key in _WHOIS_KEYS and key not in found:
            found[key] = m.group(2)
    for key in _WHOIS_KEYS:
        if key in found:
            at = _parse_date(found[key])
            if at is None:
                raise _Lookup("error", f"unreadable {key} {found[key]!r}")
            return at
    if _NOT_FOUND.search(text):
        raise _Lookup("not_found", "the registry has no such domain")
    raise _Lookup("no_date", "answer has no expiry date (the registry may not publish it)")


_ISO = re.compile(r"^(\d{4})[-./](\d{1,2})[-./](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
                  r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?(?:\s|$|\()", re.IGNORECASE)
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}
_DMY = re.compile(r"^(\d{1,2})-([a-z]{3})[a-z]*-(\d{4})", re.IGNORECASE)


def _parse_date(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339 and the common WHOIS forms; a year below 1700 is Solar Hijri. None if unreadable."""
    text = text.strip()
    m = _ISO.match(text + " ")
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hh, mm, ss = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
        try:
            if y < 1700:  # IRNIC-style Jalali date, e.g. 1405-01-01 (= 2026-03-21)
                g = jdatetime.date(y, mo, d).togregorian()
                y, mo, d = g.year, g.month, g.day
            at = datetime(y, mo, d, hh, mm, ss, tzinfo=UTC)
        except ValueError:
            return None
        zone = (m.group(7) or "Z").upper()
        if zone[0] in "+-":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            at = at.replace(tzinfo=timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))))
            at = at.astimezone(UTC)
        return at
    m = _DMY.match(text)
    if m and m.group(2).lower() in _MONTHS:
        try:
            return datetime(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)), tzinfo=UTC)
        except ValueError:
            return None
    return None
