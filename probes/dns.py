"""DNS probe with dnspython: one query to a chosen resolver over UDP (TCP when truncated) or TCP."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from pydantic import Field, field_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase, up_or_degraded
from probes.net import numeric_family
from probes.tcp import split_host_port

__all__ = ["DnsSpec", "probe_dns", "rdata_text"]


def _resolver_address(text: str) -> tuple[str, int]:
    if numeric_family(text):
        return text, 53
    host, port = split_host_port(text)
    if not numeric_family(host):
        raise ValueError("resolver must be an IP address, optionally with :port ([v6]:port)")
    return host, port


class DnsSpec(SpecBase):
    """``target`` is the name to look up."""

    kind: Literal["dns"] = "dns"
    timeout_s: float = Field(5.0, gt=0, le=120)
    record_type: Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA"] = "A"
    resolver: str | None = None  # "ip" or "ip:port"; None = the system's first nameserver
    transport: Literal["udp", "tcp"] = "udp"  # udp falls back to TCP when the answer is truncated
    expected_rcode: str = "NOERROR"
    expected_values: list[str] = Field(default_factory=list)
    fail_if_no_answer: bool = True
    degraded_latency_s: float | None = Field(None, gt=0)

    @field_validator("target")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            dns.name.from_text(v)
        except dns.exception.DNSException as exc:
            raise ValueError(f"not a DNS name: {exc}") from None
        return v

    @field_validator("resolver")
    @classmethod
    def _resolver(cls, v: str | None) -> str | None:
        if v is not None:
            _resolver_address(v)
        return v

    @field_validator("expected_rcode")
    @classmethod
    def _rcode(cls, v: str) -> str:
        try:
            dns.rcode.from_text(v.upper())
        except dns.rcode.UnknownRcode:
            raise ValueError(f"unknown rcode {v!r}") from None
        return v.upper()


def rdata_text(rdata) -> str:
    """Comparable text of one record: addresses as-is, names without the final dot, TXT strings joined."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return rdata.to_text().rstrip(".").lower() if rdata.rdtype != dns.rdatatype.MX else \
        f"{rdata.preference} {rdata.exchange.to_text().rstrip('.').lower()}"


def _normalise(value: str, rdtype: str) -> str:
    return value if rdtype == "TXT" else value.rstrip(".").lower()


async def probe_dns(spec: DnsSpec, ctx) -> ProbeResult:
    start = time.perf_counter()
    details: dict[str, Any] = {}
    try:
        async with asyncio.timeout(spec.timeout_s):
            resp = await _query(spec, ctx, details)
        latency = time.perf_counter() - start
        _check(spec, resp, details)
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, "timeout", f"no DNS answer within {spec.timeout_s:g}s",
                           time.perf_counter() - start, details=details)
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start, details=details)
    outcome, reason, message = up_or_degraded(latency, spec.degraded_latency_s,
                                              f"{spec.record_type} {spec.target}: {', '.join(details['answers'])}")
    # The resolver is an address (no lookup) and UDP has no connect: blackbox's other two phases are 0.
    return ProbeResult(outcome, reason, message, latency, {"resolve": 0.0, "connect": 0.0, "request": latency},
                       details)


async def _query(spec: DnsSpec, ctx, details: dict) -> dns.message.Message:
    if spec.resolver is None and not ctx.dns_servers:
        raise Failure("dns_error", "no resolver given and the system has none")
    where, port = _resolver_address(spec.resolver or ctx.dns_servers[0])
    details["resolver"] = f"{where}:{port}"
    details["address"] = where
    query = dns.message.make_query(spec.target, spec.record_type)
    try:
        if spec.transport == "tcp":
            resp, used_tcp = await dns.asyncquery.tcp(query, where, timeout=spec.timeout_s, port=port), True
        else:
            resp, used_tcp = await dns.asyncquery.udp_with_fallback(query, where, timeout=spec.timeout_s,
                                                                    port=port)
    except dns.exception.Timeout:
        raise TimeoutError from None
    except ConnectionRefusedError:
        raise Failure("refused", f"resolver {where}:{port} refused the query") from None
    except OSError as exc:
        raise Failure("unreachable", f"resolver {where}:{port}: {exc.strerror or exc}") from None
    except dns.exception.DNSException as exc:
        raise Failure("dns_error", f"bad answer from {where}:{port}: {exc}") from None
    details["transport"] = "tcp" if used_tcp else "udp"
    details["answer_rrs"] = sum(len(r) for r in resp.answer)
    details["authority_rrs"] = sum(len(r) for r in resp.authority)
    details["additional_rrs"] = sum(len(r) for r in resp.additional)
    for rrset in (*resp.answer, *resp.authority):
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            details["serial"] = rrset[0].serial
            break
    return resp


def _check(spec: DnsSpec, resp: dns.message.Message, details: dict) -> None:
    rcode = dns.rcode.to_text(resp.rcode())
    details["rcode"] = rcode
    rdtype = dns.rdatatype.from_text(spec.record_type)
    answers = [rdata_text(rd) for rrset in resp.answer if rrset.rdtype == rdtype for rd in rrset]
    details["answers"] = answers
    if rcode != spec.expected_rcode:
        raise Failure("rcode_mismatch", f"rcode {rcode}, expected {spec.expected_rcode}")
    if rcode == "NOERROR" and spec.fail_if_no_answer and not answers:
        raise Failure("no_answer", f"no {spec.record_type} record for {spec.target}")
    missing = [v for v in spec.expected_values if _normalise(v, spec.record_type) not in answers]
    if missing:
        raise Failure("answer_mismatch", f"missing {', '.join(missing)}; got {', '.join(answers) or 'nothing'}")
