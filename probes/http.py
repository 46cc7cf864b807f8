"""HTTP(S) probe."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import aiohttp
from pydantic import Field

from probes.base import Outcome, ProbeContext, ProbeResult, SpecBase

__all__ = ["HttpSpec", "probe_http"]


class HttpSpec(SpecBase):
    kind: Literal["http"] = "http"
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    expected_status: list[int] = Field(default_factory=lambda: list(range(200, 400)))
    degraded_latency_s: float | None = Field(None, gt=0)


async def probe_http(spec: HttpSpec, ctx: ProbeContext) -> ProbeResult:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(spec.timeout_s):
            async with ctx.http.request(spec.method, spec.target, allow_redirects=False) as resp:
                await resp.read()
                status = resp.status
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, "timeout", f"no answer within {spec.timeout_s:g}s",
                           time.perf_counter() - start)
    except aiohttp.ClientConnectorError as exc:
        return ProbeResult(Outcome.DOWN, "refused", str(exc), time.perf_counter() - start)
    except aiohttp.ClientError as exc:
        return ProbeResult(Outcome.DOWN, "http_error", str(exc), time.perf_counter() - start)
    latency = time.perf_counter() - start
    details = {"status_code": status}
    if status not in spec.expected_status:
        return ProbeResult(Outcome.DOWN, "status_mismatch", f"status {status}", latency, details=details)
    if spec.degraded_latency_s is not None and latency > spec.degraded_latency_s:
        return ProbeResult(Outcome.DEGRADED, "latency", f"{latency:.3f}s > {spec.degraded_latency_s:g}s",
                           latency, details=details)
    return ProbeResult(Outcome.UP, "ok", f"status {status}", latency, details=details)
