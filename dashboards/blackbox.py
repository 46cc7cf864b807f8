"""blackbox_exporter's ``probe_*`` metric families, rendered from one ``ProbeResult`` (issue: drop-in).

Names, types, help texts and label names follow blackbox_exporter v0.28.0 (``prober/*.go``), so its community
dashboards and alert rules work on our series. Each family belongs to the kinds that have it; a family is only
written for a result that carries its data. Where we differ (README, "blackbox_exporter families"):
- ``probe_success`` is 1 for DEGRADED (blackbox has no such state; a slow or soon-expiring target succeeds there
  too); our own states are ``negahban_monitor_state``.
- ``probe_ssl_earliest_cert_expiry`` and ``probe_ssl_last_chain_expiry_timestamp_seconds`` are the leaf's
  not-after (Python's ssl module of 3.11 gives no verified chain), and TLS 1.2 cipher names are OpenSSL's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FAMILIES", "family_lines", "ip_hash"]

# (name, type, help); the order is the exposition's.
FAMILIES: list[tuple[str, str, str]] = [
    ("probe_dns_lookup_time_seconds", "gauge", "Returns the time taken for probe dns lookup in seconds"),
    ("probe_ip_protocol", "gauge", "Specifies whether probe ip protocol is IP4 or IP6"),
    ("probe_ip_addr_hash", "gauge", "Specifies the hash of IP address. It's useful to detect if the IP address "
                                    "changes."),
    ("probe_http_duration_seconds", "gauge", "Duration of http request by phase, summed over all redirects"),
    ("probe_http_content_length", "gauge", "Length of http content response"),
    ("probe_http_uncompressed_body_length", "gauge", "Length of uncompressed response body"),
    ("probe_http_redirects", "gauge", "The number of redirects"),
    ("probe_http_ssl", "gauge", "Indicates if SSL was used for the final redirect"),
    ("probe_http_status_code", "gauge", "Response HTTP status code"),
    ("probe_http_version", "gauge", "Returns the version of HTTP of the probe response"),
    ("probe_failed_due_to_regex", "gauge", "Indicates if probe failed due to regex"),
    ("probe_http_last_modified_timestamp_seconds", "gauge", "Returns the Last-Modified HTTP response header in "
                                                            "unixtime"),
    ("probe_ssl_earliest_cert_expiry", "gauge", "Returns last SSL chain expiry in unixtime"),
    ("probe_ssl_last_chain_expiry_timestamp_seconds", "gauge", "Returns last SSL chain expiry in timestamp"),
    ("probe_ssl_last_chain_info", "gauge", "Contains SSL leaf certificate information"),
    ("probe_tls_version_info", "gauge", "Returns the TLS version used or NaN when unknown"),
    ("probe_tls_cipher_info", "gauge", "Returns the TLS cipher negotiated during handshake"),
    ("probe_dns_duration_seconds", "gauge", "Duration of DNS request by phase"),
    ("probe_dns_answer_rrs", "gauge", "Returns number of entries in the answer resource record list"),
    ("probe_dns_authority_rrs", "gauge", "Returns number of entries in the authority resource record list"),
    ("probe_dns_additional_rrs", "gauge", "Returns number of entries in the additional resource record list"),
    ("probe_dns_query_succeeded", "gauge", "Displays whether or not the query was executed successfully"),
    ("probe_dns_serial", "gauge", "Returns the serial number of the zone"),
    ("probe_icmp_duration_seconds", "gauge", "Duration of icmp request by phase"),
    ("probe_icmp_reply_hop_limit", "gauge", "Replied packet hop limit (TTL for ipv4)"),
]
INDEX = {name: i for i, (name, _, _) in enumerate(FAMILIES)}
HEADERS = [f"# HELP {n} {h}\n# TYPE {n} {t}\n" for n, t, h in FAMILIES]
_HTTP_PHASES = ("resolve", "connect", "tls", "processing", "transfer")
_REGEX_REASONS = frozenset({"keyword_missing", "keyword_present"})


def ip_hash(address: str) -> float | None:
    """FNV-1a (32 bit) of the address's bytes (4 for IPv4, 16 for IPv6), as blackbox_exporter computes it."""
    try:
        packed = ipaddress.ip_address(address).packed
    except ValueError:
        return None
    h = 0x811C9DC5
    for byte in packed:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return float(h)


def _tls_version(text: str) -> str:
    return text.replace("TLSv", "TLS ") if text.startswith("TLSv") else text


def family_lines(kind: str, labels: str, result: Any, fmt: Callable[[float], str],
                 escape: Callable[[str], str]) -> list[tuple[int, str]]:
    """The (family index, line) pairs of one monitor's latest result; ``labels`` is its rendered label set."""
    out: list[tuple[int, str]] = []
    details: Mapping[str, Any] = result.details
    phases: Mapping[str, float] = result.phases

    def put(name: str, value: float | int | None, extra: str = "") -> None:
        if value is not None:
            out.append((INDEX[name], f"{name}{{{labels}{extra}}} {fmt(float(value))}"))

    address = details.get("address")
    if "resolve" in phases:
        put("probe_dns_lookup_time_seconds", phases["resolve"])
    if address:
        put("probe_ip_protocol", 6 if ":" in address else 4)
        put("probe_ip_addr_hash", ip_hash(address))
    if kind == "http":
        for phase in _HTTP_PHASES:
            put("probe_http_duration_seconds", phases.get(phase, 0.0), f',phase="{phase}"')
        put("probe_http_status_code", details.get("status_code", 0))
        put("probe_http_content_length", details.get("content_length", 0))
        put("probe_http_uncompressed_body_length", details.get("body_length", 0))
        put("probe_http_redirects", details.get("redirects", 0))
        put("probe_http_ssl", 1 if details.get("ssl") else 0)
        put("probe_http_version", float(details["http_version"]) if details.get("http_version") else 0)
        put("probe_failed_due_to_regex", 1 if result.reason in _REGEX_REASONS else 0)
        put("probe_http_last_modified_timestamp_seconds", details.get("last_modified_ts"))
    if kind == "tcp":  # blackbox's query/response: an expectation that did not match
        put("probe_failed_due_to_regex", 1 if result.reason == "expect_mismatch" else 0)
    if "cert_not_after_ts" in details:
        put("probe_ssl_earliest_cert_expiry", details["cert_not_after_ts"])
        put("probe_ssl_last_chain_expiry_timestamp_seconds", details["cert_not_after_ts"])
        if cert := details.get("cert"):
            info = "".join(f',{k}="{escape(str(cert.get(k, "")))}"' for k in
                           ("fingerprint_sha256", "subject", "issuer", "subjectalternative", "serialnumber"))
            put("probe_ssl_last_chain_info", 1, info)
    if details.get("tls_version"):
        put("probe_tls_version_info", 1, f',version="{escape(_tls_version(details["tls_version"]))}"')
    if details.get("tls_cipher"):
        put("probe_tls_cipher_info", 1, f',cipher="{escape(details["tls_cipher"])}"')
    if kind == "dns":
        for phase in ("resolve", "connect", "request"):
            put("probe_dns_duration_seconds", phases.get(phase, 0.0), f',phase="{phase}"')
        answered = "rcode" in details
        put("probe_dns_query_succeeded", 1 if answered else 0)
        if answered:
            put("probe_dns_answer_rrs", details.get("answer_rrs", 0))
            put("probe_dns_authority_rrs", details.get("authority_rrs", 0))
            put("probe_dns_additional_rrs", details.get("additional_rrs", 0))
        put("probe_dns_serial", details.get("serial"))
    if kind == "icmp":
        rtt = phases.get("rtt_avg", 0.0) if details.get("received") else 0.0
        for phase, value in (("resolve", phases.get("resolve", 0.0)), ("setup", 0.0), ("rtt", rtt)):
            put("probe_icmp_duration_seconds", value, f',phase="{phase}"')
        put("probe_icmp_reply_hop_limit", details.get("hop_limit"))
    return out
