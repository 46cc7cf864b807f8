"""Queries the location and agent tests share."""

from __future__ import annotations

from sqlalchemy import select

from incidents.models import Incident, IncidentEvent, Notification
from monitor.accounts import Role, create_user, issue_token
from monitor.models import Customer, Flip, Monitor


async def monitor_id(db, name: str) -> int:
    async with db.sessionmaker() as s:
        return (await s.execute(select(Monitor.id).where(Monitor.name == name))).scalar_one()


async def all_incidents(db) -> list[Incident]:
    async with db.sessionmaker() as s:
        return list((await s.execute(select(Incident).order_by(Incident.id))).scalars())


async def flips_of(db, mid: int) -> list[Flip]:
    async with db.sessionmaker() as s:
        return list((await s.execute(select(Flip).where(Flip.monitor_id == mid).order_by(Flip.id))).scalars())


async def incident_story(db, incident_id: int) -> tuple[Incident, list[IncidentEvent], list[Notification]]:
    """An incident with its timeline events and its notices, oldest first."""
    async with db.sessionmaker() as s:
        inc = await s.get(Incident, incident_id)
        events = list((await s.execute(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                       .order_by(IncidentEvent.id))).scalars())
        notes = list((await s.execute(select(Notification).where(Notification.incident_id == incident_id)
                                      .order_by(Notification.id))).scalars())
    return inc, events, notes


async def assert_names_every_location(db, incident_id: int, locations) -> Incident:
    """The incident names each of ``locations`` once: those that confirmed its flip from its opening, each one
    that joined later with one timeline entry and one notice to the NOC (a repeat adds nothing)."""
    inc, events, notes = await incident_story(db, incident_id)
    told = " ".join([inc.summary] + [e.text for e in events])
    assert [loc for loc in locations if loc not in told] == [], told
    assert sorted(inc.locations) == sorted(locations), inc.locations
    joined = [e.text.split(":")[0] for e in events if e.kind == "location"]
    assert joined and joined == inc.locations[len(inc.locations) - len(joined):], (joined, inc.locations)
    later = [n for n in notes if n.kind.startswith("location-")]
    assert [n.body.split("also failing from: ")[1] for n in later] == joined
    assert f"locations: {', '.join(inc.locations)}" in later[-1].body
    assert all(loc in next(n.body for n in notes if n.kind == "opened") for loc in inc.locations[:-len(joined)])
    return inc


async def staff_and_customer_headers(db, customer: str, now) -> tuple[dict, dict]:
    """API headers of a NOC user and of a user of ``customer``."""
    async with db.sessionmaker.begin() as s:
        cid = (await s.execute(select(Customer.id).where(Customer.name == customer))).scalar_one()
        noc = await create_user(s, "nora", Role.NOC, password="nora-pass-1")
        cust = await create_user(s, "cora", Role.CUSTOMER, customer_id=cid)
        return ({"Authorization": f"Bearer {await issue_token(s, noc.id, 't', now)}"},
                {"Authorization": f"Bearer {await issue_token(s, cust.id, 't', now)}"})
