"""The pure state evaluation: ``evaluate(previous, result, policy, now)``.

It reads nothing and writes nothing. It returns the monitor's new evaluated state and, when the confirmed
state changes, a ``FlipDecision`` that the caller stores in the same transaction as the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from monitor.models import State
from monitor.policy import Policy
from probes import Outcome, ProbeResult

__all__ = ["EvalState", "FlipDecision", "Evaluation", "evaluate"]

_OUTCOME_STATE = {Outcome.UP: State.UP, Outcome.DEGRADED: State.DEGRADED, Outcome.DOWN: State.DOWN}


@dataclass(frozen=True, slots=True)
class EvalState:
    """What evaluation carries from one check to the next."""

    state: State = State.UNKNOWN
    since: datetime | None = None
    candidate: State | None = None  # the state the recent checks point to, not yet confirmed
    streak: int = 0  # consecutive checks pointing to ``candidate``
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlipDecision:
    old_state: State
    new_state: State
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: EvalState
    flip: FlipDecision | None
    # True when the monitor should be checked again at the policy's retry interval.
    retry_soon: bool = False


def _needed(target: State, policy: Policy) -> int:
    return {State.DOWN: policy.down_after, State.DEGRADED: policy.degraded_after}.get(target, policy.up_after)


def evaluate(previous: EvalState, result: ProbeResult, policy: Policy, now: datetime) -> Evaluation:
    """Return the new state after ``result``; a flip only when a state is confirmed."""
    seen = _OUTCOME_STATE[result.outcome]
    if seen == previous.state:
        return Evaluation(replace(previous, candidate=None, streak=0), None)
    streak = previous.streak + 1 if previous.candidate == seen else 1
    # A new monitor that answers is UP at once; a failure is confirmed like any other.
    if streak >= _needed(seen, policy) or (previous.state is State.UNKNOWN and seen is State.UP):
        flip = FlipDecision(previous.state, seen, result.reason, result.message)
        return Evaluation(EvalState(seen, now), flip)
    return Evaluation(replace(previous, candidate=seen, streak=streak), None, retry_soon=True)
