"""The pure evaluation of one check: ``evaluate(previous, result, policy, now, context) -> Evaluation``.

States: UP, DEGRADED, DOWN, UNREACHABLE (a parent is confirmed DOWN), MAINTENANCE (inside a window), UNKNOWN
(nothing confirmed yet). The rules, in order:

1. Blind: while the self-check canaries fail, a failing check of a customer monitor is not evidence (our own
   network may be the cause): the state is held and the failure streak is forgotten.
2. Maintenance: inside a window the state is MAINTENANCE; checks are still counted, so when the window ends
   the monitor is judged from scratch (as from UNKNOWN) on the checks made since.
3. Flapping: Nagios' weighted percent state change over the recent checks. When it starts the monitor goes
   once to the worst outcome of the window (one flip, reason ``flapping``) and is held there; confirmation
   resumes when the percentage falls below the low limit.
4. Confirmation with hysteresis: ``down_after`` DOWN checks confirm DOWN, ``degraded_after`` DEGRADED checks
   confirm DEGRADED, ``up_after`` UP checks recover; DOWN and DEGRADED move into each other the same way.
5. Dependencies: a confirmed failure whose parent is confirmed DOWN is UNREACHABLE, attributed to the parent's
   monitor; while the parent is only suspect (failing, not confirmed yet) the child waits up to
   ``parent_grace`` more checks so that it does not report an outage of its own first.

Each confirmed change returns a ``FlipDraft`` with its reason (except a canary's: see monitor.selfcheck); ``retry_soon`` says a change is pending, so the
next check should come after the policy's short retry interval instead of a whole interval.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from monitor.flapping import OUTCOME_LETTER, is_flapping, percent_change, push
from monitor.models import State
from monitor.policy import Policy, Thresholds
from probes.base import Outcome, ProbeResult

__all__ = ["Memory", "ParentStatus", "Context", "FlipDraft", "Evaluation", "evaluate", "classify"]

FAILING = (State.DOWN, State.DEGRADED, State.UNREACHABLE)
WORST_FIRST = "DGU"
LETTER_STATE = {"D": State.DOWN, "G": State.DEGRADED, "U": State.UP}


@dataclass(frozen=True, slots=True)
class Memory:
    """What the evaluation carries from one check to the next (``MonitorState`` row: state + ``data``)."""

    state: State = State.UNKNOWN
    since: datetime | None = None
    last_check_at: datetime | None = None
    up: int = 0  # consecutive UP checks
    degraded: int = 0  # consecutive DEGRADED checks
    down: int = 0  # consecutive DOWN checks
    failing: int = 0  # consecutive checks that were not UP (degraded or down)
    history: str = ""  # one letter per recent check, oldest first (see monitor.flapping)
    flapping: bool = False
    flap_percent: float = 0.0
    root_monitor_id: int | None = None

    def signature(self) -> tuple:
        """What a stored state row must reflect; equal signatures need no rewrite of the row."""
        # A history of one outcome only says which; its length does not matter to anyone after a restart.
        history = self.history[:1] if self.history.count(self.history[:1]) == len(self.history) else self.history
        return (self.state, self.up, self.degraded, self.down, self.failing, history, self.flapping,
                self.root_monitor_id)

    def to_data(self) -> dict[str, Any]:
        return {"up": self.up, "degraded": self.degraded, "down": self.down, "failing": self.failing,
                "history": self.history, "flapping": self.flapping,
                "flap_percent": round(self.flap_percent, 1), "root_monitor_id": self.root_monitor_id}

    @classmethod
    def from_row(cls, state: str | None, since: datetime | None, last_check_at: datetime | None,
                 data: dict[str, Any] | None) -> Memory:
        data = data or {}
        known = {k: data[k] for k in ("up", "degraded", "down", "failing", "history", "flapping",
                                      "flap_percent", "root_monitor_id") if k in data}
        return cls(state=State(state or State.UNKNOWN), since=since, last_check_at=last_check_at, **known)


class ParentStatus(enum.StrEnum):
    OK = "ok"
    SUSPECT = "suspect"  # the nearest monitored parent failed its latest check but is not confirmed DOWN
    DOWN = "down"  # a parent is confirmed DOWN (or itself UNREACHABLE behind one)


@dataclass(frozen=True, slots=True)
class Context:
    """Facts outside the monitor's own checks, gathered by the runner before it evaluates."""

    maintenance: bool = False
    blind: bool = False
    parent: ParentStatus = ParentStatus.OK
    root_monitor_id: int | None = None  # the monitor of the parent that explains a failure


@dataclass(frozen=True, slots=True)
class FlipDraft:
    at: datetime
    old_state: State
    new_state: State
    reason: str
    message: str = ""
    root_monitor_id: int | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: State
    flip: FlipDraft | None
    memory: Memory
    retry_soon: bool = False
    observed: str = "up"


def classify(result: ProbeResult, thresholds: Thresholds, state: State) -> str:
    """The check's outcome after latency thresholds (with hysteresis on the way back from DEGRADED)."""
    outcome = Outcome(result.outcome).value
    limit = thresholds.degraded_latency_s
    if outcome != "up" or limit is None:
        return outcome
    if state is State.DEGRADED and thresholds.recover_latency_s is not None:
        limit = thresholds.recover_latency_s
    return "degraded" if result.latency_s > limit else "up"


def _cap(policy: Policy) -> int:
    """Streak counters stop where no threshold looks further, so a steady monitor's memory is steady."""
    return max(policy.down_after + policy.parent_grace, policy.degraded_after, policy.up_after)


def _count(prev: Memory, observed: str, policy: Policy, now: datetime) -> Memory:
    letter = OUTCOME_LETTER[observed]
    history = push(prev.history, letter, policy.flap_window)
    if prev.flap_percent == 0.0 and not prev.flapping and history.count(letter) == len(history):
        percent, flapping = 0.0, False  # the same outcome all along: nothing to weigh
    else:
        percent = percent_change(history, policy.flap_window)
        flapping = is_flapping(prev.flapping, percent, policy.flap_low, policy.flap_high)
    cap = _cap(policy)
    up, deg, down = observed == "up", observed == "degraded", observed == "down"
    return Memory(prev.state, prev.since, now, min(prev.up + 1, cap) if up else 0,
                  min(prev.degraded + 1, cap) if deg else 0, min(prev.down + 1, cap) if down else 0,
                  0 if up else min(prev.failing + 1, cap), history, flapping, percent, prev.root_monitor_id)


def _confirmed_failure(mem: Memory, policy: Policy) -> State | None:
    if mem.down >= policy.down_after:
        return State.DOWN
    if mem.degraded >= policy.degraded_after or mem.failing >= policy.down_after:
        return State.DEGRADED
    return None


def _own_target(base: State, mem: Memory, observed: str, policy: Policy) -> State:
    """The state the monitor's own checks confirm, before parents are considered."""
    if observed == "up":
        needed = 1 if base is State.UNKNOWN else policy.up_after
        return State.UP if mem.up >= needed or base is State.UP else base
    if base in (State.UNKNOWN, State.UP):
        return _confirmed_failure(mem, policy) or base
    if base is State.DEGRADED and mem.down >= policy.down_after:
        return State.DOWN
    if base is State.DOWN and mem.degraded >= policy.up_after:
        return State.DEGRADED
    if base is State.UNREACHABLE:  # already confirmed failing; the parent is judged below
        return State.DOWN if observed == "down" else State.DEGRADED
    return base


def _apply_parent(base: State, target: State, mem: Memory, policy: Policy, ctx: Context) -> State:
    if target not in FAILING or policy.role != "customer":
        return target
    if ctx.parent is ParentStatus.DOWN:
        return State.UNREACHABLE
    if target is State.UNREACHABLE:  # the parent came back but this child still fails: its own outage now
        if not mem.failing:  # ... unless its last check passed: it is recovering, on its own up_after count
            return target
        return State.DOWN if mem.down else State.DEGRADED
    if ctx.parent is ParentStatus.SUSPECT and target != base and base not in FAILING:
        if mem.failing < policy.down_after + policy.parent_grace:
            return base
    return target


def _flap_target(prev: Memory, mem: Memory, base: State) -> State | None:
    """While flapping, the state to hold; None when flapping is not in force."""
    if not mem.flapping:
        return None
    if prev.flapping:
        return base
    worst = next(letter for letter in WORST_FIRST if letter in mem.history)
    return LETTER_STATE[worst]


def _reason(old: State, new: State, result: ProbeResult, flapping: bool) -> str:
    if flapping:
        return "flapping"
    if new is State.MAINTENANCE:
        return "maintenance"
    if old is State.MAINTENANCE and new in (State.UP, State.UNKNOWN):
        return "maintenance_over"
    if new is State.UNREACHABLE:
        return "parent_down"
    if new is State.UP:
        return "first_check" if old is State.UNKNOWN else "recovered"
    return result.reason[:40]


def _message(new: State, result: ProbeResult, ctx: Context, mem: Memory) -> str:
    if new is State.UNREACHABLE:
        return f"parent monitor {ctx.root_monitor_id} is down; last check: {result.message}"[:2000]
    if mem.flapping:
        return f"state changed {mem.flap_percent:.0f}% of recent checks; last: {result.message}"[:2000]
    return result.message[:2000]


def _finish(prev: Memory, mem: Memory, target: State, result: ProbeResult, ctx: Context, now: datetime,
            observed: str, flapping_started: bool = False, quiet: bool = False) -> Evaluation:
    root = ctx.root_monitor_id if target is State.UNREACHABLE else None
    mem = replace(mem, root_monitor_id=root)
    flip = None
    if target != prev.state:
        mem = replace(mem, state=target, since=now)
    if target != prev.state and not quiet:
        flip = FlipDraft(now, prev.state, target, _reason(prev.state, target, result, flapping_started),
                         _message(target, result, ctx, mem), root)
    pending = _pending(target, observed) and not mem.flapping and target is not State.MAINTENANCE
    return Evaluation(target, flip, mem, pending, observed)


def _pending(state: State, observed: str) -> bool:
    if observed == "up":
        return state in FAILING
    if observed == "degraded":
        return state not in FAILING
    return state not in (State.DOWN, State.UNREACHABLE)


def evaluate(previous: Memory, result: ProbeResult, policy: Policy, now: datetime,
             context: Context = Context(), thresholds: Thresholds = Thresholds()) -> Evaluation:
    """Judge one check. Pure: the same arguments always give the same ``Evaluation``."""
    observed = classify(result, thresholds, previous.state)
    customer = policy.role == "customer"
    if context.blind and customer and observed != "up":
        held = replace(previous, last_check_at=now, up=0, degraded=0, down=0, failing=0)
        return Evaluation(previous.state, None, held, False, observed)
    mem = _count(previous, observed, policy, now)
    if observed == "up" and previous.state is State.UP and not mem.flapping and not context.maintenance:
        return Evaluation(State.UP, None, mem, False, observed)  # the common case, and the rules agree
    if context.maintenance:
        return _finish(previous, mem, State.MAINTENANCE, result, context, now, observed)
    base = State.UNKNOWN if previous.state is State.MAINTENANCE else previous.state
    flap = _flap_target(previous, mem, base)
    if flap is not None:
        if flap in FAILING and customer and context.parent is ParentStatus.DOWN:
            flap = State.UNREACHABLE
        return _finish(previous, mem, flap, result, context, now, observed, flapping_started=flap != base,
                       quiet=policy.role == "canary")
    target = _apply_parent(base, _own_target(base, mem, observed, policy), mem, policy, context)
    # A canary's own changes are not flips: the one alert is the self-check monitor's (monitor.selfcheck).
    return _finish(previous, mem, target, result, context, now, observed, quiet=policy.role == "canary")
