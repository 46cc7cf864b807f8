"""The location vote as a table: who votes, what confirms DOWN, what is regional, what is asked to re-check."""

from datetime import UTC, datetime, timedelta

import pytest

from monitor.quorum import REGIONAL, Seen, needed_for, vote
from probes.base import Outcome

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ABC = ("teh", "mhd", "tbz")


def seen(outcome: str, streak: int = 0, age_s: float = 5, reason: str = "timeout") -> Seen:
    streak = streak or (0 if outcome == "up" else 1)
    return Seen(outcome, NOW - timedelta(seconds=age_s), streak, "ok" if outcome == "up" else reason,
                f"{outcome} here")


#  name, latest per location, blind, quorum, observed, reason, failing, recheck
CASES = [
    ("all up", {"teh": seen("up"), "mhd": seen("up"), "tbz": seen("up")}, (), None, "up", "ok", (), ()),
    ("all down: quorum", {"teh": seen("down"), "mhd": seen("down"), "tbz": seen("down")}, (), None,
     "down", "timeout", ABC, ()),
    ("two of three: majority", {"teh": seen("down"), "mhd": seen("down"), "tbz": seen("up")}, (), None,
     "down", "timeout", ("teh", "mhd"), ()),
    ("one first failure: suspect, the others re-check", {"teh": seen("down"), "mhd": seen("up"),
                                                         "tbz": seen("up")}, (), None,
     "up", "ok", ("teh",), ("mhd", "tbz")),
    ("one location fails again and again: regional", {"teh": seen("down", 3), "mhd": seen("up"),
                                                      "tbz": seen("up")}, (), None,
     "degraded", REGIONAL, ("teh",), ()),
    ("quorum of three: two failing is regional", {"teh": seen("down", 3), "mhd": seen("down", 3),
                                                  "tbz": seen("up")}, (), 3,
     "degraded", REGIONAL, ("teh", "mhd"), ()),
    ("a blind location has no say", {"teh": seen("down", 5), "mhd": seen("up"), "tbz": seen("up")}, ("teh",),
     None, "up", "ok", (), ()),
    ("blind ones leave out: majority of the healthy", {"teh": seen("down"), "mhd": seen("down"),
                                                       "tbz": seen("up")}, ("tbz",), None,
     "down", "timeout", ("teh", "mhd"), ()),
    ("a stale location has no say", {"teh": seen("down", age_s=600), "mhd": seen("up"), "tbz": seen("up")}, (),
     None, "up", "ok", (), ()),
    ("degraded from a majority", {"teh": seen("degraded"), "mhd": seen("degraded"), "tbz": seen("up")}, (),
     None, "degraded", "timeout", ("teh", "mhd"), ()),
    ("everyone blind: nothing to say", {"teh": seen("down"), "mhd": seen("down"), "tbz": seen("down")}, ABC,
     None, "", "blind", (), ()),
]


@pytest.mark.parametrize("name, latest, blind, quorum, observed, reason, failing, recheck", CASES,
                         ids=[c[0] for c in CASES])
def test_the_vote(name, latest, blind, quorum, observed, reason, failing, recheck):
    v = vote(ABC, latest, blind, NOW, quorum=quorum, max_age_s=180, local_after=3)
    assert (v.observed, v.reason, v.failing, v.recheck) == (observed, reason, failing, recheck)
    assert set(v.blind) == set(blind)


def test_a_confirmed_failure_names_every_failing_location_and_a_regional_one_the_others():
    down = vote(ABC, {k: seen("down") for k in ABC}, (), NOW)
    assert all(loc in down.message for loc in ABC) and down.result().outcome is Outcome.DOWN
    regional = vote(ABC, {"teh": seen("down", 3), "mhd": seen("up"), "tbz": seen("up")}, (), NOW, local_after=3)
    assert regional.message.startswith("failing only from teh; up from mhd, tbz")
    assert regional.result().outcome is Outcome.DEGRADED and regional.result().reason == REGIONAL


@pytest.mark.parametrize("quorum, voters, needed", [(None, 1, 1), (None, 2, 2), (None, 3, 2), (None, 4, 3),
                                                    (None, 5, 3), (2, 3, 2), (3, 2, 3)])
def test_needed_is_the_quorum_or_a_majority_of_the_voters(quorum, voters, needed):
    assert needed_for(quorum, voters) == needed


def test_a_quorum_larger_than_the_healthy_locations_can_only_say_regional():
    latest = {"teh": seen("down", 3), "mhd": seen("down", 3), "tbz": seen("down", 3)}
    v = vote(ABC, latest, ("tbz",), NOW, quorum=3, local_after=3)
    assert (v.observed, v.reason) == ("degraded", REGIONAL)
