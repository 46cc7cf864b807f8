"""HTTP(S) probe: one fresh connection per request, redirects followed up to a limit, body capped."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import SplitResult, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase, up_or_degraded
from probes.http_wire import Response, build_request, exchange
from probes.net import cert_verdict, open_conn

__all__ = ["HttpSpec", "BodyRule", "probe_http"]

_REDIRECTS = {301, 302, 303, 307, 308}


class BodyRule(BaseModel):
    """A keyword (or regex, when ``regex``) that must be present in the body, or absent when not ``present``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: str = Field(min_length=1)
    regex: bool = False
    present: bool = True

    @model_validator(mode="after")
    def _compiles(self) -> BodyRule:
        if self.regex:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
        return self

    def found(self, text: str) -> bool:
        return bool(_compiled(self.pattern).search(text)) if self.regex else self.pattern in text


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


class HttpSpec(SpecBase):
    kind: Literal["http"] = "http"
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    expected_status: list[int] = Field(default_factory=lambda: list(range(200, 300)))
    body_rules: list[BodyRule] = Field(default_factory=list)
    json_path: str | None = None
    json_equals: Any = None
    follow_redirects: bool = True
    max_redirects: int = Field(5, ge=0, le=20)
    max_body_bytes: int = Field(1 << 20, ge=0)
    ip_version: Literal[0, 4, 6] = 0
    tls_verify: bool = True
    cert_expiry_warn_days: float = Field(14.0, ge=0)
    degraded_latency_s: float | None = Field(None, gt=0)

    @field_validator("target")
    @classmethod
    def _is_http_url(cls, v: str) -> str:
        _split_url(v)
        return v


def _split_url(url: str) -> tuple[SplitResult, int]:
    """(parts, port) of an http(s) URL; ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("target must be an http:// or https:// URL with a host")
    return parts, parts.port or (443 if parts.scheme == "https" else 80)  # .port raises on a bad port


@dataclass
class _Trace:
    """What one check gathers along its hops; ``details`` stays JSON-serialisable."""

    phases: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    cert_der: bytes | None = None


async def probe_http(spec: HttpSpec, ctx) -> ProbeResult:
    """Request ``spec.target`` (following redirects) and judge status, body, certificate and latency."""
    start = time.perf_counter()
    trace = _Trace()
    try:
        async with asyncio.timeout(spec.timeout_s):
            resp = await _follow(spec, ctx, trace)
        return _judge(spec, ctx, resp, time.perf_counter() - start, trace)
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, "timeout", f"no complete answer within {spec.timeout_s:g}s",
                           time.perf_counter() - start, trace.phases, trace.details)
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start, trace.phases,
                           trace.details)


async def _follow(spec: HttpSpec, ctx, trace: _Trace) -> Response:
    url, method, body = spec.target, spec.method, spec.body
    for hop in range(spec.max_redirects + 1):
        resp = await _one_request(spec, ctx, url, method, body, trace)
        location = resp.headers.get("location")
        if resp.status not in _REDIRECTS or not location or not spec.follow_redirects:
            trace.details["redirects"] = hop
            return resp
        url = urljoin(url, location)
        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
            method, body = "GET", None
    raise Failure("too_many_redirects", f"more than {spec.max_redirects} redirects (last to {url})")


async def _one_request(spec: HttpSpec, ctx, url: str, method: str, body: str | None, trace: _Trace) -> Response:
    try:
        parts, port = _split_url(url)
    except ValueError:
        raise Failure("http_error", f"redirect to unsupported URL {url}") from None
    tls = (ctx.ssl_verify if spec.tls_verify else ctx.ssl_noverify) if parts.scheme == "https" else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = build_request(method, parts.netloc.rpartition("@")[2], path, spec.headers,
                            body.encode() if body is not None else None)
    hop: dict[str, float] = {}
    conn = None
    try:
        conn = await open_conn(ctx, parts.hostname, port, spec.ip_version, tls, parts.hostname, trace.details,
                               hop)
        trace.cert_der = conn.peer_cert_der
        resp = await exchange(conn, request, spec.max_body_bytes, method == "HEAD")
        hop.update(resp.phases)
    finally:
        if conn is not None:
            conn.stream.close()
        _add(trace.phases, hop)
    trace.details["status_code"] = resp.status
    trace.details["http_version"] = resp.version
    trace.details["ssl"] = parts.scheme == "https"
    length = resp.headers.get("content-length", "")
    trace.details["content_length"] = int(length) if length.isdigit() else -1
    trace.details["body_length"] = len(resp.body)  # no Accept-Encoding is sent: the body is never compressed
    if modified := _http_date(resp.headers.get("last-modified")):
        trace.details["last_modified_ts"] = modified
    return resp


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _add(total: dict, more: dict) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value


def _judge(spec: HttpSpec, ctx, resp: Response, latency: float, trace: _Trace) -> ProbeResult:
    phases, details = trace.phases, trace.details
    try:
        _check_content(spec, resp)
        verdict = cert_verdict(trace.cert_der, ctx.now(), spec.cert_expiry_warn_days, details)
        if verdict is not None:
            raise verdict
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, latency, phases, details)
    outcome, reason, message = up_or_degraded(latency, spec.degraded_latency_s, f"HTTP {resp.status}")
    return ProbeResult(outcome, reason, message, latency, phases, details)


def _check_content(spec: HttpSpec, resp: Response) -> None:
    if resp.status not in spec.expected_status:
        raise Failure("status_mismatch", f"HTTP {resp.status}, expected {_ranges(spec.expected_status)}")
    if spec.body_rules:
        text = resp.body.decode("utf-8", "replace")
        for rule in spec.body_rules:
            if rule.found(text) != rule.present:
                reason = "keyword_missing" if rule.present else "keyword_present"
                raise Failure(reason, f"{'missing' if rule.present else 'unwanted'} {rule.pattern!r} in body")
    if spec.json_path is not None:
        _check_json(spec, resp.body)


def _check_json(spec: HttpSpec, body: bytes) -> None:
    try:
        value = json_lookup(json.loads(body), spec.json_path)
    except (ValueError, UnicodeDecodeError):
        raise Failure("json_mismatch", "body is not JSON") from None
    except LookupError:
        raise Failure("json_mismatch", f"{spec.json_path} not found in body") from None
    if value != spec.json_equals:
        raise Failure("json_mismatch", f"{spec.json_path} is {value!r}, expected {spec.json_equals!r}")


_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def json_lookup(doc: Any, path: str) -> Any:
    """Follow a path such as ``$.data.items[0].name`` (leading ``$`` optional) into ``doc``."""
    path = path[1:] if path.startswith("$") else path
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise LookupError(path)
        key, index = m.groups()
        if index is not None:
            if not isinstance(doc, list) or int(index) >= len(doc):
                raise LookupError(path)
            doc = doc[int(index)]
        elif not isinstance(doc, dict) or key not in doc:
            raise LookupError(path)
        else:
            doc = doc[key]
        pos = m.end()
    return doc


def _ranges(codes: list[int]) -> str:
    if len(codes) > 3 and codes == list(range(codes[0], codes[-1] + 1)):
        return f"{codes[0]}-{codes[-1]}"
    return ",".join(map(str, codes))
