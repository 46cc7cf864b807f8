"""Acknowledgement, assignment, notes, manual resolution, escalation and who may see what."""

from __future__ import annotations

import pytest

from incidents.engine import IncidentEngine
from incidents.errors import IncidentClosed, IncidentNotFound
from incidents.escalation import escalate_due, set_policy, steps_due
from incidents.lifecycle import acknowledge, add_note, assign, get_incident, list_incidents, resolve
from incidents.models import Audience, Status
from monitor.accounts import Principal, Role, create_user
from monitor.errors import AccessDenied, InvalidInput
from monitor.models import Service
from tests.incident_support import channel, flip, incidents, notices, server_with_monitor


async def one_incident(sessionmaker, clock, name="web-1", state="DOWN"):
    mon = await server_with_monitor(sessionmaker, name)
    await flip(sessionmaker, mon.id, clock.now(), "UP", state)
    await IncidentEngine(sessionmaker, clock).process_pending()
    async with sessionmaker() as s:
        customer_id = (await s.get(Service, mon.service_id)).customer_id
    return (await incidents(sessionmaker))[-1], customer_id


async def user(sessionmaker, name, role, customer_id=None) -> Principal:
    async with sessionmaker() as s, s.begin():
        u = await create_user(s, name, role, customer_id=customer_id)
    return Principal(u.id, u.username, Role(role), customer_id)


async def test_acknowledge_records_who_and_when_and_is_idempotent(sessionmaker, clock):
    inc, _ = await one_incident(sessionmaker, clock)
    noc = await user(sessionmaker, "ali", Role.NOC)
    first = clock.advance(90)
    await acknowledge(sessionmaker, noc, inc.id, first)
    await acknowledge(sessionmaker, noc, inc.id, clock.advance(30))
    (inc,) = await incidents(sessionmaker)
    assert (inc.status, inc.acknowledged_by, inc.acknowledged_at) == (Status.ACKNOWLEDGED, noc.user_id, first)
    view = await get_incident(sessionmaker, noc, inc.id)
    assert [e.kind for e in view.events] == ["opened", "acknowledged"]


async def test_assignment_goes_to_a_noc_engineer_only(sessionmaker, clock):
    inc, cust = await one_incident(sessionmaker, clock)
    noc = await user(sessionmaker, "ali", Role.NOC)
    finance = await user(sessionmaker, "sara", Role.FINANCE)
    await assign(sessionmaker, noc, inc.id, noc.user_id, clock.now())
    assert (await incidents(sessionmaker))[0].assigned_to == noc.user_id
    with pytest.raises(InvalidInput, match="user_id"):
        await assign(sessionmaker, noc, inc.id, finance.user_id, clock.now())
    with pytest.raises(AccessDenied):
        await assign(sessionmaker, finance, inc.id, noc.user_id, clock.now())


async def test_notes_build_the_timeline_and_an_empty_note_is_refused(sessionmaker, clock):
    inc, _ = await one_incident(sessionmaker, clock)
    noc = await user(sessionmaker, "ali", Role.NOC)
    await add_note(sessionmaker, noc, inc.id, "power cycled the switch", clock.advance(60))
    with pytest.raises(InvalidInput, match="text"):
        await add_note(sessionmaker, noc, inc.id, "  ", clock.now())
    view = await get_incident(sessionmaker, noc, inc.id)
    assert [(e.kind, e.text) for e in view.events][-1] == ("note", "power cycled the switch")


async def test_a_resolved_incident_cannot_be_acknowledged_or_resolved_again(sessionmaker, clock):
    inc, _ = await one_incident(sessionmaker, clock)
    noc = await user(sessionmaker, "ali", Role.NOC)
    await resolve(sessionmaker, noc, inc.id, clock.advance(300), "fixed by hand")
    (inc,) = await incidents(sessionmaker)
    assert (inc.status, inc.duration_s, inc.resolution) == (Status.RESOLVED, 300, "manual")
    with pytest.raises(IncidentClosed):
        await acknowledge(sessionmaker, noc, inc.id, clock.now())
    with pytest.raises(IncidentClosed):
        await resolve(sessionmaker, noc, inc.id, clock.now())


async def test_a_customer_sees_only_incidents_affecting_it_and_no_staff_timeline(sessionmaker, clock):
    mine, my_customer = await one_incident(sessionmaker, clock, "mine")
    theirs, _ = await one_incident(sessionmaker, clock, "theirs")
    me = await user(sessionmaker, "cust", Role.CUSTOMER, customer_id=my_customer)
    assert [i.id for i in await list_incidents(sessionmaker, me)] == [mine.id]
    view = await get_incident(sessionmaker, me, mine.id)
    assert view.events == [] and len(view.affected) == 1
    with pytest.raises(IncidentNotFound):
        await get_incident(sessionmaker, me, theirs.id)
    with pytest.raises(AccessDenied):
        await acknowledge(sessionmaker, me, mine.id, clock.now())


@pytest.mark.parametrize(("elapsed", "level", "expected"), [
    (0, 0, 0), (299, 0, 0), (300, 0, 1), (900, 0, 2), (5000, 0, 3), (900, 2, 2), (5000, 3, 3),
])
def test_steps_due_by_elapsed_time(clock, elapsed, level, expected):
    from datetime import timedelta
    opened = clock.now()
    assert steps_due(opened, level, [300, 900, 1800], opened + timedelta(seconds=elapsed)) == expected


async def test_an_unacknowledged_urgent_incident_escalates_to_the_next_contact_in_order(sessionmaker, clock):
    first = await channel(sessionmaker, "oncall-1", Audience.ESCALATION)
    second = await channel(sessionmaker, "oncall-2", Audience.ESCALATION)
    await set_policy(sessionmaker, "noc", [(300, first.id), (900, second.id)])
    inc, _ = await one_incident(sessionmaker, clock)
    assert await escalate_due(sessionmaker, "noc", clock.advance(299)) == 0
    assert await escalate_due(sessionmaker, "noc", clock.advance(1)) == 1
    assert await escalate_due(sessionmaker, "noc", clock.now()) == 0  # idempotent
    assert await escalate_due(sessionmaker, "noc", clock.advance(600)) == 1
    sent = [(n.kind, n.channel_id) for n in await notices(sessionmaker)]
    assert sent == [("escalation-1", first.id), ("escalation-2", second.id)]


async def test_acknowledged_and_important_incidents_do_not_escalate(sessionmaker, clock):
    oncall = await channel(sessionmaker, "oncall-1", Audience.ESCALATION)
    await set_policy(sessionmaker, "noc", [(60, oncall.id)])
    acked, _ = await one_incident(sessionmaker, clock, "a")
    await one_incident(sessionmaker, clock, "b", state="DEGRADED")
    await acknowledge(sessionmaker, await user(sessionmaker, "ali", Role.NOC), acked.id, clock.now())
    assert await escalate_due(sessionmaker, "noc", clock.advance(3600)) == 0


async def test_a_policy_with_decreasing_delays_is_refused(sessionmaker):
    with pytest.raises(InvalidInput, match="steps"):
        await set_policy(sessionmaker, "bad", [(600, 1), (300, 2)])
