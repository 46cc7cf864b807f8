"""The location vote: one monitor judged from the latest check of each location assigned to it. Pure.

From one place "the server is down" and "our path to it is down" look the same; from several they do not.

* Voters: the assigned locations that are not blind (their own canaries fail) and whose latest check is not
  older than ``max_age_s`` (a location that stopped sending has no say). A blind location's checks are kept,
  never counted.
* Quorum: ``needed`` failing voters confirm the failure (``quorum`` if the monitor sets one, else a majority
  of the voters). Confirmed, the vote is DOWN (DEGRADED if fewer than ``needed`` of the failing saw DOWN),
  with a message naming every failing location.
* Minority: fewer failing voters than ``needed`` is a regional failure: the vote is DEGRADED with reason
  ``regional`` naming the locations, once one of them has failed ``local_after`` checks in a row (one
  location's single failure is a question, not an answer: the others are asked to re-check at once,
  ``Vote.recheck``).
* No voter at all: nothing can be said (``observed`` is empty; the caller holds the state).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from probes.base import Outcome, ProbeResult

__all__ = ["Seen", "Vote", "vote", "needed_for", "REGIONAL"]

REGIONAL = "regional"


@dataclass(frozen=True, slots=True)
class Seen:
    """The latest check of one monitor from one location."""

    outcome: str  # "up", "degraded" or "down" (after latency thresholds)
    at: datetime
    streak: int = 0  # consecutive failing checks from this location, this one included
    reason: str = "ok"
    message: str = ""
    latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Vote:
    observed: str  # "up", "degraded", "down"; "" when no location can see
    reason: str
    message: str
    voters: tuple[str, ...]
    failing: tuple[str, ...]
    blind: tuple[str, ...]
    needed: int
    recheck: tuple[str, ...] = ()  # voters that should check again now (a failure waits for their word)
    latency_s: float = 0.0

    def result(self) -> ProbeResult:
        """The vote as one check, for ``monitor.evaluate`` (reason and message become the flip's)."""
        outcome = {"up": Outcome.UP, "degraded": Outcome.DEGRADED}.get(self.observed, Outcome.DOWN)
        details = {"voters": list(self.voters), "failing": list(self.failing), "blind": list(self.blind)}
        return ProbeResult(outcome, self.reason, self.message, self.latency_s, details=details)


def needed_for(quorum: int | None, voters: int) -> int:
    """How many failing voters confirm a failure: the monitor's quorum, else a majority of the voters."""
    return quorum if quorum is not None else voters // 2 + 1


def _names(locations: Iterable[str]) -> str:
    return ", ".join(locations)


def vote(assigned: Iterable[str], seen: Mapping[str, Seen], blind: Iterable[str], now: datetime, *,
         quorum: int | None = None, max_age_s: float = 180.0, local_after: int = 2) -> Vote:
    """Judge one monitor from the latest check of each of its ``assigned`` locations."""
    assigned = tuple(assigned)
    blind_here = tuple(loc for loc in assigned if loc in set(blind))
    voters = tuple(loc for loc in assigned if loc not in blind_here and loc in seen
                   and (now - seen[loc].at).total_seconds() <= max_age_s)
    if not voters:
        return Vote("", "blind", "no location can see: " + (_names(blind_here) or "no recent checks"),
                    (), (), blind_here, needed_for(quorum, 0))
    failing = tuple(loc for loc in voters if seen[loc].outcome != "up")
    needed = needed_for(quorum, len(voters))
    latency = max(seen[loc].latency_s for loc in voters)
    if not failing:
        return Vote("up", "ok", f"up from {_names(voters)}", voters, (), blind_here, needed, latency_s=latency)
    reason = Counter(seen[loc].reason for loc in failing).most_common(1)[0][0]
    detail = "; ".join(f"{loc}: {seen[loc].message}" for loc in failing)
    if len(failing) >= needed:
        downs = sum(seen[loc].outcome == "down" for loc in failing)
        observed = "down" if downs >= needed else "degraded"
        return Vote(observed, reason, f"failing from {_names(failing)} ({len(failing)} of {len(voters)}): "
                    f"{detail}"[:2000], voters, failing, blind_here, needed, latency_s=latency)
    others = tuple(loc for loc in voters if loc not in failing)
    if max(seen[loc].streak for loc in failing) >= local_after:
        return Vote("degraded", REGIONAL, f"failing only from {_names(failing)}; up from {_names(others)}: "
                    f"{detail}"[:2000], voters, failing, blind_here, needed, latency_s=latency)
    # A first failure from a minority: not evidence yet; the others look again at once.
    return Vote("up", "ok", f"suspect from {_names(failing)}", voters, failing, blind_here, needed,
                recheck=others, latency_s=latency)
