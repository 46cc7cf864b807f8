"""Pure decisions of the incident engine: what a flip does to the incident of its cause.

Nothing here reads the clock or the database: callers pass ``now`` and what they loaded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from incidents.models import Severity
from monitor.models import State

__all__ = ["Action", "Decision", "OpenView", "severity_for", "dedup_key_for", "decide", "recovery_confirmed",
           "higher"]

_SEVERITY = {State.DOWN: Severity.URGENT, State.UNREACHABLE: Severity.URGENT, State.DEGRADED: Severity.IMPORTANT}


class Action(enum.StrEnum):
    OPEN = "open"              # no open incident for this cause: open one
    RAISE = "raise"            # the open incident becomes more severe (important -> urgent)
    FAIL_AGAIN = "fail_again"  # the cause fails again while open (a flap if it was recovering)
    ABSORB = "absorb"          # a child behind the root cause: list it as affected
    RECOVERING = "recovering"  # the root cause is back up: resolve once that is confirmed
    SUPPRESS = "suppress"      # a failure inside a maintenance window opens nothing
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class OpenView:
    """What the decision needs to know about the open incident of the flip's cause."""

    severity: Severity
    root_monitor_id: int | None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    severity: Severity | None = None


def severity_for(state: str) -> Severity | None:
    """Rule 14: DOWN (and UNREACHABLE behind a DOWN parent) is urgent, DEGRADED is important."""
    try:
        return _SEVERITY.get(State(state))
    except ValueError:
        return None


def dedup_key_for(monitor_id: int, root_monitor_id: int | None) -> str:
    """One key per root cause: a child UNREACHABLE because of its parent shares the parent's key."""
    return f"monitor:{root_monitor_id or monitor_id}"


def higher(a: Severity, b: Severity) -> Severity:
    return a if a.rank >= b.rank else b


def decide(new_state: str, monitor_id: int, open_incident: OpenView | None, in_maintenance: bool) -> Decision:
    """Return what a flip to ``new_state`` of ``monitor_id`` does. Severity is never lowered."""
    severity = severity_for(new_state)
    if open_incident is None:
        if severity is None:
            return Decision(Action.IGNORE)
        return Decision(Action.SUPPRESS if in_maintenance else Action.OPEN, severity)
    is_root = open_incident.root_monitor_id in (None, monitor_id)
    if severity is None:
        return Decision(Action.RECOVERING if is_root and new_state == State.UP else Action.IGNORE)
    if not is_root:
        return Decision(Action.ABSORB, open_incident.severity)
    target = higher(open_incident.severity, severity)
    if target != open_incident.severity:
        return Decision(Action.RAISE, target)
    return Decision(Action.FAIL_AGAIN, target)


def recovery_confirmed(recovering_since: datetime | None, now: datetime, hold_s: float) -> bool:
    """A recovery is confirmed once the cause has stayed up for ``hold_s`` seconds (flaps keep it open)."""
    return recovering_since is not None and (now - recovering_since).total_seconds() >= hold_s
