"""Flap detection as Nagios does it: the weighted percent of state changes over the recent checks.

The history is a string of one letter per check (``U`` up, ``G`` degraded, ``D`` down), oldest first. Of the
``window`` checks there are ``window - 1`` transitions; a change weighs 0.8 for the oldest transition up to
1.2 for the newest, so recent changes count more. The percentage is the weighted sum over ``window - 1``.
Flapping starts when the percentage reaches the high limit and ends when it falls below the low limit
(the gap between the two is hysteresis of its own).
"""

from __future__ import annotations

__all__ = ["OUTCOME_LETTER", "push", "percent_change", "is_flapping"]

OUTCOME_LETTER = {"up": "U", "degraded": "G", "down": "D"}
LOW_WEIGHT, HIGH_WEIGHT = 0.8, 1.2


def push(history: str, letter: str, window: int) -> str:
    """Return the history with ``letter`` appended, keeping the last ``window`` checks."""
    return (history + letter)[-window:]


def percent_change(history: str, window: int) -> float:
    transitions = window - 1
    if len(history) < 2 or transitions < 1:
        return 0.0
    # Transition slots are aligned to the newest end: the newest change always gets the high weight.
    offset = transitions - (len(history) - 1)
    total = 0.0
    for i in range(1, len(history)):
        if history[i] != history[i - 1]:
            slot = offset + i - 1
            total += LOW_WEIGHT + (HIGH_WEIGHT - LOW_WEIGHT) * slot / max(transitions - 1, 1)
    return 100.0 * total / transitions


def is_flapping(was_flapping: bool, percent: float, low: float, high: float) -> bool:
    if was_flapping:
        return percent >= low
    return percent >= high
