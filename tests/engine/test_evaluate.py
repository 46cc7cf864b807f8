"""The pure evaluation, rule by rule, as tables of checks and the states and flips they must give."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.evaluate import Context, Memory, ParentStatus, evaluate
from monitor.models import State
from monitor.policy import load_policy, load_thresholds
from probes.base import Outcome, ProbeResult

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LETTERS = {"U": Outcome.UP, "G": Outcome.DEGRADED, "D": Outcome.DOWN}
S = {"U": State.UP, "G": State.DEGRADED, "D": State.DOWN, "R": State.UNREACHABLE, "M": State.MAINTENANCE,
     "?": State.UNKNOWN}


def run(checks: str, policy=None, contexts=None, start: Memory | None = None, thresholds=None,
        latencies=None):
    """Feed one check per letter; return the state letters after each check and the flips."""
    pol = load_policy(policy or {})
    thr = load_thresholds(thresholds or {})
    mem = start or Memory()
    states, flips = [], []
    for i, letter in enumerate(checks):
        result = ProbeResult(LETTERS[letter], "ok" if letter == "U" else "timeout", f"check {i}",
                             (latencies or {}).get(i, 0.01))
        ctx = (contexts or {}).get(i, Context())
        ev = evaluate(mem, result, pol, T0 + timedelta(seconds=30 * i), ctx, thr)
        mem = ev.memory
        states.append(next(k for k, v in S.items() if v is ev.state))
        if ev.flip:
            flips.append((i, ev.flip.old_state.value, ev.flip.new_state.value, ev.flip.reason))
    return "".join(states), flips, mem


@pytest.mark.parametrize("checks, policy, expected", [
    # first UP check confirms UP at once; failures need down_after (3) checks
    ("UDDD", {}, "UUUD"),
    ("UDDUDD", {}, "UUUUUU"),
    # recovery needs up_after (2) checks: hysteresis
    ("UDDDUDU", {}, "UUUDDDD"),
    ("UDDDUU", {}, "UUUDDU"),
    # separate thresholds
    ("UDDDDDUUU", {"down_after": 5, "up_after": 3}, "UUUUUDDDU"),
    ("UD", {"down_after": 1}, "UD"),
    # a new monitor stays UNKNOWN until a failure is confirmed
    ("DDD", {}, "??D"),
    # degraded is confirmed by its own count
    ("UGG", {"degraded_after": 2}, "UUG"),
    ("UGGG", {}, "UUUG"),
    # degraded <-> down
    ("UGGGDDD", {}, "UUUGGGD"),
    ("UDDDGG", {}, "UUUDDG"),
    ("UDDDGGUU", {}, "UUUDDGGU"),
    # a mix of degraded and down checks confirms at least DEGRADED after down_after failures
    ("UDGD", {}, "UUUG"),
])
def test_confirmation_and_hysteresis(checks, policy, expected):
    states, _, _ = run(checks, policy)
    assert states == expected


def test_each_confirmed_change_is_one_flip_with_its_reason():
    _, flips, _ = run("UDDDDUU")
    assert flips == [(0, "UNKNOWN", "UP", "first_check"), (3, "UP", "DOWN", "timeout"),
                     (6, "DOWN", "UP", "recovered")]


@pytest.mark.parametrize("checks, expected_retry", [
    ("UD", True),  # a first failure: re-check soon
    ("UDDD", False),  # confirmed DOWN: back to the normal interval
    ("UDDDU", True),  # a first good check while DOWN: confirm the recovery soon
    ("UU", False),
])
def test_retry_interval_after_a_first_failure(checks, expected_retry):
    pol = load_policy({})
    mem = Memory()
    ev = None
    for i, letter in enumerate(checks):
        ev = evaluate(mem, ProbeResult(LETTERS[letter]), pol, T0 + timedelta(seconds=i))
        mem = ev.memory
    assert ev.retry_soon is expected_retry


@pytest.mark.parametrize("checks, expected_flips, flapping_at_end", [
    # alternating up/down never confirms by count, but flapping takes it DOWN once and holds it there
    ("UD" * 15, [("UNKNOWN", "UP", "first_check"), ("UP", "DOWN", "flapping")], True),
    # up/degraded flapping holds DEGRADED (the worst outcome seen)
    ("UG" * 15, [("UNKNOWN", "UP", "first_check"), ("UP", "DEGRADED", "flapping")], True),
    # once it settles, the percentage falls below the low limit and it recovers normally, with one flip
    ("UD" * 10 + "U" * 25, [("UNKNOWN", "UP", "first_check"), ("UP", "DOWN", "flapping"),
                            ("DOWN", "UP", "recovered")], False),
])
def test_flapping_holds_a_state_instead_of_flapping_it(checks, expected_flips, flapping_at_end):
    _, flips, mem = run(checks)
    assert [f[1:] for f in flips] == expected_flips
    assert mem.flapping is flapping_at_end


def test_flapping_stays_quiet_below_the_high_limit():
    # one failure now and then is not flapping
    _, flips, mem = run("UUUUUUDUUUUUUDUUUUUU")
    assert [f[2] for f in flips] == ["UP"]
    assert not mem.flapping


M = Context(maintenance=True)


@pytest.mark.parametrize("checks, contexts, expected_states, expected_new_states", [
    # inside a window: MAINTENANCE, and failing checks open no DOWN
    ("UDDDDD", {i: M for i in range(1, 6)}, "UMMMMM", ["UP", "MAINTENANCE"]),
    # after the window the monitor is judged afresh: up at once ...
    ("UDDUU", {1: M, 2: M}, "UMMUU", ["UP", "MAINTENANCE", "UP"]),
    # ... or DOWN once the failures since (inside the window too) are confirmed
    ("UDDDD", {1: M, 2: M}, "UMMDD", ["UP", "MAINTENANCE", "DOWN"]),
    ("UDDUDDD", {1: M, 2: M}, "UMMUUUD", ["UP", "MAINTENANCE", "UP", "DOWN"]),
])
def test_maintenance(checks, contexts, expected_states, expected_new_states):
    states, flips, _ = run(checks, contexts=contexts)
    assert states == expected_states
    assert [f[2] for f in flips] == expected_new_states


P_DOWN = Context(parent=ParentStatus.DOWN, root_monitor_id=7)
P_SUSPECT = Context(parent=ParentStatus.SUSPECT, root_monitor_id=7)


@pytest.mark.parametrize("checks, contexts, expected", [
    # parent confirmed DOWN: the failing child is UNREACHABLE, not DOWN
    ("UDDD", {i: P_DOWN for i in range(1, 4)}, "UUUR"),
    # parent only suspect: the child waits (parent_grace) instead of reporting its own outage first ...
    ("UDDDD", {i: P_SUSPECT for i in range(1, 5)}, "UUUUU"),
    # ... and goes UNREACHABLE when the parent is confirmed
    ("UDDDD", {1: P_SUSPECT, 2: P_SUSPECT, 3: P_SUSPECT, 4: P_DOWN}, "UUUUR"),
    # a suspect parent that never gets confirmed cannot hide the child's outage forever
    ("UDDDDDDD", {i: P_SUSPECT for i in range(1, 8)}, "UUUUUUDD"),
    # a child that went DOWN first is re-attributed when its parent is confirmed
    ("UDDDD", {4: P_DOWN}, "UUUDR"),
    # the parent recovers but the child still fails: now it is the child's own outage
    ("UDDDD", {1: P_DOWN, 2: P_DOWN, 3: P_DOWN}, "UUURD"),
    # the child recovers on its own counts
    ("UDDDUU", {i: P_DOWN for i in range(1, 6)}, "UUURRU"),
    # the parent is back before the child's first good check: the child is recovering, not failing on
    # its own (it was DEGRADED for one check, opening a spurious incident after every network outage)
    ("UDDDUU", {1: P_DOWN, 2: P_DOWN, 3: P_DOWN}, "UUURRU"),
    ("UDDDUDD", {1: P_DOWN, 2: P_DOWN, 3: P_DOWN}, "UUURRDD"),
])
def test_unreachable_behind_a_down_parent(checks, contexts, expected):
    states, _, _ = run(checks, contexts=contexts)
    assert states == expected


def test_a_canary_changes_state_without_flips():
    states, flips, _ = run("UDDU", {"role": "canary", "down_after": 1, "up_after": 1})
    assert states == "UDDU" and flips == []


def test_an_unreachable_flip_names_the_parents_monitor():
    _, flips, mem = run("UDDD", contexts={i: P_DOWN for i in range(1, 4)})
    assert flips[-1][1:] == ("UP", "UNREACHABLE", "parent_down")
    assert mem.root_monitor_id == 7


BLIND = Context(blind=True)


@pytest.mark.parametrize("checks, contexts, policy, expected", [
    # blind: failures are not evidence, the state holds
    ("UDDDDD", {i: BLIND for i in range(1, 6)}, {}, "UUUUUU"),
    # failures counted just before blindness was noticed are forgotten
    ("UDDDDDD", {3: BLIND}, {}, "UUUUUUD"),
    # evaluation resumes when connectivity returns
    ("UDDDDD", {1: BLIND, 2: BLIND}, {}, "UUUUUD"),
    # a canary itself is never held back
    ("UDDD", {i: BLIND for i in range(1, 4)}, {"role": "canary"}, "UUUD"),
])
def test_blind_monitoring_holds_customer_states(checks, contexts, policy, expected):
    states, _, _ = run(checks, policy, contexts=contexts)
    assert states == expected


@pytest.mark.parametrize("latencies, expected", [
    ({1: 0.6, 2: 0.6, 3: 0.6}, "UUUG"),  # slower than degraded_latency_s: degraded
    ({1: 0.6, 2: 0.6, 3: 0.6, 4: 0.4, 5: 0.4}, "UUUGGG"),  # between the limits: still degraded (hysteresis)
    ({1: 0.6, 2: 0.6, 3: 0.6, 4: 0.1, 5: 0.1}, "UUUGGU"),  # below recover_latency_s: recovers
])
def test_latency_thresholds_with_hysteresis(latencies, expected):
    n = len(expected)
    states, _, _ = run("U" * n, thresholds={"degraded_latency_s": 0.5, "recover_latency_s": 0.2},
                       latencies=latencies)
    assert states == expected


def test_memory_round_trips_through_the_state_row():
    _, _, mem = run("UDDDG")
    back = Memory.from_row(mem.state.value, mem.since, mem.last_check_at, mem.to_data())
    assert back.state is State.DOWN and back.failing == 4 and back.degraded == 1
    assert replace(back, flap_percent=0) == replace(mem, flap_percent=0)


@pytest.mark.parametrize("raw, field", [
    ({"down_after": 0}, "policy.down_after"),
    ({"flap_low": 60, "flap_high": 50}, "policy"),
    ({"bogus": 1}, "policy.bogus"),
])
def test_a_bad_policy_names_the_field(raw, field):
    from monitor.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        load_policy(raw)
    assert exc.value.field == field
