"""The pure decisions of heartbeat (push) monitors: what a ping means and when silence is an outage.

A job pings ``/hb/{token}`` when it finishes well, ``/hb/{token}/fail`` (or a non-zero ``/hb/{token}/{code}``)
when it fails, and optionally ``/hb/{token}/start`` when it begins. Both functions here return an ordinary
``ProbeResult``, which the runner evaluates like a probe's (``monitor.evaluate``): flips, incidents, tickets
and notices follow unchanged. Heartbeat monitors confirm on one result (``PUSH_POLICY``): a ping is one
observation of a whole run, not one sample of many.

* ``on_ping``: a finish that failed is DOWN ``heartbeat_failed``; a success is UP, or DEGRADED
  ``heartbeat_slow`` when the run since its ``/start`` took longer than ``max_run_s``. A start changes no
  state; it only opens the run whose time the finish measures (``latency_s``, ``phases["run"]``).
* ``silence`` (the sweep): no finish for ``period_s + grace_s`` since the last one is DOWN ``heartbeat_late``;
  a run open longer than ``max_run_s`` is DEGRADED ``heartbeat_slow``. Before the first ping there is no
  deadline (the monitor stays UNKNOWN, as a job that was never set up is not an outage of the customer's).
* Our own downtime is not the job's fault: a deadline that fell before we were listening again (``heard_since``,
  the service's start) moves to one full period after it. A ping lost while we were down is then not an
  outage, so a restart after an hour away opens no storm of incidents; a job that really stopped is reported
  one period later than it would have been.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from monitor.models import State
from probes.base import Outcome, ProbeResult
from probes.heartbeat import HeartbeatSpec

__all__ = ["Signal", "Ping", "PingState", "PUSH_POLICY", "on_ping", "silence", "deadline", "worth_applying",
           "policy_for", "LOG_CHARS"]

# One result confirms: a heartbeat's "check" is a whole run of the job, not a sample of a flaky network.
PUSH_POLICY = {"down_after": 1, "degraded_after": 1, "up_after": 1}
LOG_CHARS = 1000  # of the body's log line kept in the result's details (the message carries less)


class Signal(enum.StrEnum):
    START = "start"
    SUCCESS = "success"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Ping:
    signal: Signal
    at: datetime
    exit_code: int | None = None
    log: str = ""

    @property
    def failed(self) -> bool:
        return self.signal is Signal.FAIL or (self.exit_code is not None and self.exit_code != 0)


@dataclass(frozen=True, slots=True)
class PingState:
    """What the ``heartbeats`` row remembers between pings."""

    last_ping_at: datetime | None = None
    finished_at: datetime | None = None
    started_at: datetime | None = None  # a run in progress (a start after the last finish)
    last_signal: str | None = None
    last_exit_code: int | None = None


def policy_for(kind_is_push: bool, raw: dict[str, Any] | None) -> dict[str, Any]:
    """A monitor's stored policy over its kind's defaults."""
    return {**PUSH_POLICY, **(raw or {})} if kind_is_push else dict(raw or {})


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _finish_result(spec: HeartbeatSpec, ping: Ping, run_s: float | None) -> ProbeResult:
    log = ping.log[:LOG_CHARS]
    details: dict[str, Any] = {"signal": str(ping.signal), "exit_code": ping.exit_code}
    if log:
        details["log"] = log
    phases = {}
    if run_s is not None:
        details["run_s"] = round(run_s, 3)
        phases["run"] = run_s
    tail = f": {log[:200]}" if log else ""
    if ping.failed:
        what = f"exited with code {ping.exit_code}" if ping.exit_code else "reported a failure"
        return ProbeResult(Outcome.DOWN, "heartbeat_failed", f"the job {what}{tail}", run_s or 0.0, phases, details)
    if run_s is not None and spec.max_run_s is not None and run_s > spec.max_run_s:
        return ProbeResult(Outcome.DEGRADED, "heartbeat_slow", f"the run took {_seconds(run_s)}, more than "
                           f"max_run_s {_seconds(spec.max_run_s)}{tail}", run_s, phases, details)
    took = f" after a run of {_seconds(run_s)}" if run_s is not None else ""
    return ProbeResult(Outcome.UP, "ok", f"ping received{took}{tail}", run_s or 0.0, phases, details)


def on_ping(spec: HeartbeatSpec, state: PingState, ping: Ping) -> tuple[PingState, ProbeResult | None]:
    """The new ping state and, for a finish, the result to evaluate (a start gives none)."""
    code = ping.exit_code
    if ping.signal is Signal.START:
        return replace(state, last_ping_at=ping.at, started_at=ping.at, last_signal=str(ping.signal),
                       last_exit_code=None), None
    run_s = None
    if state.started_at is not None and state.started_at <= ping.at:
        run_s = (ping.at - state.started_at).total_seconds()
    new = PingState(last_ping_at=ping.at, finished_at=ping.at, started_at=None, last_signal=str(ping.signal),
                    last_exit_code=code)
    return new, _finish_result(spec, ping, run_s)


def deadline(spec: HeartbeatSpec, state: PingState, heard_since: datetime) -> datetime | None:
    """When the monitor becomes late: the last finish (or the first start) + period + grace, moved to a
    period after ``heard_since`` when it fell while we could not hear the job. None before any ping."""
    base = state.finished_at or state.started_at
    if base is None:
        return None
    grace = timedelta(seconds=spec.grace_s)
    due = base + timedelta(seconds=spec.period_s) + grace
    if due < heard_since + grace:
        due = heard_since + timedelta(seconds=spec.period_s) + grace
    return due


def _running_too_long(spec: HeartbeatSpec, state: PingState, now: datetime, heard_since: datetime) -> float | None:
    """Seconds the open run has lasted, when that is more than ``max_run_s``. A run begun before we were
    listening is not judged: its finish may have been the ping we missed."""
    start = state.started_at
    if spec.max_run_s is None or start is None or start < heard_since:
        return None
    running = (now - start).total_seconds()
    return running if running > spec.max_run_s else None


def silence(spec: HeartbeatSpec, state: PingState, now: datetime, heard_since: datetime) -> ProbeResult | None:
    """What the missing pings say at ``now``: DOWN ``heartbeat_late``, DEGRADED ``heartbeat_slow`` or None."""
    due = deadline(spec, state, heard_since)
    if due is not None and now > due:
        late = (now - due).total_seconds() + spec.grace_s
        last = state.finished_at or state.started_at
        return ProbeResult(Outcome.DOWN, "heartbeat_late",
                           f"no ping for {_seconds((now - last).total_seconds())}; expected every "
                           f"{_seconds(spec.period_s)} with {_seconds(spec.grace_s)} grace",
                           details={"late_s": round(late, 3), "deadline": due.isoformat(),
                                    "last_ping_at": state.last_ping_at.isoformat() if state.last_ping_at else None})
    running = _running_too_long(spec, state, now, heard_since)
    if running is not None:
        return ProbeResult(Outcome.DEGRADED, "heartbeat_slow",
                           f"running for {_seconds(running)}, more than max_run_s {_seconds(spec.max_run_s)}",
                           running, {"run": running}, {"run_s": round(running, 3), "running": True})
    return None


def worth_applying(result: ProbeResult, current: State) -> bool:
    """Whether a sweep's result can change what the monitor shows (so a monitor already DOWN is not sent the
    same verdict every sweep). Held states (maintenance, blindness) get it again until it can take effect."""
    if result.outcome is Outcome.DOWN:
        return current not in (State.DOWN, State.UNREACHABLE)
    return current in (State.UP, State.UNKNOWN, State.MAINTENANCE)
