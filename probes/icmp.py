"""ICMP echo probe: count requests, interval apart; loss, RTT min/avg/max and jitter; thresholds."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from typing import Literal

from pydantic import Field, model_validator

from probes.base import Failure, Outcome, ProbeResult, SpecBase
from probes.icmp_engine import EchoStats
from probes.net import resolve

__all__ = ["IcmpSpec", "probe_icmp", "summarise"]


class IcmpSpec(SpecBase):
    """``timeout_s`` bounds the whole check: replies later than that count as lost."""

    kind: Literal["icmp"] = "icmp"
    timeout_s: float = Field(5.0, gt=0, le=120)
    count: int = Field(3, ge=1, le=1000)
    interval_s: float = Field(0.2, ge=0.001, le=10)
    ip_version: Literal[0, 4, 6] = 0
    degraded_loss: float = Field(0.2, gt=0, le=1)
    down_loss: float = Field(1.0, gt=0, le=1)
    degraded_rtt_s: float | None = Field(None, gt=0)
    down_rtt_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> IcmpSpec:
        if (self.count - 1) * self.interval_s >= self.timeout_s:
            raise ValueError("count x interval_s must fit inside timeout_s")
        if self.down_loss < self.degraded_loss:
            raise ValueError("down_loss must be >= degraded_loss")
        return self


def summarise(stats: EchoStats) -> dict[str, float]:
    rtts = stats.rtts
    phases = {"loss": 1.0 - len(rtts) / stats.sent if stats.sent else 1.0}
    if rtts:
        phases.update(rtt_min=min(rtts), rtt_avg=statistics.fmean(rtts), rtt_max=max(rtts),
                      jitter=statistics.fmean(abs(a - b) for a, b in zip(rtts, rtts[1:], strict=False))
                      if len(rtts) > 1 else 0.0)
    return phases


async def probe_icmp(spec: IcmpSpec, ctx) -> ProbeResult:
    start = time.perf_counter()
    if ctx.icmp is None:
        return ProbeResult(Outcome.DOWN, "probe_error", "ICMP is off in this process")
    try:
        async with asyncio.timeout(spec.timeout_s):
            host, fam, resolve_s = await resolve(ctx, spec.target, spec.ip_version)
        host = socket.inet_ntop(fam, socket.inet_pton(fam, host))
        stats = await ctx.icmp.echo(host, fam, spec.count, spec.interval_s, start + spec.timeout_s)
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, "timeout", "name not resolved in time", time.perf_counter() - start)
    except Failure as f:
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start)
    result = _judge(spec, stats, host)
    result.phases["resolve"] = resolve_s
    return result


def _judge(spec: IcmpSpec, stats: EchoStats, host: str) -> ProbeResult:
    phases = summarise(stats)
    loss, received = phases["loss"], len(stats.rtts)
    details = {"address": host, "sent": stats.sent, "received": received}
    if stats.hop_limit is not None:
        details["hop_limit"] = stats.hop_limit
    avg = phases.get("rtt_avg", 0.0)
    summary = f"{received}/{stats.sent} replies, loss {loss:.0%}" + (f", avg {avg * 1000:.1f} ms" if received else "")
    if not received:
        reason = "unreachable" if stats.error else "timeout"
        return ProbeResult(Outcome.DOWN, reason, f"no reply from {host}" + (f": {stats.error}" if stats.error
                           else f" within {spec.timeout_s:g}s"), 0.0, phases, details)
    for outcome, loss_limit, rtt_limit in ((Outcome.DOWN, spec.down_loss, spec.down_rtt_s),
                                           (Outcome.DEGRADED, spec.degraded_loss, spec.degraded_rtt_s)):
        if loss >= loss_limit:
            return ProbeResult(outcome, "loss", summary, avg, phases, details)
        if rtt_limit is not None and avg > rtt_limit:
            return ProbeResult(outcome, "latency", f"{summary} > {rtt_limit * 1000:.0f} ms", avg, phases, details)
    return ProbeResult(Outcome.UP, "ok", summary, avg, phases, details)
