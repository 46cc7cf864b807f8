"""Rules 2 and 17: the office calendar, first-response bands at their edges, stored in UTC."""

from datetime import UTC, date, timedelta

import pytest
from desk_world import make_world, technical_draft, tehran
from sqlalchemy import select

from tickets import calendar_admin
from tickets.calendar import (
    OfficeCalendar,
    is_office_hours,
    load_calendar,
    phone_support_open,
    seeded_holidays,
)
from tickets.errors import Refusal
from tickets.intake import open_ticket
from tickets.models import Ticket
from tickets.sla import SlaTargets, first_response_due

SEEDED = OfficeCalendar(holidays=seeded_holidays([1405, 1406]))
H1, H3 = timedelta(hours=1), timedelta(hours=3)


def test_seeded_holidays_have_persian_names_and_cover_the_jalali_years():
    days = seeded_holidays([1405, 1406])
    assert "نوروز" in days[date(2027, 3, 21)]  # 1 Farvardin 1406
    assert days[date(2026, 12, 23)] and all(ord(days[d][0]) > 0x600 for d in days)
    assert min(days) >= date(2026, 3, 21) and max(days) < date(2028, 3, 20)


@pytest.mark.parametrize("when, target", [
    (tehran(2026, 11, 25, 16, 59), H1),  # Wednesday 16:59
    (tehran(2026, 11, 25, 17, 0), H3),   # Wednesday 17:00
    (tehran(2026, 11, 26, 10, 0), H3),   # Thursday
    (tehran(2026, 11, 27, 10, 0), H3),   # Friday
    (tehran(2026, 11, 28, 8, 59), H3),   # Saturday 08:59
    (tehran(2026, 11, 28, 9, 0), H1),    # Saturday 09:00
    (tehran(2027, 3, 21, 10, 0), H3),    # 1 Farvardin 1406 (a Sunday)
    (tehran(2026, 12, 23, 10, 0), H3),   # a seeded holiday on a Wednesday
])
def test_first_response_band_is_chosen_by_the_opening_moment(when, target):
    band, due = first_response_due(when, SEEDED)
    assert due == when + target and due.tzinfo is UTC
    assert band == ("office" if target == H1 else "outside")


def test_targets_are_configurable():
    targets = SlaTargets(office=timedelta(minutes=30), outside=timedelta(hours=4))
    when = tehran(2026, 11, 25, 10, 0)
    assert first_response_due(when, SEEDED, targets)[1] == when + timedelta(minutes=30)


@pytest.mark.parametrize("when, open_", [
    (tehran(2026, 11, 25, 9, 0), True), (tehran(2026, 11, 25, 8, 59), False),
    (tehran(2026, 11, 25, 17, 0), False), (tehran(2026, 11, 26, 12, 0), False),
    (tehran(2026, 11, 29, 12, 0), True), (tehran(2027, 3, 22, 12, 0), False),
])
def test_phone_support_follows_office_hours(when, open_):
    assert phone_support_open(when, SEEDED) is open_ is is_office_hours(when, SEEDED)


async def _opened(sm, world, when):
    ticket = await open_ticket(sm, world.a, technical_draft(world.service_a), now=when)
    async with sm() as s:
        return await s.get(Ticket, ticket.id)


@pytest.mark.parametrize("when, target", [
    (tehran(2026, 11, 25, 16, 59), H1), (tehran(2026, 11, 25, 17, 0), H3), (tehran(2026, 11, 26, 10, 0), H3),
    (tehran(2026, 11, 28, 8, 59), H3), (tehran(2026, 11, 28, 9, 0), H1), (tehran(2027, 3, 21, 10, 0), H3),
])
async def test_intake_stores_the_due_time_in_utc(sessionmaker, when, target):
    world = await make_world(sessionmaker)
    ticket = await _opened(sessionmaker, world, when)
    assert ticket.first_response_due == when + target
    assert ticket.first_response_due.utcoffset() == timedelta(0)


async def test_a_closure_an_admin_added_gives_three_hours(sessionmaker):
    world = await make_world(sessionmaker)
    await calendar_admin.add_closure(sessionmaker, world.admin, date(2026, 11, 29), name="تعطیلی اداری",
                                     now=tehran(2026, 11, 20))
    when = tehran(2026, 11, 29, 10, 0)
    assert (await _opened(sessionmaker, world, when)).first_response_due == when + H3


async def test_a_seeded_holiday_an_admin_removed_gives_one_hour(sessionmaker):
    world = await make_world(sessionmaker)
    await calendar_admin.remove_seeded_date(sessionmaker, world.admin, date(2026, 12, 23),
                                            now=tehran(2026, 11, 20))
    when = tehran(2026, 12, 23, 10, 0)
    assert (await _opened(sessionmaker, world, when)).first_response_due == when + H1


async def test_a_calendar_change_recomputes_due_times_of_open_tickets(sessionmaker):
    world = await make_world(sessionmaker)
    when = tehran(2026, 11, 29, 10, 0)
    ticket = await _opened(sessionmaker, world, when)
    assert ticket.first_response_due == when + H1
    changed = await calendar_admin.add_closure(sessionmaker, world.admin, date(2026, 11, 29), name="بستن",
                                               now=when + timedelta(minutes=5))
    async with sessionmaker() as s:
        assert changed == 1 and (await s.get(Ticket, ticket.id)).first_response_due == when + H3
    await calendar_admin.withdraw_change(sessionmaker, world.admin, date(2026, 11, 29), "closure",
                                         now=when + timedelta(minutes=6))
    async with sessionmaker() as s:
        t = (await s.execute(select(Ticket))).scalar_one()
        assert (t.sla_band, t.first_response_due) == ("office", when + H1)


async def test_only_admins_change_the_calendar_and_only_seeded_dates_are_removed(sessionmaker):
    from monitor.errors import AccessDenied

    world = await make_world(sessionmaker)
    with pytest.raises(AccessDenied):
        await calendar_admin.add_closure(sessionmaker, world.noc, date(2026, 11, 29), name="x", now=tehran(2026, 11, 1))
    with pytest.raises(Refusal) as caught:
        await calendar_admin.remove_seeded_date(sessionmaker, world.admin, date(2026, 11, 29),
                                                now=tehran(2026, 11, 1))
    assert caught.value.code == "not_a_seeded_holiday"


def test_customers_read_times_as_jalali_tehran_time_in_persian_digits():
    from tickets.calendar import jalali_text

    assert jalali_text(tehran(2026, 11, 25, 16, 59)) == "۱۴۰۵/۰۹/۰۴ ۱۶:۵۹"
    assert jalali_text(tehran(2027, 3, 21, 0, 0)) == "۱۴۰۶/۰۱/۰۱ ۰۰:۰۰"


async def _closure_days(sm):
    return [(c.day, c.name) for c in await calendar_admin.list_changes(sm) if c.kind == "closure"]


async def test_a_closure_over_a_range_closes_every_day_of_it_for_its_reason(sessionmaker):
    world = await make_world(sessionmaker)
    await calendar_admin.add_closure(sessionmaker, world.admin, date(2026, 11, 29), until=date(2026, 12, 1),
                                     name="  جابه‌جایی دفتر ", now=tehran(2026, 11, 20))
    assert await _closure_days(sessionmaker) == [
        (date(2026, 11, 29), "جابه‌جایی دفتر"), (date(2026, 11, 30), "جابه‌جایی دفتر"),
        (date(2026, 12, 1), "جابه‌جایی دفتر")]
    when = tehran(2026, 11, 30, 10, 0)  # a Monday inside the range
    assert (await _opened(sessionmaker, world, when)).first_response_due == when + H3
    async with sessionmaker() as s:
        calendar = await load_calendar(s, when)
    assert [is_office_hours(tehran(2026, 11, d, 10, 0), calendar) for d in (28, 29, 30)] == [True, False, False]
    assert [is_office_hours(tehran(2026, 12, d, 10, 0), calendar) for d in (1, 2)] == [False, True]


@pytest.mark.parametrize("first, last, reason, code, field", [
    (date(2026, 11, 29), date(2026, 11, 28), "تعطیلی", "closure_ends_before_start", "until"),
    (date(2026, 11, 19), date(2026, 11, 29), "تعطیلی", "closure_in_the_past", "day"),
    (date(2026, 11, 29), date(2026, 11, 29), "   ", "closure_reason_required", "name"),
    (date(2026, 11, 29), date(2026, 11, 29), "ب" * 201, "closure_reason_too_long", "name"),
    (date(2026, 11, 29), date(2026, 12, 30), "تعطیلی", "closure_too_long", "until"),  # 32 days
])
async def test_a_refused_closure_names_its_field_in_persian_and_writes_nothing(sessionmaker, first, last,
                                                                                reason, code, field):
    world = await make_world(sessionmaker)
    with pytest.raises(Refusal) as caught:
        await calendar_admin.add_closure(sessionmaker, world.admin, first, until=last, name=reason,
                                         now=tehran(2026, 11, 20, 23, 59))
    assert (caught.value.code, caught.value.field) == (code, field)
    assert any("\u0600" <= ch <= "\u06ff" for ch in caught.value.message)
    assert await _closure_days(sessionmaker) == []


async def test_today_in_tehran_may_be_closed_even_when_utc_is_still_yesterday(sessionmaker):
    world = await make_world(sessionmaker)
    # 00:10 on 29 November in Tehran is 20:40 on the 28th in UTC.
    await calendar_admin.add_closure(sessionmaker, world.admin, date(2026, 11, 29), name="برق",
                                     now=tehran(2026, 11, 29, 0, 10))
    assert await _closure_days(sessionmaker) == [(date(2026, 11, 29), "برق")]


async def test_the_upcoming_calendar_lists_holidays_closures_and_removed_holidays_from_today(sessionmaker):
    world = await make_world(sessionmaker)
    now = tehran(2026, 11, 20)
    await calendar_admin.add_closure(sessionmaker, world.admin, date(2026, 11, 29), name="برق", now=now)
    await calendar_admin.remove_seeded_date(sessionmaker, world.admin, date(2026, 12, 23), now=now)
    lines = await calendar_admin.upcoming(sessionmaker, date(2026, 11, 20), days=60)
    assert [ln.day for ln in lines] == sorted(ln.day for ln in lines)
    assert all(date(2026, 11, 20) <= ln.day < date(2027, 1, 19) for ln in lines)
    kinds = {ln.day: ln.kind for ln in lines}
    assert kinds[date(2026, 11, 29)] == "closure" and kinds[date(2026, 12, 23)] == "removed"
    assert "holiday" in kinds.values()
    assert not any(ln.day == date(2026, 11, 19) for ln in await calendar_admin.upcoming(
        sessionmaker, date(2026, 11, 20)))
