"""Subscribers hear of planned maintenance (rule 18) through the outbox and a real SMTP server on loopback, on
SQLite and PostgreSQL: once when it is planned, once when it starts, once when it ends, per subscriber, however
often or concurrently the sweep runs; in Persian, with the other ways to reach support, and never the window's
internal or English title."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from incidents.dispatcher import Dispatcher
from incidents.metrics import IncidentMetrics
from incidents.models import Notification
from incidents.notifiers import EmailNotifier
from incidents.statuspage.maintenance_notices import MaintenanceNotices, announce_maintenance_due, due_events
from incidents.statuspage.subscriptions import confirm, subscribe_email
from monitor.maintenance import WindowSpec, create_window
from monitor.models import Customer, Monitor, Server, Service
from tests.channel_servers import smtp_mailbox

LATIN = re.compile(r"[A-Za-z]{2,}")
URL = re.compile(r"https?://\S+")
CONFIG = MaintenanceNotices(channels=(("تلفن اضطراری", "021-88001122"), ("تلگرام", "@negahban_support")))


class World:
    def __init__(self, sm, clock, mailbox, dispatcher, ids) -> None:
        self.sm, self.clock, self.mailbox, self.dispatcher, self.ids = sm, clock, mailbox, dispatcher, ids
        self.tokens = iter(f"token-{i:02d}-" + "x" * 30 for i in range(100))

    async def subscriber(self, address: str, confirmed: bool = True) -> None:
        token = next(self.tokens)
        await subscribe_email(self.sm, address, "http://status.test", self.clock.now(), new_token=lambda: token)
        if confirmed:
            assert (await confirm(self.sm, token, self.clock.now())).state == "active"

    async def sweep(self) -> int:
        return await announce_maintenance_due(self.sm, self.clock.now(), CONFIG)

    async def deliver(self) -> list:
        before = len(self.mailbox.messages)
        for _ in range(10):
            if not await self.dispatcher.dispatch_due():
                break
        return self.mailbox.messages[before:]


@pytest.fixture
async def world(sessionmaker, clock):
    async with sessionmaker() as s, s.begin():
        customer = Customer(name="cust-kavir", display_name="شرکت کویر")
        s.add(customer)
        await s.flush()
        public = Service(name="svc-kavir-portal", display_name="پرتال کویر", customer_id=customer.id,
                         public_status=True)
        hidden = Service(name="svc-kavir-intranet", display_name="اینترانت", customer_id=customer.id)
        s.add_all([public, hidden])
        await s.flush()
        server = Server(name="db-1.kavir.internal", address="127.0.0.1", service_id=public.id)
        s.add(server)
        await s.flush()
        on_public = Monitor(name="kavir-portal-http", kind="http", target="http://127.0.0.1:9/",
                            service_id=public.id, server_id=server.id)
        on_hidden = Monitor(name="kavir-intranet-http", kind="http", target="http://127.0.0.1:9/",
                            service_id=hidden.id)
        s.add_all([on_public, on_hidden])
        await s.flush()
        ids = {"server": server.id, "public": on_public.id, "hidden": on_hidden.id}
    with smtp_mailbox() as (mailbox, port):
        dispatcher = Dispatcher(sessionmaker, clock, {"email": EmailNotifier("127.0.0.1", port,
                                                                             "status@negahban.test")},
                                metrics=IncidentMetrics(CollectorRegistry()))
        yield World(sessionmaker, clock, mailbox, dispatcher, ids)


def _text(mail) -> str:
    return mail.get_content() if not mail.is_multipart() else mail.get_body(("plain",)).get_content()


async def test_a_subscriber_hears_once_of_the_plan_the_start_and_the_end_in_persian(world):
    await world.subscriber("ali@example.com")
    await world.subscriber("pending@example.com", confirmed=False)
    assert len(await world.deliver()) == 2  # the two confirmation mails
    start = world.clock.now() + timedelta(days=2)
    await create_window(world.sm, starts_at=start, ends_at=start + timedelta(hours=2), now=world.clock.now(),
                        title="DB upgrade on db-1.kavir.internal", server_id=world.ids["server"])

    # The sweep as the worker runs it: again and again, and two at once (two nodes).
    assert await world.sweep() == 1
    assert await world.sweep() == 0
    assert sum(await asyncio.gather(world.sweep(), world.sweep())) == 0
    world.clock.advance(hours=5)  # later sweeps before it starts: still nothing new
    assert await world.sweep() == 0
    mails = await world.deliver()
    assert [to for to, _m in mails] == [["ali@example.com"]]
    planned = mails[0][1]
    assert str(planned["Subject"]) == "نگهداری برنامه‌ریزی‌شده: پرتال کویر"
    body = _text(planned)
    assert "نگهداری برنامه‌ریزی‌شده روی پرتال کویر از" in body
    assert "تلفن اضطراری: ۰۲۱-۸۸۰۰۱۱۲۲" in body and "تلگرام: @negahban_support" in body
    assert planned["List-Unsubscribe"].startswith("<http://status.test/status/unsubscribe/")
    for _to, mail in mails:
        shown = URL.sub("", str(mail["Subject"]) + _text(mail)).replace("@negahban_support", "")
        assert not LATIN.search(shown), shown
        assert "db-1" not in shown and "kavir" not in shown

    world.clock.advance(days=2, hours=-5, minutes=1)
    assert await world.sweep() == 1
    world.clock.advance(minutes=30)
    assert await world.sweep() == 0
    (started,) = [m for _to, m in await world.deliver()]
    assert str(started["Subject"]) == "آغاز نگهداری: پرتال کویر"
    assert "تلفن اضطراری" in _text(started)

    world.clock.advance(hours=2)
    assert sum(await asyncio.gather(world.sweep(), world.sweep())) == 1
    (ended,) = [m for _to, m in await world.deliver()]
    assert str(ended["Subject"]) == "پایان نگهداری: پرتال کویر"
    world.clock.advance(hours=1)
    assert await world.sweep() == 0
    assert await world.deliver() == []
    async with world.sm() as s:
        kinds = sorted((await s.execute(select(Notification.kind).where(
            Notification.kind.like("maintenance.%")))).scalars())
    assert kinds == ["maintenance.ended", "maintenance.scheduled", "maintenance.starting"]


async def test_maintenance_of_a_service_not_on_the_status_page_is_not_announced(world):
    await world.subscriber("ali@example.com")
    await world.deliver()
    start = world.clock.now() + timedelta(hours=3)
    await create_window(world.sm, starts_at=start, ends_at=start + timedelta(hours=1), now=world.clock.now(),
                        title="ارتقای اینترانت", monitor_id=world.ids["hidden"])
    assert await world.sweep() == 0
    world.clock.advance(hours=3, minutes=5)
    assert await world.sweep() == 0
    assert await world.deliver() == []


async def test_a_persian_title_is_told_as_written_and_a_later_subscriber_hears_no_old_end(world):
    await world.subscriber("early@example.com")
    start = world.clock.now() + timedelta(hours=1)
    await create_window(world.sm, starts_at=start, ends_at=start + timedelta(hours=1), now=world.clock.now(),
                        title="ارتقای پایگاه داده", monitor_id=world.ids["public"])
    world.clock.advance(hours=1, minutes=1)  # the sweep first runs once it has started: no plan to tell
    assert await world.sweep() == 1
    (started,) = [m for _to, m in await world.deliver() if "آغاز" in str(m["Subject"])]
    assert "ارتقای پایگاه داده روی پرتال کویر آغاز شد" in _text(started)
    world.clock.advance(hours=1)
    await world.subscriber("late@example.com")
    assert await world.sweep() == 1  # the end, to the early subscriber only
    ended = [(to, m) for to, m in await world.deliver() if "پایان" in str(m["Subject"])]
    assert [to for to, _m in ended] == [["early@example.com"]]


def _spec(**kw) -> WindowSpec:
    from datetime import UTC, datetime
    base = {"id": 1, "scope": ("monitor", 1), "starts_at": datetime(2026, 12, 5, 22, 30, tzinfo=UTC),
            "ends_at": None}
    return WindowSpec(**{**base, **kw})


@pytest.mark.parametrize(("hours_from_start", "expected"), [
    (-24 * 15, []),  # beyond the horizon
    (-24 * 13, ["scheduled"]),
    (-1, ["scheduled"]),
    (0, ["starting"]),
    (1.5, ["starting"]),
    (2, ["ended"]),
    (7.9, ["ended"]),
    (8.1, []),  # past the grace
])
def test_a_one_off_windows_due_event_follows_the_clock(hours_from_start, expected):
    w = _spec(ends_at=_spec().starts_at + timedelta(hours=2))
    now = w.starts_at + timedelta(hours=hours_from_start)
    assert [k for k, _s, _e in due_events(w, now, MaintenanceNotices())] == expected


def test_a_weekly_window_announces_each_occurrence_with_its_whole_times():
    w = _spec(rrule="FREQ=WEEKLY", duration_s=3600, ends_at=None)
    now = w.starts_at + timedelta(days=7, minutes=30)  # the second occurrence is under way
    events = due_events(w, now, MaintenanceNotices())
    assert [(k, s - w.starts_at) for k, s, _e in events] == [
        ("starting", timedelta(days=7)), ("scheduled", timedelta(days=14)), ("scheduled", timedelta(days=21))]
    assert all(e - s == timedelta(hours=1) for _k, s, e in events)
