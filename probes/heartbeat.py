"""Heartbeat (push) monitors: the job pings us, nothing is probed.

A heartbeat has a spec like every kind (validated by ``SPECS["heartbeat"]``, stored in ``Monitor.spec``) but
no prober: its results come from the pings the job sends to ``/hb/{token}`` and from the sweep that notices
missing pings (``monitor.heartbeat`` decides, ``monitor.heartbeat_service`` receives and sweeps). That is why
it is listed in ``PUSH_KINDS`` and not in ``PROBERS``: the scheduler never starts a push kind.

* ``period_s``: how often the job runs (a finish ping is expected that often).
* ``grace_s``: how late a finish may be before the monitor is DOWN (``heartbeat_late``).
* ``max_run_s``: optional; a run (``/start`` to finish) longer than this is DEGRADED (``heartbeat_slow``).
* ``token_sha256``: optional, the SHA-256 of the monitor's ping token as ``inventory export`` writes it, so
  an exported file applied elsewhere keeps the jobs' URLs working; the token itself is never stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from probes.base import SpecBase

__all__ = ["HeartbeatSpec", "PUSH_TARGET"]

PUSH_TARGET = "push"  # what ``Monitor.target`` holds for a push kind (the column is required)
DAY_S = 86_400.0


class HeartbeatSpec(SpecBase):
    kind: Literal["heartbeat"] = "heartbeat"
    target: str = Field(PUSH_TARGET, min_length=1, max_length=2048)
    period_s: float = Field(ge=60, le=366 * DAY_S, description="how often the job runs, in seconds")
    grace_s: float = Field(600.0, ge=0, le=31 * DAY_S, description="how late a ping may be, in seconds")
    max_run_s: float | None = Field(None, gt=0, le=31 * DAY_S,
                                    description="a run from /start to its finish longer than this is degraded")
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                                     description="the SHA-256 (hex) of the ping token, as exported")

    @model_validator(mode="after")
    def _run_fits(self) -> HeartbeatSpec:
        if self.max_run_s is not None and self.max_run_s > self.period_s + self.grace_s:
            raise ValueError("max_run_s must not exceed period_s + grace_s (a run that long is already late)")
        return self
