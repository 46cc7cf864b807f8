"""The desk's work on tickets: no reopening, answers and the queue, closing, priority decisions, scope and
packages, violations, the audit log, and the monitoring entry points."""

from datetime import date, timedelta

import pytest
from desk_world import make_world, technical_draft, tehran
from sqlalchemy import select

from monitor.errors import AccessDenied, NotFound
from tickets import audit, desk
from tickets.errors import Refusal, TicketClosed
from tickets.fines import post_fine, record_violation
from tickets.intake import open_ticket
from tickets.models import AuditEntry, Fine, Ticket, TicketMessage, Violation
from tickets.monitoring import close_monitoring_ticket, open_monitoring_ticket
from tickets.packages import record_package, set_scope

NOW = tehran(2026, 11, 25, 10, 0)


async def _ticket(sm, world, **over):
    return await open_ticket(sm, world.a, technical_draft(world.service_a, **over), now=NOW)


@pytest.mark.parametrize("how", ["closed", "closed_without_answer"])
async def test_a_closed_ticket_takes_no_new_message_and_points_to_a_new_ticket(sessionmaker, how):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world)
    if how == "closed":
        await desk.close(sessionmaker, world.a, ticket.id, now=NOW)
    else:
        await desk.close_without_answer(sessionmaker, world.noc, ticket.id, reason="incomplete_information",
                                        now=NOW)
    for who in (world.a, world.noc):
        with pytest.raises(TicketClosed) as caught:
            await desk.add_message(sessionmaker, who, ticket.id, "هنوز مشکل دارم", now=NOW)
        assert caught.value.extra["open_new_with"] == {"references_ticket_id": ticket.id}
        assert caught.value.draft["body"] == "هنوز مشکل دارم"
    async with sessionmaker() as s:
        assert (await s.execute(select(TicketMessage))).first() is None
        assert (await s.get(Ticket, ticket.id)).status == how
    again = await _ticket(sessionmaker, world, references_ticket_id=ticket.id)
    assert again.references_ticket_id == ticket.id


async def test_a_customer_cannot_reference_or_touch_another_customers_ticket(sessionmaker):
    world = await make_world(sessionmaker)
    theirs = await open_ticket(sessionmaker, world.b, technical_draft(world.service_b), now=NOW)
    with pytest.raises(Refusal) as caught:
        await _ticket(sessionmaker, world, references_ticket_id=theirs.id)
    assert caught.value.code == "reference_not_found"
    for call in (desk.get_ticket(sessionmaker, world.a, theirs.id, now=NOW),
                 desk.add_message(sessionmaker, world.a, theirs.id, "سلام", now=NOW),
                 desk.close(sessionmaker, world.a, theirs.id, now=NOW)):
        with pytest.raises(NotFound):
            await call
    assert [t.id for t in await desk.list_tickets(sessionmaker, world.a, now=NOW)] == []


async def test_the_first_staff_answer_stops_the_clock_and_a_late_one_is_a_breach(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world)
    await desk.answer(sessionmaker, world.noc, ticket.id, "در حال بررسی هستیم", now=NOW + timedelta(minutes=70))
    await desk.add_message(sessionmaker, world.a, ticket.id, "ممنون، منتظرم", now=NOW + timedelta(minutes=80))
    await desk.answer(sessionmaker, world.noc, ticket.id, "حل شد", now=NOW + timedelta(minutes=90),
                      waiting_on_customer=True)
    stored, messages = await desk.get_ticket(sessionmaker, world.a, ticket.id, now=NOW)
    assert stored.first_response_at == NOW + timedelta(minutes=70)
    assert desk.ticket_json(stored, NOW + timedelta(hours=5))["breached"] is True
    assert [m.author_kind for m in messages] == ["staff", "customer", "staff"]
    assert stored.status == "waiting_on_customer"


async def test_the_staff_queue_is_ordered_by_due_time(sessionmaker):
    world = await make_world(sessionmaker)
    evening = await open_ticket(sessionmaker, world.a, technical_draft(world.service_a),
                                now=tehran(2026, 11, 24, 20, 0))   # due 23:00
    office = await open_ticket(sessionmaker, world.b, technical_draft(world.service_b),
                               now=tehran(2026, 11, 24, 16, 30))  # due 17:30
    sales = await open_ticket(sessionmaker, world.a, {"department": "sales", "subject": "خرید سرور",
                                                      "body": "یک سرور مجازی می‌خواهم"},
                              now=tehran(2026, 11, 24, 21, 0))    # due 00:00
    answered = await open_ticket(sessionmaker, world.b, {"department": "sales", "subject": "تمدید",
                                                         "body": "تمدید سرویس چگونه است"},
                                 now=tehran(2026, 11, 24, 9, 0))
    await desk.answer(sessionmaker, world.noc, answered.id, "پاسخ", now=tehran(2026, 11, 24, 9, 10))
    assert [t.id for t in await desk.queue(sessionmaker, world.noc)] == [office.id, evening.id, sales.id,
                                                                         answered.id]
    with pytest.raises(AccessDenied):
        await desk.queue(sessionmaker, world.a)


async def test_staff_lower_a_flagged_priority_but_never_raise_it(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world, priority="important")
    lowered = await desk.lower_priority(sessionmaker, world.noc, ticket.id, "normal")
    assert (lowered.priority, lowered.priority_flag) == ("normal", None)
    with pytest.raises(Refusal):
        await desk.lower_priority(sessionmaker, world.noc, ticket.id, "urgent")
    with pytest.raises(AccessDenied):
        await desk.lower_priority(sessionmaker, world.a, ticket.id, "normal")


async def test_a_ticket_is_assigned_only_to_active_staff(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world)
    assert (await desk.assign(sessionmaker, world.noc, ticket.id, world.admin.user_id)).assignee_id == world.admin.user_id
    for bad in (world.a.user_id, 999999):
        with pytest.raises(Refusal) as caught:
            await desk.assign(sessionmaker, world.noc, ticket.id, bad)
        assert caught.value.code == "invalid_assignee"
    assert (await desk.assign(sessionmaker, world.noc, ticket.id, None)).assignee_id is None
    with pytest.raises(AccessDenied):
        await desk.assign(sessionmaker, world.a, ticket.id, world.noc.user_id)


async def test_staff_close_without_answer_for_incomplete_information(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world)
    closed = await desk.close_without_answer(sessionmaker, world.noc, ticket.id, reason="incomplete_information",
                                             now=NOW)
    assert (closed.status, closed.close_reason, closed.first_response_at) == (
        "closed_without_answer", "incomplete_information", None)
    with pytest.raises(AccessDenied):
        await desk.close_without_answer(sessionmaker, world.a, ticket.id, reason="duplicate", now=NOW)


async def test_out_of_scope_offers_paid_work_or_a_package_and_attaches_the_active_one(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world, body="وردپرس سایت من خطا می‌دهد")
    offer = await set_scope(sessionmaker, world.noc, ticket.id, "out", today=date(2026, 11, 25))
    assert offer["offers"] == ["paid_work", "management", "troubleshooting"] and offer["package_id"] is None
    package = await record_package(sessionmaker, world.noc, customer_id=world.customer_a, kind="management",
                                   starts_on=date(2026, 11, 1), ends_on=date(2027, 10, 31), now=NOW)
    async with sessionmaker() as s:  # rule 9: buying a package opens no ticket
        assert len((await s.execute(select(Ticket))).all()) == 1
    offer = await set_scope(sessionmaker, world.noc, ticket.id, "out", today=date(2026, 11, 25))
    assert offer["package_id"] == package.id
    assert await set_scope(sessionmaker, world.noc, ticket.id, "in", today=date(2026, 11, 25)) == {"scope": "in"}


async def test_staff_record_a_violation_and_finance_posts_an_integer_fine(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world)
    violation = await record_violation(sessionmaker, world.noc, ticket.id, rule=16, note="تیکت تکراری", now=NOW)
    with pytest.raises(Refusal):
        await record_violation(sessionmaker, world.noc, ticket.id, rule=42, now=NOW)
    for bad in (0, -5, 10.5):
        with pytest.raises(Refusal):
            await post_fine(sessionmaker, world.finance, ticket.id, amount_rials=bad, due_at=NOW, now=NOW)
    with pytest.raises(AccessDenied):
        await post_fine(sessionmaker, world.noc, ticket.id, amount_rials=1, due_at=NOW, now=NOW)
    await post_fine(sessionmaker, world.finance, ticket.id, amount_rials=12_345_678_901, due_at=NOW,
                    violation_id=violation.id, now=NOW)
    async with sessionmaker() as s:
        fine = (await s.execute(select(Fine))).scalar_one()
        assert (fine.amount_rials, fine.customer_id) == (12_345_678_901, world.customer_a)
        assert (await s.execute(select(Violation.rule))).scalar_one() == 16


async def test_staff_reads_and_exports_are_audited_and_customer_reads_are_not(sessionmaker):
    world = await make_world(sessionmaker)
    ticket = await _ticket(sessionmaker, world)
    await desk.get_ticket(sessionmaker, world.a, ticket.id, now=NOW)
    await desk.get_ticket(sessionmaker, world.noc, ticket.id, now=NOW + timedelta(minutes=1))
    await desk.list_tickets(sessionmaker, world.noc, customer_id=world.customer_a, now=NOW + timedelta(minutes=2))
    entries = await audit.list_entries(sessionmaker, world.admin, customer_id=world.customer_a)
    assert [(e.action, e.user_id) for e in entries] == [("export_tickets", world.noc.user_id),
                                                        ("read_ticket", world.noc.user_id)]


@pytest.mark.parametrize("letter, code", [("", "letter_reference_required"), ("   ", "letter_reference_required")])
async def test_a_disclosure_without_a_judicial_letter_is_refused(sessionmaker, letter, code):
    world = await make_world(sessionmaker)
    with pytest.raises(Refusal) as caught:
        await audit.disclose(sessionmaker, world.admin, customer_id=world.customer_a, recipient="دادسرا",
                             letter_reference=letter, subject="tickets", now=NOW)
    assert caught.value.code == code and caught.value.draft["recipient"] == "دادسرا"
    async with sessionmaker() as s:
        assert (await s.execute(select(AuditEntry))).first() is None


async def test_a_disclosure_with_a_letter_is_recorded(sessionmaker):
    world = await make_world(sessionmaker)
    await audit.disclose(sessionmaker, world.admin, customer_id=world.customer_a, recipient="دادسرای تهران",
                         letter_reference="۱۲۳/ق/۱۴۰۵", subject="tickets", now=NOW)
    [entry] = await audit.list_entries(sessionmaker, world.admin)
    assert (entry.action, entry.letter_reference, entry.customer_id) == ("disclosure", "۱۲۳/ق/۱۴۰۵",
                                                                          world.customer_a)
    with pytest.raises(AccessDenied):
        await audit.disclose(sessionmaker, world.noc, customer_id=world.customer_a, recipient="x",
                             letter_reference="1", subject="", now=NOW)


async def test_monitoring_opens_and_closes_one_ticket_per_incident(sessionmaker):
    world = await make_world(sessionmaker)
    evening = tehran(2026, 11, 25, 20, 0)
    async with sessionmaker.begin() as s:
        first = await open_monitoring_ticket(s, service_id=world.service_a, priority="urgent",
                                             subject="Server down", body="ICMP timeout", incident_id=7,
                                             now=evening)
        again = await open_monitoring_ticket(s, service_id=world.service_a, priority="urgent",
                                             subject="Server down", body="ICMP timeout", incident_id=7,
                                             now=evening + timedelta(minutes=1))
    assert first.id == again.id
    assert (first.customer_id, first.source, first.first_response_due) == (
        world.customer_a, "monitoring", evening + timedelta(hours=3))
    async with sessionmaker.begin() as s:
        closed = await close_monitoring_ticket(s, incident_id=7, body="resolved", now=evening + timedelta(hours=1))
        assert await close_monitoring_ticket(s, incident_id=7, body="resolved", now=evening) is closed
        assert await close_monitoring_ticket(s, incident_id=8, body="x", now=evening) is None
    async with sessionmaker() as s:
        assert (await s.get(Ticket, first.id)).status == "closed"
        assert len((await s.execute(select(TicketMessage))).all()) == 1
        # and a later incident on the same service opens a new ticket: the closed one is never reopened
        new = await open_monitoring_ticket(s, service_id=world.service_a, priority="important", subject="s",
                                           body="b", incident_id=9, now=evening)
        assert new.id != first.id
