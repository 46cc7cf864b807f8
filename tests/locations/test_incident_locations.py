"""The incident engine names the locations of a voted monitor's failure (``failing_locations`` rows, as the
runner writes them) on its open incident: once each, never on an incident recovering or resolved, never by
opening or reopening one. Both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from incidents.engine import EngineConfig, IncidentEngine
from incidents.models import Audience, ChannelKind, IncidentEvent, Status
from monitor.models import FailingLocation
from tests.incident_support import add, channel, flip, incidents, notices, server_with_monitor


def _row(mid, since, location, at, confirmed=False) -> FailingLocation:
    return FailingLocation(monitor_id=mid, since=since, location=location, state="DOWN", at=at,
                           confirmed=confirmed, message="refused")


async def _events(sessionmaker, kind: str) -> list[str]:
    async with sessionmaker() as s:
        return list((await s.execute(select(IncidentEvent.text).where(IncidentEvent.kind == kind)
                                     .order_by(IncidentEvent.id))).scalars())


async def test_a_location_joining_is_named_once_and_a_late_one_reopens_nothing(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")
    await channel(sessionmaker, "noc", Audience.NOC)
    await channel(sessionmaker, "noc-sms", Audience.NOC, kind=ChannelKind.SMS, address="+989120000000")
    eng = IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=60))
    since = clock.now()
    await flip(sessionmaker, mon.id, since, "UP", "DOWN")
    await add(sessionmaker, _row(mon.id, since, "east", since, True), _row(mon.id, since, "west", since, True))
    await eng.process_pending()
    (inc,) = await incidents(sessionmaker)
    assert inc.locations == ["east", "west"] and await _events(sessionmaker, "location") == []
    # The third joins; a second node writing the same location for a later state of the same outage (or a
    # repeat) names nothing more.
    clock.advance(30)
    await add(sessionmaker, _row(mon.id, since, "north", clock.now()))
    await eng.process_pending()
    later = since + timedelta(seconds=45)
    await add(sessionmaker, _row(mon.id, later, "north", later), _row(mon.id, later, "east", later))
    clock.advance(30)
    await eng.process_pending()
    (inc,) = await incidents(sessionmaker)
    assert inc.locations == ["east", "west", "north"]
    assert await _events(sessionmaker, "location") == ["north: refused"]
    # The NOC reads of it (the webhook) but is not paged again (the SMS channel heard only the opening).
    assert [(n.kind, n.channel_id) for n in await notices(sessionmaker)] == [
        ("opened", 1), ("opened", 2), ("location-3", 1)]
    # Recovering: a location seen failing now changes nothing; resolved: nothing opens again.
    clock.advance(30)
    await flip(sessionmaker, mon.id, clock.now(), "DOWN", "UP")
    await eng.process_pending()
    other = await server_with_monitor(sessionmaker, "web-2")
    await add(sessionmaker, _row(mon.id, since, "south", clock.now()))
    await eng.process_pending()
    clock.advance(120)
    await eng.one_pass()
    await add(sessionmaker, _row(mon.id, since, "south-2", clock.now()), _row(other.id, clock.now(), "east",
                                                                                clock.now()))
    await eng.process_pending()
    (inc,) = await incidents(sessionmaker)
    assert inc.status == Status.RESOLVED and inc.locations == ["east", "west", "north"]
    async with sessionmaker() as s:
        assert (await s.execute(select(FailingLocation).where(FailingLocation.processed_at.is_(None)))).all() == []


async def test_a_location_row_waits_for_its_monitors_queued_flip(sessionmaker, clock):
    """Written after the flip but taken first (another process, a flip that failed once): it must not be
    consumed before the flip opens the incident that names it."""
    mon = await server_with_monitor(sessionmaker, "web-1")
    eng = IncidentEngine(sessionmaker, clock)
    since = clock.now()
    await flip(sessionmaker, mon.id, since, "UP", "DOWN")
    (row,) = await add(sessionmaker, _row(mon.id, since, "north", since))
    assert await eng.process_location(row.id) is False
    await eng.process_pending()
    (inc,) = await incidents(sessionmaker)
    assert inc.locations == ["north"]
