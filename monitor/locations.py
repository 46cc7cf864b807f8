"""What the engine remembers of the locations: each voted monitor's latest check per location, each location's
canaries, and the re-checks asked of each location. The decisions are ``monitor.quorum.vote``'s; this is memory.

* ``observe`` keeps a location's latest check of a monitor (an older one arriving after a newer is ignored)
  with its failing streak.
* A location is blind when every one of its canaries failed its latest check (``monitor.selfcheck.SelfCheck``,
  one per location); the central location's blindness is the service's own self-check.
* ``window_s``: the confirmation window. A result older than that when it arrives is *late*: it fills uptime
  but is never voted on, so a buffered agent catching up never pages.
* Accelerated confirmation: after a first failure from a minority, every other voter is asked to check again
  now: the central scheduler through ``on_recheck`` listeners, an agent in its next results answer
  (``take_rechecks``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from monitor.catalog import MonitorConfig
from monitor.models import CENTRAL
from monitor.policy import Policy
from monitor.quorum import Seen, Vote, vote
from monitor.selfcheck import SelfCheck
from probes.base import ProbeResult

__all__ = ["LocationBoard", "window_s", "voted_policy", "MIN_WINDOW_S"]

MIN_WINDOW_S = 60.0


def window_s(cfg: MonitorConfig) -> float:
    """How old a location's latest check may be and still vote: three intervals, at least a minute."""
    return max(3 * cfg.interval_s, MIN_WINDOW_S)


def voted_policy(policy: Policy) -> Policy:
    """The policy a vote is evaluated with: the quorum is the confirmation, so one vote confirms a failure
    (recovery still takes ``up_after`` votes, flapping is still detected)."""
    return policy.model_copy(update={"down_after": 1, "degraded_after": 1})


class LocationBoard:
    def __init__(self, central_blind: Callable[[], bool] = lambda: False) -> None:
        self.seen: dict[int, dict[str, Seen]] = {}
        self.canaries: dict[str, SelfCheck] = {}
        self.alerts: dict[str, MonitorConfig] = {}  # location -> its internal "blind" monitor
        self._central_blind = central_blind
        self._rechecks: dict[str, set[int]] = {}
        self._listeners: list[Callable[[int], None]] = []
        self.received: dict[str, int] = {}  # results taken, by location (metrics)
        self.lag_s: dict[str, float] = {}  # age of the newest result when it arrived, by location

    def on_recheck(self, listener: Callable[[int], None]) -> None:
        """Called with a monitor id when the central location should check it again now."""
        self._listeners.append(listener)

    def set_canaries(self, location: str, count: int) -> None:
        check = self.canaries.setdefault(location, SelfCheck())
        check.set_canaries(set(range(count)), None)

    def canary(self, location: str, index: int, result: ProbeResult) -> bool:
        """Take one canary check of ``location``; True when the location's blindness changed."""
        check = self.canaries.get(location)
        if check is None or index not in check.canaries:
            return False
        before = check.blind
        check.observe(index, result)
        return check.blind != before

    def blind(self) -> set[str]:
        out = {loc for loc, check in self.canaries.items() if check.blind}
        if self._central_blind():
            out.add(CENTRAL)
        return out

    def count(self, location: str, at: datetime, now: datetime) -> None:
        self.received[location] = self.received.get(location, 0) + 1
        self.lag_s[location] = max(0.0, (now - at).total_seconds())

    def observe(self, monitor_id: int, location: str, observed: str, result: ProbeResult, at: datetime) -> bool:
        """Keep ``location``'s check of a monitor; False when a newer one is already kept."""
        per = self.seen.setdefault(monitor_id, {})
        prev = per.get(location)
        if prev is not None and prev.at > at:
            return False
        streak = 0 if observed == "up" else (prev.streak if prev else 0) + 1
        per[location] = Seen(observed, at, streak, result.reason, result.message[:500], result.latency_s)
        return True

    def vote_for(self, cfg: MonitorConfig, now: datetime) -> Vote:
        v = vote(cfg.assigned, self.seen.get(cfg.id, {}), self.blind(), now, quorum=cfg.quorum,
                 max_age_s=window_s(cfg), local_after=cfg.policy.down_after)
        for loc in v.recheck:
            self._ask(loc, cfg.id)
        return v

    def _ask(self, location: str, monitor_id: int) -> None:
        if location == CENTRAL:
            for listener in self._listeners:
                listener(monitor_id)
        else:
            self._rechecks.setdefault(location, set()).add(monitor_id)

    def take_rechecks(self, location: str) -> list[int]:
        return sorted(self._rechecks.pop(location, set()))

    def forget(self, monitor_id: int) -> None:
        self.seen.pop(monitor_id, None)
