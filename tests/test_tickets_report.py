"""Rule 17: the monthly first-response report equals figures computed by hand."""

from datetime import timedelta

import pytest
from desk_world import make_world, tehran

from monitor.errors import AccessDenied
from tickets import desk
from tickets.monitoring import open_monitoring_ticket
from tickets.reports import monthly_sla_report
from tickets.sla import SlaTargets

# Azar 1405 runs from 2026-11-22 00:00 to 2026-12-22 00:00, Tehran time.
# (opened in Tehran time, minutes to the first staff answer or None)
SEEDED = [
    (tehran(2026, 11, 22, 10, 0), 30),    # office (Sunday)
    (tehran(2026, 11, 23, 11, 0), 50),    # office
    (tehran(2026, 11, 24, 14, 0), 200),   # office, breach
    (tehran(2026, 11, 25, 9, 30), 20),    # office
    (tehran(2026, 11, 22, 0, 0), 60),     # outside: the month's first minute
    (tehran(2026, 11, 26, 10, 0), 100),   # outside (Thursday)
    (tehran(2026, 11, 25, 18, 0), 200),   # outside, breach
    (tehran(2026, 11, 27, 22, 0), None),  # outside, unanswered
    (tehran(2026, 11, 21, 23, 59), 10),   # Aban: not in the report
    (tehran(2026, 12, 22, 0, 0), 10),     # Dey: not in the report
]


async def _seed(sm, world):
    for i, (opened, minutes) in enumerate(SEEDED, start=1):
        async with sm.begin() as s:
            t = await open_monitoring_ticket(s, service_id=world.service_a, priority="important", subject="s",
                                             body="b", incident_id=i, now=opened)
        if minutes is not None:
            await desk.answer(sm, world.noc, t.id, "پاسخ", now=opened + timedelta(minutes=minutes))


async def test_the_monthly_report_equals_hand_computed_figures(sessionmaker):
    world = await make_world(sessionmaker)
    await _seed(sessionmaker, world)
    report = await monthly_sla_report(sessionmaker, world.noc, 1405, 9, now=tehran(2026, 12, 25))
    # office: [20, 30, 50, 200] -> mean 75 > 60; p50 = 2nd of 4 = 30; p90 = ceil(3.6) = 4th = 200
    assert report["office"].as_json() == {
        "band": "office", "target_minutes": 60, "count": 4, "average_minutes": 75, "p50_minutes": 30,
        "p90_minutes": 200, "met_target": False, "breaches": 1, "unanswered": 0}
    # outside: [60, 100, 200] -> mean 120 <= 180; p50 = ceil(1.5) = 2nd = 100; p90 = ceil(2.7) = 3rd = 200
    assert report["outside"].as_json() == {
        "band": "outside", "target_minutes": 180, "count": 3, "average_minutes": 120, "p50_minutes": 100,
        "p90_minutes": 200, "met_target": True, "breaches": 1, "unanswered": 1}


async def test_the_report_follows_configured_targets_and_is_for_staff_only(sessionmaker):
    world = await make_world(sessionmaker)
    await _seed(sessionmaker, world)
    targets = SlaTargets(office=timedelta(minutes=90), outside=timedelta(minutes=100))
    report = await monthly_sla_report(sessionmaker, world.noc, 1405, 9, now=tehran(2026, 12, 25), targets=targets)
    assert (report["office"].met_target, report["outside"].met_target) == (True, False)
    with pytest.raises(AccessDenied):
        await monthly_sla_report(sessionmaker, world.a, 1405, 9, now=tehran(2026, 12, 25))
