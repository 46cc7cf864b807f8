"""The desk queue's filters (department, overdue, mine, scope next to status and priority, paged in the
database with a count that agrees), internal notes that customers never read, rule 14's misuse mark, and what
monitoring sees of a ticket's service."""

from datetime import UTC, timedelta

import pytest
from desk_world import make_world, set_monitor_state, technical_draft, tehran
from sqlalchemy import select

from incidents.models import Incident
from monitor.errors import AccessDenied
from tickets import desk
from tickets.errors import Refusal
from tickets.fines import violations_of
from tickets.intake import open_ticket
from tickets.models import Ticket, Violation
from tickets.monitoring import watch_of
from tickets.packages import set_scope

NOW = tehran(2026, 11, 25, 10, 0)  # Wednesday, office hours: due in 1 h


async def _open(sm, who, draft, minutes=0):
    return await open_ticket(sm, who, draft, now=NOW + timedelta(minutes=minutes))


async def test_each_queue_filter_narrows_it_and_the_count_agrees(sessionmaker):
    w = await make_world(sessionmaker)
    tech = await _open(sessionmaker, w.a, technical_draft(w.service_a))
    sales = await _open(sessionmaker, w.b, {"department": "sales", "subject": "خرید سرور",
                                            "body": "یک سرور مجازی می‌خواهم"}, 5)
    late = await _open(sessionmaker, w.b, technical_draft(w.service_b, subject="کندی پایگاه داده"), -180)  # 07:00: due 10:00
    await desk.assign(sessionmaker, w.noc, sales.id, w.noc.user_id)
    await set_scope(sessionmaker, w.noc, tech.id, "out", today=NOW.date())
    await set_scope(sessionmaker, w.noc, late.id, "in", today=NOW.date())

    async def ids(**f):
        rows = await desk.queue(sessionmaker, w.noc, desk.QueueFilter(**f), now=NOW + timedelta(minutes=10))
        count = await desk.queue_count(sessionmaker, w.noc, desk.QueueFilter(**f), now=NOW + timedelta(minutes=10))
        assert count == len(rows), f
        return [t.id for t in rows]

    assert await ids() == [late.id, tech.id, sales.id]
    assert await ids(department="sales") == [sales.id]
    assert await ids(department="technical") == [late.id, tech.id]
    assert await ids(department="nothing") == []
    assert await ids(overdue=True) == [late.id]  # unanswered past its due time
    assert await ids(mine=True) == [sales.id]
    assert await ids(scope="out") == [tech.id]
    assert await ids(scope="in") == [late.id]
    assert await ids(scope="undecided") == [sales.id]
    assert await ids(department="technical", scope="in", overdue=True) == [late.id]
    # An answer stops the clock: the ticket is no longer overdue.
    await desk.answer(sessionmaker, w.noc, late.id, "در حال بررسی هستیم", now=NOW)
    assert await ids(overdue=True) == []
    # Paged in the database: the same order, a page at a time.
    page = await desk.queue(sessionmaker, w.noc, now=NOW, limit=2, offset=1)
    assert [t.id for t in page] == [sales.id, late.id]
    with pytest.raises(ValueError):
        await desk.queue(sessionmaker, w.noc, desk.QueueFilter(overdue=True))
    with pytest.raises(AccessDenied):
        await desk.queue_count(sessionmaker, w.a)


async def test_an_internal_note_is_staff_only_and_is_not_an_answer(sessionmaker):
    w = await make_world(sessionmaker)
    ticket = await _open(sessionmaker, w.a, technical_draft(w.service_a))
    note = await desk.add_note(sessionmaker, w.noc, ticket.id, "  customer called twice; check the disk  ",
                               now=NOW + timedelta(minutes=5))
    assert (note.author_kind, note.body) == (desk.INTERNAL, "customer called twice; check the disk")
    _t, staff_view = await desk.get_ticket(sessionmaker, w.noc, ticket.id, now=NOW)
    stored, customer_view = await desk.get_ticket(sessionmaker, w.a, ticket.id, now=NOW)
    assert [m.id for m in staff_view] == [note.id] and customer_view == []
    assert (stored.status, stored.first_response_at) == ("open", None)  # the clock keeps running
    for body, code in (("   ", "empty_note"), ("x" * 5001, "note_too_long")):
        with pytest.raises(Refusal) as caught:
            await desk.add_note(sessionmaker, w.noc, ticket.id, body, now=NOW)
        assert caught.value.code == code and caught.value.draft["body"] == body
    with pytest.raises(AccessDenied):
        await desk.add_note(sessionmaker, w.a, ticket.id, "یادداشت", now=NOW)


async def test_marking_urgent_misuse_flags_the_ticket_and_records_rule_14_once(sessionmaker):
    w = await make_world(sessionmaker)
    urgent = await _open(sessionmaker, w.a, technical_draft(w.service_a, priority="urgent"))
    normal = await _open(sessionmaker, w.b, technical_draft(w.service_b, priority="normal"))
    v = await desk.mark_urgent_misuse(sessionmaker, w.noc, urgent.id, note="", now=NOW)
    async with sessionmaker() as s:
        assert (await s.get(Ticket, urgent.id)).priority_flag == "urgent_but_service_up"
    assert [(x.id, x.rule, x.note) for x in await violations_of(sessionmaker, w.noc, urgent.id)] == \
        [(v.id, 14, "urgent_but_service_up")]
    for ticket_id, code in ((urgent.id, "already_marked"), (normal.id, "not_urgent")):
        with pytest.raises(Refusal) as caught:
            await desk.mark_urgent_misuse(sessionmaker, w.noc, ticket_id, note="سرویس برقرار بود", now=NOW)
        assert caught.value.code == code and caught.value.draft["note"] == "سرویس برقرار بود"
    async with sessionmaker() as s:
        assert len((await s.execute(select(Violation))).all()) == 1
    with pytest.raises(AccessDenied):
        await desk.mark_urgent_misuse(sessionmaker, w.a, urgent.id, now=NOW)


async def test_watch_shows_the_services_monitors_worst_first_and_its_open_incident(sessionmaker):
    w = await make_world(sessionmaker)
    ticket = await _open(sessionmaker, w.a, technical_draft(w.service_a))
    empty = await watch_of(sessionmaker, w.noc, service_id=w.service_a, incident_id=None)
    assert (empty.monitors, empty.incident) == ((), None)
    await set_monitor_state(sessionmaker, service_id=w.service_a, state="UP", name="acme-http")
    await set_monitor_state(sessionmaker, server_id=w.server_a, state="DOWN", name="acme-ping")
    await set_monitor_state(sessionmaker, service_id=w.service_b, state="DOWN", name="beta-http")
    async with sessionmaker.begin() as s:
        old = Incident(dedup_key="k1", source="monitor", severity="urgent", status="resolved", title="قدیمی",
                       service_id=w.service_a, opened_at=NOW - timedelta(days=2),
                       resolved_at=NOW - timedelta(days=1))
        live = Incident(dedup_key="k2", open_key="k2", source="monitor", severity="urgent", status="triggered",
                        title="قطعی وب", service_id=w.service_a, opened_at=NOW.astimezone(UTC))
        s.add_all([old, live])
    watch = await watch_of(sessionmaker, w.noc, service_id=ticket.service_id, incident_id=None)
    assert [(m.name, m.state) for m in watch.monitors] == [("acme-ping", "DOWN"), ("acme-http", "UP")]
    assert watch.incident.id == live.id and watch.incident.status == "triggered"
    own = await watch_of(sessionmaker, w.noc, service_id=ticket.service_id, incident_id=old.id)
    assert own.incident.id == old.id  # the ticket's own incident, even resolved
    assert (await watch_of(sessionmaker, w.noc, service_id=w.service_a, incident_id=None, limit=1)).more_monitors == 1
    with pytest.raises(AccessDenied):
        await watch_of(sessionmaker, w.a, service_id=w.service_a, incident_id=None)
