"""Spec and result types shared by every probe kind, and the probe context (the network seam)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Outcome", "ProbeResult", "ProbeContext", "SpecBase", "Prober"]


class Outcome(enum.StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(slots=True)
class ProbeResult:
    """What one check saw. A target that is down is data, not an exception.

    ``reason`` is a short code (``ok``, ``timeout``, ``refused``, ``unreachable``, ``dns_error``, ``tls_error``,
    ``cert_expiring``, ``cert_expired``, ``status_mismatch``, ``keyword_missing``, ``json_mismatch``,
    ``body_too_large``, ``loss``, ``latency``, ...). ``phases`` holds seconds per phase, named as
    blackbox_exporter names them (``resolve``, ``connect``, ``tls``, ``processing``, ``transfer``).
    """

    outcome: Outcome
    reason: str = "ok"
    message: str = ""
    latency_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.UP


class SpecBase(BaseModel):
    """Fields every probe spec has. Each kind subclasses it with ``kind: Literal[...]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(min_length=1, max_length=2048)
    timeout_s: float = Field(10.0, gt=0, le=120)


Ping = Callable[..., Awaitable[Any]]


@dataclass
class ProbeContext:
    """Collaborators a probe may use: everything that touches the network comes from here."""

    http: aiohttp.ClientSession
    ping: Ping | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    extras: dict[str, Any] = field(default_factory=dict)


Prober = Callable[[Any, ProbeContext], Awaitable[ProbeResult]]
