"""Uptime from flips, time-weighted, with maintenance left out, over ranges that cut intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.maintenance import create_window
from monitor.models import Customer, Flip, Monitor, Server, Service, State
from monitor.uptime import monitor_uptime, uptime_from

T0 = datetime(2026, 3, 1, tzinfo=UTC)
U, G, D, R, M = State.UP, State.DEGRADED, State.DOWN, State.UNREACHABLE, State.MAINTENANCE


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# Flips: UP at 0h, DOWN at 10h, UP at 12h, DEGRADED at 20h, UP at 21h.
FLIPS = [(h(0), U), (h(10), D), (h(12), U), (h(20), G), (h(21), U)]


def initial_at(start):
    before = [s for at, s in FLIPS if at < start]
    return before[-1] if before else State.UNKNOWN


@pytest.mark.parametrize("start, end, windows, up, down, degraded, maint, ratio", [
    # the whole day: 2 h down of 24
    (h(0), h(24), [], 21, 2, 1, 0, 22 / 24),
    # a range that cuts the outage in half
    (h(11), h(13), [], 1, 1, 0, 0, 0.5),
    # a range starting before the monitor existed: the unknown time counts for nothing
    (h(-48), h(11), [], 10, 1, 0, 0, 10 / 11),
    # maintenance over the outage: left out of both sides
    (h(0), h(24), [(h(9), h(13))], 19, 0, 1, 4, 1.0),
    # maintenance overlapping half the outage and the range's start
    (h(11), h(14), [(h(10), h(11.5))], 2, 0.5, 0, 0.5, 0.8),
    # the range ends in the future: only the past counts (now = 24h)
    (h(20), h(100), [], 3, 0, 1, 0, 1.0),
    # nothing known at all
    (h(-10), h(-5), [], 0, 0, 0, 0, None),
])
def test_uptime_over_tricky_ranges(start, end, windows, up, down, degraded, maint, ratio):
    result = uptime_from(initial_at(start), FLIPS, windows, start, end, now=h(24))
    assert result.seconds["UP"] == pytest.approx(up * 3600)
    assert result.seconds["DOWN"] == pytest.approx(down * 3600)
    assert result.seconds["DEGRADED"] == pytest.approx(degraded * 3600)
    assert result.seconds["MAINTENANCE"] == pytest.approx(maint * 3600)
    assert result.ratio == (pytest.approx(ratio) if ratio is not None else None)


def test_unreachable_time_is_unavailable_and_maintenance_state_is_left_out():
    flips = [(h(0), U), (h(1), R), (h(2), M), (h(3), U)]
    result = uptime_from(State.UNKNOWN, flips, [], h(0), h(4), now=h(4))
    assert result.seconds["UNREACHABLE"] == 3600 and result.seconds["MAINTENANCE"] == 3600
    assert result.ratio == pytest.approx(2 / 3)


# A switch in front of the monitor was confirmed DOWN 6h-8h; its own flips: UP at 0h, UNREACHABLE at 6.5h, UP
# at 8.5h (its own checks confirm later than the switch's do).
OWN = [(h(0), U), (h(6.5), R), (h(8.5), U)]


@pytest.mark.parametrize("flips, windows, cut, now, up, unreachable, maint", [
    # the switch's confirmed outage and the monitor's own UNREACHABLE time, counted once: 6h-8.5h
    (OWN, [], [(h(6), h(8))], h(24), 21.5, 2.5, 0),
    # without a cut-off, today's figure: only the monitor's own 2h
    (OWN, [], [], h(24), 22, 2, 0),
    # maintenance still comes first: 5h-7h is left out of both sides
    (OWN, [(h(5), h(7))], [(h(6), h(8))], h(24), 20.5, 1.5, 2),
    # the MAINTENANCE state is left out too, cut off or not
    ([(h(0), U), (h(6), M), (h(8), U)], [], [(h(6), h(8))], h(24), 22, 0, 2),
    # before its first check the monitor was not there: the cut-off counts for nothing then
    ([(h(7), U)], [], [(h(6), h(8))], h(24), 16, 1, 0),
    # DOWN inside the cut-off is unavailable once, not twice
    ([(h(0), U), (h(6), D), (h(8), U)], [], [(h(6), h(8))], h(24), 22, 0, 0),
    # the future has not happened: an outage still going at now counts up to now
    (OWN[:2], [], [(h(6), h(30))], h(12), 6, 6, 0),
])
def test_time_cut_off_by_a_parents_outage_is_unreachable(flips, windows, cut, now, up, unreachable, maint):
    result = uptime_from(State.UNKNOWN, flips, windows, h(0), h(24), now=now, cut_off=cut)
    assert result.seconds["UP"] == pytest.approx(up * 3600)
    assert result.seconds["UNREACHABLE"] == pytest.approx(unreachable * 3600)
    assert result.seconds["MAINTENANCE"] == pytest.approx(maint * 3600)


async def _inventory(sessionmaker):
    async with sessionmaker() as s, s.begin():
        cust = Customer(name="acme")
        s.add(cust)
        await s.flush()
        svc = Service(name="acme-web", customer_id=cust.id)
        s.add(svc)
        await s.flush()
        srv = Server(name="web1", address="127.0.0.1", service_id=svc.id)
        s.add(srv)
        await s.flush()
        mon = Monitor(name="web1-http", kind="http", target="http://127.0.0.1/", server_id=srv.id)
        s.add(mon)
        await s.flush()
        for at, st in FLIPS:
            s.add(Flip(monitor_id=mon.id, at=at, old_state="?", new_state=st.value))
        return cust.id, mon.id


async def test_uptime_reads_flips_and_recurring_customer_maintenance(sessionmaker):
    customer_id, monitor_id = await _inventory(sessionmaker)
    # every day 10:00-11:00 UTC (the window's own zone is UTC here) for the customer
    await create_window(sessionmaker, starts_at=h(-24 + 10), rrule="FREQ=DAILY", duration_s=3600,
                        timezone="UTC", customer_id=customer_id, now=h(-48))
    result = await monitor_uptime(sessionmaker, monitor_id, h(0), h(24), now=h(24))
    assert result.seconds["MAINTENANCE"] == 3600
    assert result.seconds["DOWN"] == 3600
    assert result.ratio == pytest.approx(22 / 23)


async def test_a_tehran_weekly_window_keeps_its_wall_clock_time(sessionmaker):
    _, monitor_id = await _inventory(sessionmaker)
    # Sunday 1 March 2026 03:30 Tehran (+03:30) = 00:00 UTC; weekly on Sundays for 2 h
    start = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    await create_window(sessionmaker, starts_at=start, rrule="FREQ=WEEKLY;BYDAY=SU", duration_s=7200,
                        monitor_id=monitor_id, now=h(-48))
    week = await monitor_uptime(sessionmaker, monitor_id, h(0), h(24 * 14), now=h(24 * 14))
    assert week.seconds["MAINTENANCE"] == 2 * 7200


@pytest.mark.parametrize("kwargs, field", [
    ({"starts_at": h(0), "ends_at": h(-1), "monitor_id": 1}, "ends_at"),
    ({"starts_at": h(0), "rrule": "FREQ=WEEKLY", "monitor_id": 1}, "duration_s"),
    ({"starts_at": h(0), "rrule": "FREQ=SOMETIMES", "duration_s": 60, "monitor_id": 1}, "rrule"),
    ({"starts_at": h(0), "ends_at": h(1)}, "scope"),
    ({"starts_at": h(0), "ends_at": h(1), "monitor_id": 1, "server_id": 2}, "scope"),
    ({"starts_at": h(0), "ends_at": h(1), "monitor_id": 1, "timezone": "Mars/Base"}, "timezone"),
])
async def test_a_bad_window_is_refused_naming_the_field(sessionmaker, kwargs, field):
    from monitor.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        await create_window(sessionmaker, now=h(0), **kwargs)
    assert exc.value.field == field


async def test_the_incident_engines_maintenance_hook_sees_customer_windows(sessionmaker):
    from monitor.maintenance import in_maintenance

    customer_id, monitor_id = await _inventory(sessionmaker)
    await create_window(sessionmaker, starts_at=h(1), ends_at=h(2), customer_id=customer_id, now=h(0))
    async with sessionmaker() as s:
        assert await in_maintenance(s, monitor_id, h(1.5))
        assert not await in_maintenance(s, monitor_id, h(2.5))
