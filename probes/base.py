"""Spec and result types shared by every probe kind, and the probe context (the network seam)."""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Outcome", "ProbeResult", "SpecBase", "Prober", "Failure", "up_or_degraded", "valid_regex"]


class Outcome(enum.StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(slots=True)
class ProbeResult:
    """What one check saw. A target that is down is data, not an exception.

    ``reason`` is a short code (``ok``, ``timeout``, ``refused``, ``unreachable``, ``dns_error``, ``tls_error``,
    ``cert_expiring``, ``cert_expired``, ``status_mismatch``, ``keyword_missing``, ``keyword_present``,
    ``json_mismatch``, ``body_too_large``, ``too_many_redirects``, ``expect_mismatch``, ``rcode_mismatch``,
    ``answer_mismatch``, ``loss``, ``latency``; the port kinds add ``closed``, ``protocol_error``,
    ``server_error``, ``host_blocked``, ``too_many_connections``, ``starting_up``, ``shutting_down``,
    ``too_many_clients``, ``tls_unavailable``, ``auth_failed``, ``auth_required``, ``loading``, ``ntp_*``; the
    mail probes add ``banner_rejected``, ``banner_mismatch``, ``ehlo_failed``, ``starttls_unavailable``,
    ``starttls_failed``, ``auth_unavailable``; SNMP adds ``interface_down``, ``interface_admin_down``,
    ``interface_missing``, ``error_rate``, ``value_mismatch``, ``oid_missing`` and ``rebooted`` (an UP result
    carrying ``details["event"]``), ...). ``phases`` holds seconds per phase, named as
    blackbox_exporter names them (``resolve``, ``connect``, ``tls``, ``processing``, ``transfer``); ICMP puts
    ``rtt_min``, ``rtt_avg``, ``rtt_max``, ``jitter`` (seconds) and ``loss`` (a fraction) there. ``details``
    is JSON-serialisable (status code, certificate not-after as ISO text, resolved address, ...).
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
    # How often the monitor checks by default, and the longest interval its inventory entry may ask for; a kind
    # whose answer changes slowly (domain expiry) raises both.
    default_interval_s: ClassVar[float] = 60.0
    max_interval_s: ClassVar[float] = 3600.0

    target: str = Field(min_length=1, max_length=2048)
    timeout_s: float = Field(10.0, gt=0, le=120)


class Failure(Exception):
    """Raised inside a probe to stop it with a DOWN (or DEGRADED) result; never escapes a prober."""

    def __init__(self, reason: str, message: str, outcome: Outcome = Outcome.DOWN) -> None:
        super().__init__(message)
        self.reason, self.message, self.outcome = reason, message, outcome


def up_or_degraded(latency_s: float, threshold_s: float | None, message: str) -> tuple[Outcome, str, str]:
    """Return (outcome, reason, message) for a check that passed, degraded when slower than ``threshold_s``."""
    if threshold_s is not None and latency_s > threshold_s:
        return Outcome.DEGRADED, "latency", f"slow: {latency_s * 1000:.0f} ms > {threshold_s * 1000:.0f} ms"
    return Outcome.UP, "ok", message


def valid_regex(value: str | None, what: str, *, as_bytes: bool = False) -> str | None:
    """``value`` if it compiles (as bytes when the probe matches bytes), else a ``ValueError`` naming ``what``:
    the one regex check of every spec field (pydantic turns it into a field-named error)."""
    if value is not None:
        try:
            re.compile(value.encode() if as_bytes else value)
        except re.error as exc:
            raise ValueError(f"{what} is not a valid regex: {exc}") from None
    return value


Prober = Callable[[Any, Any], Awaitable[ProbeResult]]
