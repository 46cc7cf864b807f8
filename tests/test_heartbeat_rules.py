"""The heartbeat's pure rules (pings, silence, our own downtime), the token bucket, and the inventory's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.web.ratelimit import Buckets, Rate, take
from monitor.errors import InventoryErrors
from monitor.heartbeat import Ping, PingState, Signal, deadline, on_ping, silence, worth_applying
from monitor.inventory import parse_inventory
from monitor.models import State
from probes import HeartbeatSpec, Outcome

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SPEC = HeartbeatSpec(period_s=3600, grace_s=300, max_run_s=900)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# (ping state, now, heard since, expected outcome or None, reason)
SILENCE = [
    (PingState(), at(10**6), at(0), None, None),  # never pinged: no deadline
    (PingState(finished_at=at(0)), at(3900), at(0), None, None),  # exactly at period + grace
    (PingState(finished_at=at(0)), at(3901), at(0), Outcome.DOWN, "heartbeat_late"),
    (PingState(started_at=at(0)), at(3901), at(0), Outcome.DOWN, "heartbeat_late"),  # only ever started
    (PingState(finished_at=at(0), started_at=at(3000)), at(3901), at(0), Outcome.DOWN, "heartbeat_late"),
    (PingState(finished_at=at(0), started_at=at(1000)), at(1901), at(0), Outcome.DEGRADED, "heartbeat_slow"),
    (PingState(finished_at=at(0), started_at=at(1000)), at(1900), at(0), None, None),
    # our own downtime: the deadline (3900) fell before we listened again (at 7200): one more period
    (PingState(finished_at=at(0)), at(7200 + 3900), at(7200), None, None),
    (PingState(finished_at=at(0)), at(7200 + 3901), at(7200), Outcome.DOWN, "heartbeat_late"),
    # a deadline after we came back is not moved
    (PingState(finished_at=at(0)), at(3901), at(3500), Outcome.DOWN, "heartbeat_late"),
    # a run begun before we listened is not judged by its length (its finish may be the ping we missed)
    (PingState(finished_at=at(0), started_at=at(100)), at(1500), at(200), None, None),
]


@pytest.mark.parametrize("state, now, heard, outcome, reason", SILENCE)
def test_silence(state, now, heard, outcome, reason):
    result = silence(SPEC, state, now, heard)
    assert (result.outcome if result else None, result.reason if result else None) == (outcome, reason)


def test_the_deadline_moves_a_period_past_our_return_only_when_it_fell_while_we_were_away():
    s = PingState(finished_at=at(0))
    assert deadline(SPEC, s, at(0)) == at(3900)
    assert deadline(SPEC, s, at(3500)) == at(3900)  # back 400 s before it: the job can still be heard
    assert deadline(SPEC, s, at(3700)) == at(3700 + 3900)


# (signal, exit code, started s before the finish, outcome, reason)
PINGS = [
    (Signal.SUCCESS, None, None, Outcome.UP, "ok"),
    (Signal.SUCCESS, 0, 100, Outcome.UP, "ok"),
    (Signal.SUCCESS, 0, 901, Outcome.DEGRADED, "heartbeat_slow"),
    (Signal.FAIL, None, None, Outcome.DOWN, "heartbeat_failed"),
    (Signal.FAIL, 2, 10, Outcome.DOWN, "heartbeat_failed"),
    (Signal.FAIL, 1, 5000, Outcome.DOWN, "heartbeat_failed"),  # a failure beats slowness
]


@pytest.mark.parametrize("signal, code, run, outcome, reason", PINGS)
def test_a_finish(signal, code, run, outcome, reason):
    before = PingState(started_at=at(1000 - run)) if run is not None else PingState()
    after, result = on_ping(SPEC, before, Ping(signal, at(1000), code, "log"))
    assert (result.outcome, result.reason) == (outcome, reason)
    assert after.finished_at == at(1000) and after.started_at is None
    assert result.phases.get("run") == run and result.details.get("run_s") == run


def test_a_start_opens_a_run_and_gives_no_result():
    after, result = on_ping(SPEC, PingState(finished_at=at(0)), Ping(Signal.START, at(50)))
    assert result is None and after.started_at == at(50) and after.finished_at == at(0)


@pytest.mark.parametrize("outcome, state, applied", [
    (Outcome.DOWN, State.UP, True), (Outcome.DOWN, State.DEGRADED, True), (Outcome.DOWN, State.DOWN, False),
    (Outcome.DOWN, State.UNREACHABLE, False), (Outcome.DOWN, State.MAINTENANCE, True),
    (Outcome.DEGRADED, State.UP, True), (Outcome.DEGRADED, State.DEGRADED, False),
    (Outcome.DEGRADED, State.DOWN, False), (Outcome.DEGRADED, State.UNKNOWN, True),
])
def test_a_sweep_sends_a_verdict_only_where_it_can_change_something(outcome, state, applied):
    from probes import ProbeResult

    assert worth_applying(ProbeResult(outcome), state) is applied


def test_a_token_bucket_allows_its_burst_then_refills_at_its_rate():
    rate = Rate(burst=2, per_s=0.5)
    level, wait = take(2.0, 0.0, 0.0, rate)
    level, wait = take(level, 0.0, 0.0, rate)
    assert wait == 0
    _, wait = take(level, 0.0, 0.0, rate)
    assert wait == pytest.approx(2.0)
    level, wait = take(level, 0.0, 2.0, rate)
    assert wait == 0 and level == pytest.approx(0.0)


def test_the_table_of_buckets_stays_bounded_under_made_up_keys():
    buckets = Buckets(Rate(burst=1, per_s=1 / 60), max_keys=1000)
    assert buckets.take("real", 0.0) == 0
    for i in range(5000):
        buckets.take(f"made-up-{i}", 1.0)
    assert len(buckets) <= 1000
    assert buckets.take("made-up-4999", 1.0) == 60  # a recent key is still limited


@pytest.mark.parametrize("fields, path, reason", [
    ("interval: 60, period_s: 600", "monitors[0].interval", "period_s"),
    ("grace_s: 60", "monitors[0].period_s", "Field required"),
    ("period_s: 600, grace_s: 60, max_run_s: 900", "monitors[0]", "max_run_s must not exceed"),
    ("period_s: 30", "monitors[0].period_s", "greater than or equal to 60"),
    ("period_s: 600, token_sha256: abc", "monitors[0].token_sha256", "pattern"),
])
def test_a_bad_heartbeat_entry_is_an_error_naming_the_field(fields, path, reason):
    with pytest.raises(InventoryErrors) as exc:
        parse_inventory(f"monitors: [{{name: job, kind: heartbeat, {fields}}}]", "inv.yaml")
    assert any(e.path == path and reason in e.reason for e in exc.value.errors), exc.value


def test_two_monitors_with_one_token_digest_are_refused():
    digest = "ab" * 32
    text = ("monitors:\n"
            f"  - {{name: a, kind: heartbeat, period_s: 600, token_sha256: {digest}}}\n"
            f"  - {{name: b, kind: heartbeat, period_s: 600, token_sha256: {digest}}}\n")
    with pytest.raises(InventoryErrors) as exc:
        parse_inventory(text, "inv.yaml")
    assert [(e.line, e.path) for e in exc.value.errors] == [(3, "monitors[1].token_sha256")]
