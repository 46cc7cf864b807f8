"""Intake: rules 1, 3, 12, 13, 14, 16 and 19 as a customer meets them; every refusal keeps the draft."""

from datetime import timedelta

import pytest
from desk_world import make_world, set_monitor_state, technical_draft, tehran
from sqlalchemy import func, select

from monitor.models import State
from tickets import kb
from tickets.desk import close
from tickets.errors import Refusal
from tickets.intake import check_draft, open_ticket
from tickets.models import Ticket
from tickets.persian import fa_digits

NOW = tehran(2026, 11, 25, 10, 0)


async def _count(sm) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(Ticket))).scalar_one()


async def _refused(sm, principal, draft, code, field=None):
    with pytest.raises(Refusal) as caught:
        await open_ticket(sm, principal, draft, now=NOW)
    r = caught.value
    assert r.code == code and (field is None or r.field == field)
    assert r.draft == draft, "the customer's draft comes back untouched"
    assert r.payload()["message"] and r.payload()["draft"] == draft
    assert await _count(sm) == 0, "nothing half-written is stored"
    return r


async def test_a_verified_owner_opens_a_ticket_with_arabic_keyboard_text_normalised(sessionmaker):
    world = await make_world(sessionmaker)
    draft = technical_draft(world.service_a, body="سرور من كار نمي كند از ساعت ١٠", shown_article_ids=[])
    ticket = await open_ticket(sessionmaker, world.a, draft, now=NOW)
    async with sessionmaker() as s:
        stored = await s.get(Ticket, ticket.id)
    assert stored.body == "سرور من کار نمی کند از ساعت ۱۰"
    assert stored.fields == {"server_address": "192.0.2.10", "started_at": "امروز ساعت ۸ صبح"}
    assert (stored.customer_id, stored.status, stored.source) == (world.customer_a, "open", "customer")


@pytest.mark.parametrize("who, service, code, field", [
    ("c", "service_c", "customer_not_verified", None),        # rule 3: unverified owner
    ("a", "service_b", "service_not_owned", "service_id"),    # rule 3: someone else's service
    ("a", 999999, "service_not_owned", "service_id"),         # a service that does not exist: same answer
])
async def test_only_a_verified_owner_may_open_a_ticket_about_a_service(sessionmaker, who, service, code, field):
    world = await make_world(sessionmaker)
    service_id = getattr(world, service) if isinstance(service, str) else service
    await _refused(sessionmaker, getattr(world, who), technical_draft(service_id), code, field)


@pytest.mark.parametrize("department, drop, missing", [
    ("technical", ("server_address",), ["server_address"]),
    ("technical", ("service_id", "started_at"), ["service_id", "started_at"]),
    ("technical", ("body",), ["description"]),
    ("financial", ("invoice_number",), ["invoice_number"]),
    ("sales", ("subject",), ["subject"]),
])
async def test_intake_lists_exactly_the_missing_fields(sessionmaker, department, drop, missing):
    world = await make_world(sessionmaker)
    draft = technical_draft(world.service_a, department=department, invoice_number="۱۲۳۴")
    for name in drop:
        draft.pop(name)
    r = await _refused(sessionmaker, world.a, draft, "missing_fields", missing[0])
    assert r.extra["missing"] == missing


@pytest.mark.parametrize("field, text, code", [
    ("body", "salam server man ghat shode", "text_finglish"),
    ("body", "الخادم لا يعمل منذ الصباح", "text_arabic"),
    ("subject", "server down", "text_finglish"),
])
async def test_intake_refuses_text_that_is_not_persian(sessionmaker, field, text, code):
    world = await make_world(sessionmaker)
    await _refused(sessionmaker, world.a, technical_draft(world.service_a, **{field: text}), code, field)


async def test_persian_with_a_pasted_english_log_is_accepted(sessionmaker):
    world = await make_world(sessionmaker)
    body = ("سایت از صبح خطا می‌دهد:\n```\n2026-11-25 09:58:01 [error] connect() failed (111: Connection refused)"
            "\n```\nPHP Fatal error: Allowed memory size exhausted in /var/www/index.php on line 12")
    ticket = await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, body=body), now=NOW)
    assert ticket.body == body


@pytest.mark.parametrize("department, asked, got", [
    ("financial", "urgent", "normal"), ("sales", "important", "normal"), ("technical", "urgent", "urgent"),
])
async def test_financial_and_sales_tickets_are_normal(sessionmaker, department, asked, got):
    world = await make_world(sessionmaker)
    draft = technical_draft(world.service_a, department=department, priority=asked, invoice_number="۵۵")
    ticket = await open_ticket(sessionmaker, world.a, draft, now=NOW)
    assert (ticket.priority, ticket.requested_priority) == (got, asked)


@pytest.mark.parametrize("states, incident, flagged", [
    ([State.UP, State.UP], False, True),     # monitoring sees it up: flag for staff
    ([State.UP, State.DOWN], False, False),  # something is down: the customer is right
    ([State.UP], True, False),               # an open incident: not misuse
    ([], False, False),                      # no monitor: monitoring cannot contradict
])
async def test_an_urgent_ticket_for_a_service_monitoring_sees_up_is_flagged(sessionmaker, states, incident,
                                                                             flagged):
    world = await make_world(sessionmaker)
    for i, state in enumerate(states):
        kw = {"service_id": world.service_a} if i == 0 else {"server_id": world.server_a}
        await set_monitor_state(sessionmaker, state=state, name=f"m{i}", **kw)

    async def has_open_incident(session, service_id):
        return incident and service_id == world.service_a

    ticket = await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, priority="urgent"),
                               now=NOW, has_open_incident=has_open_incident)
    assert (ticket.priority_flag == "urgent_but_service_up") is flagged
    assert ticket.priority == "urgent"


async def test_an_unpaid_fine_past_due_suspends_support_except_financial_and_paying_lifts_it(sessionmaker):
    from tickets.fines import mark_fine_paid, post_fine

    world = await make_world(sessionmaker)
    first = await open_ticket(sessionmaker, world.a, technical_draft(world.service_a), now=NOW)
    fine = await post_fine(sessionmaker, world.finance, first.id, amount_rials=5_000_000,
                           due_at=NOW + timedelta(days=7), now=NOW)
    ssl = {"subject": "گواهی امنیتی", "body": "گواهی SSL دامنه منقضی شده و مرورگر هشدار می‌دهد"}
    before_due = await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, **ssl),
                                   now=NOW + timedelta(days=6))
    assert before_due.id
    late = NOW + timedelta(days=8)
    disk = technical_draft(world.service_a, subject="دیسک پر", body="فضای دیسک سرور تمام شده است")
    with pytest.raises(Refusal) as caught:
        await open_ticket(sessionmaker, world.a, disk, now=late)
    assert (caught.value.code, caught.value.extra["fine_id"]) == ("support_suspended", fine.id)
    assert caught.value.draft == disk
    pay = {"department": "financial", "subject": "پرداخت جریمه", "body": "می‌خواهم جریمه را پرداخت کنم",
           "invoice_number": "۷۷۸"}
    assert (await open_ticket(sessionmaker, world.a, pay, now=late)).department == "financial"
    await open_ticket(sessionmaker, world.b, technical_draft(world.service_b), now=late)  # B is not fined
    await mark_fine_paid(sessionmaker, world.finance, fine.id, now=late)
    assert (await open_ticket(sessionmaker, world.a, disk, now=late)).id


PARAPHRASES = [
    ("قطعی سرور", "سرور من از صبح قطع است و سایت بالا نمی‌آید",
     "سرورم قطع شده", "از امروز صبح سرورم قطع شده و سایتم باز نمی‌شود"),
    ("سایت کند است", "سرعت بارگذاری سایت خیلی پایین آمده و صفحه‌ها دیر باز می‌شوند",
     "کندی سایت", "صفحه‌های سایت خیلی دیر بارگذاری می‌شوند و سرعت سایت پایین است"),
    ("ایمیل ارسال نمی‌شود", "ایمیل‌های سرور ارسال نمی‌شوند و در صف می‌مانند",
     "مشکل ارسال ایمیل", "سرور ایمیل‌ها را ارسال نمی‌کند و همه در صف مانده‌اند"),
    ("قطعی سرور", "سرور من از صبح قطع است و سایت بالا نمی‌آید",  # Arabic keyboard
     "قطعي سرور", "سرور من از صبح قطع است و سايت بالا نمي آيد"),
]
DIFFERENT = [
    ("قطعی سرور", "سرور من از صبح قطع است و سایت بالا نمی‌آید",
     "گواهی SSL", "گواهی امنیتی دامنه منقضی شده و مرورگر هشدار می‌دهد"),
    ("قطعی سرور", "سرور من از صبح قطع است و سایت بالا نمی‌آید",
     "ایمیل ارسال نمی‌شود", "ایمیل‌های سرور ارسال نمی‌شوند و در صف می‌مانند"),
    ("سایت کند است", "سرعت بارگذاری سایت خیلی پایین آمده و صفحه‌ها دیر باز می‌شوند",
     "دیسک پر شده", "فضای دیسک سرور تمام شده و پایگاه داده خطا می‌دهد"),
]


@pytest.mark.parametrize("s1, b1, s2, b2", PARAPHRASES, ids=["outage", "slow", "mail", "arabic-keyboard"])
async def test_a_paraphrase_of_an_open_ticket_is_refused_as_a_duplicate(sessionmaker, s1, b1, s2, b2):
    world = await make_world(sessionmaker)
    first = await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, subject=s1, body=b1),
                              now=NOW)
    with pytest.raises(Refusal) as caught:
        await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, subject=s2, body=b2), now=NOW)
    assert (caught.value.code, caught.value.extra["duplicate_of"]) == ("duplicate", first.id)
    assert f"شمارهٔ {fa_digits(first.id)}" in caught.value.message


@pytest.mark.parametrize("s1, b1, s2, b2", DIFFERENT, ids=["outage-vs-ssl", "outage-vs-mail", "slow-vs-disk"])
async def test_a_different_request_about_the_same_service_is_not_a_duplicate(sessionmaker, s1, b1, s2, b2):
    world = await make_world(sessionmaker)
    await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, subject=s1, body=b1), now=NOW)
    await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, subject=s2, body=b2), now=NOW)
    assert await _count(sessionmaker) == 2


@pytest.mark.parametrize("change", ["closed", "other_department", "other_customer"])
async def test_the_same_text_is_no_duplicate_once_closed_or_elsewhere(sessionmaker, change):
    world = await make_world(sessionmaker)
    who, draft = world.a, technical_draft(world.service_a)
    first = await open_ticket(sessionmaker, who, draft, now=NOW)
    if change == "closed":
        await close(sessionmaker, world.a, first.id, now=NOW)
    elif change == "other_department":
        draft = draft | {"department": "sales"}
    else:
        who, draft = world.b, technical_draft(world.service_b)
    assert (await open_ticket(sessionmaker, who, draft, now=NOW)).id != first.id


async def test_intake_suggests_articles_and_the_ticket_records_which_were_shown(sessionmaker):
    world = await make_world(sessionmaker)
    outage = await kb.create_article(sessionmaker, world.noc, title="وقتی سرور قطع است چه کنیم",
                                     body="اگر سرور قطع شد ابتدا وضعیت شبکه را بررسی کنید", now=NOW)
    await kb.create_article(sessionmaker, world.noc, title="پرداخت فاکتور",
                            body="برای پرداخت فاکتور به بخش مالی بروید", now=NOW)
    draft = technical_draft(world.service_a, body="سرورم قطع شده", server_address="")
    checked = await check_draft(sessionmaker, world.a, draft, now=NOW)
    assert [a["id"] for a in checked["articles"]] == [outage.id]
    assert checked["missing"] == ["server_address"] and checked["problems"] == []
    shown = [a["id"] for a in checked["articles"]]
    ticket = await open_ticket(sessionmaker, world.a, draft | {"server_address": "192.0.2.10",
                                                               "shown_article_ids": shown}, now=NOW)
    assert ticket.shown_article_ids == [outage.id]


async def test_check_draft_reports_text_problems_without_storing(sessionmaker):
    world = await make_world(sessionmaker)
    checked = await check_draft(sessionmaker, world.a, technical_draft(world.service_a, body="server ghat ast"),
                                now=NOW)
    assert [p["error"] for p in checked["problems"]] == ["text_finglish"]
    assert await _count(sessionmaker) == 0
