"""Notices reach real servers on loopback: SMTP (aiosmtpd), a webhook receiver, an SMS gateway."""

from __future__ import annotations

import socket
from email import message_from_bytes
from email.policy import default as email_policy

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry

from incidents.dispatcher import DispatchConfig, Dispatcher, backoff_s
from incidents.engine import EngineConfig, IncidentEngine
from incidents.metrics import IncidentMetrics
from incidents.models import Audience, ChannelKind, NoticeStatus, NotificationChannel
from incidents.notifiers import EmailNotifier, WebhookNotifier
from incidents.sms import HttpSmsNotifier
from incidents.sms_text import sms_length
from monitor.models import Service
from tests.incident_support import channel, flip, notices, server_with_monitor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=email_policy)))
        return "250 OK"


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


class Receiver:
    """A webhook receiver (and SMS gateway) that answers ``statuses`` in turn, then 200."""

    def __init__(self, statuses=()) -> None:
        self.statuses, self.bodies, self.keys = list(statuses), [], []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.keys.append(request.headers.get("Idempotency-Key"))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200, text="x")


@pytest.fixture
async def http_server():
    runners = []

    async def start(receiver: Receiver) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def open_incident(sessionmaker, clock) -> None:
    mon = await server_with_monitor(sessionmaker, "web-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await IncidentEngine(sessionmaker, clock, EngineConfig()).process_pending()


@pytest.mark.parametrize(("attempts", "expected"), [(1, 5), (2, 10), (3, 20), (6, 160), (12, 900)])
def test_backoff_doubles_up_to_a_cap(attempts, expected):
    assert backoff_s(attempts, 5, 900) == expected


async def test_email_reaches_a_real_smtp_server(sessionmaker, clock, smtp):
    box, port = smtp
    await channel(sessionmaker, "noc-mail", Audience.NOC, kind=ChannelKind.EMAIL, address="noc@example.test")
    await open_incident(sessionmaker, clock)
    dispatcher = Dispatcher(sessionmaker, clock, {"email": EmailNotifier("127.0.0.1", port, "ngb@example.test")})
    assert await dispatcher.dispatch_due() == 1
    ((rcpts, mail),) = box.messages
    assert rcpts == ["noc@example.test"] and "tcp-web-1 down" in mail["Subject"]
    assert [n.status for n in await notices(sessionmaker)] == [NoticeStatus.SENT]


async def test_a_refused_mailbox_disables_the_channel_with_its_reason(sessionmaker, clock, smtp):
    _, port = smtp
    await channel(sessionmaker, "dead", Audience.NOC, kind=ChannelKind.EMAIL, address="nobody@example.test")
    await open_incident(sessionmaker, clock)
    await Dispatcher(sessionmaker, clock, {"email": EmailNotifier("127.0.0.1", port, "n@e.test")}).dispatch_due()
    async with sessionmaker() as s:
        ch = await s.get(NotificationChannel, 1)
    assert not ch.enabled and "550" in ch.disabled_reason and ch.disabled_at == clock.now()
    assert [n.status for n in await notices(sessionmaker)] == [NoticeStatus.FAILED]


async def test_a_webhook_answering_500_is_retried_with_backoff_until_it_succeeds(
        sessionmaker, clock, http_server):
    receiver = Receiver([500, 500])
    url = await http_server(receiver)
    await channel(sessionmaker, "hook", Audience.NOC, address=f"{url}/hook")
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        dispatcher = Dispatcher(sessionmaker, clock, {"webhook": WebhookNotifier(http)},
                                DispatchConfig(base_backoff_s=10))
        assert await dispatcher.dispatch_due() == 1
        assert await dispatcher.dispatch_due() == 0  # not due before its backoff
        clock.advance(10)
        assert await dispatcher.dispatch_due() == 1
        clock.advance(19)
        assert await dispatcher.dispatch_due() == 0
        clock.advance(1)
        assert await dispatcher.dispatch_due() == 1
    (notice,) = await notices(sessionmaker)
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 3)
    assert len(receiver.bodies) == 3 and receiver.bodies[-1]["event"] == "opened"
    assert receiver.bodies[-1]["severity"] == "urgent"
    # Every attempt carries one key, in a header and in the payload, so the receiver can drop repeats.
    assert len(set(receiver.keys)) == 1 and receiver.keys[0] == f"negahban-{notice.dedup_key}"
    assert {b["idempotency_key"] for b in receiver.bodies} == {receiver.keys[0]}


async def test_a_webhook_answering_404_disables_the_channel(sessionmaker, clock, http_server):
    url = await http_server(Receiver([404]))
    await channel(sessionmaker, "hook", Audience.NOC, address=f"{url}/gone")
    await open_incident(sessionmaker, clock)
    registry = CollectorRegistry()
    async with aiohttp.ClientSession() as http:
        dispatcher = Dispatcher(sessionmaker, clock, {"webhook": WebhookNotifier(http)},
                                metrics=IncidentMetrics(registry))
        await dispatcher.dispatch_due()
        await dispatcher.refresh_channel_metrics()
    async with sessionmaker() as s:
        ch = await s.get(NotificationChannel, 1)
    assert not ch.enabled and ch.disabled_reason.startswith("HTTP 404")
    assert registry.get_sample_value("negahban_notification_channel_disabled",
                                     {"channel": "hook", "kind": "webhook"}) == 1
    assert registry.get_sample_value("negahban_notifications_total",
                                     {"kind": "webhook", "outcome": "permanent_failure"}) == 1


async def test_a_retried_notice_gives_up_after_max_attempts(sessionmaker, clock, http_server):
    url = await http_server(Receiver([503] * 10))
    await channel(sessionmaker, "hook", Audience.NOC, address=f"{url}/hook")
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        dispatcher = Dispatcher(sessionmaker, clock, {"webhook": WebhookNotifier(http)},
                                DispatchConfig(max_attempts=3, base_backoff_s=1))
        for _ in range(5):
            await dispatcher.dispatch_due()
            clock.advance(60)
    (notice,) = await notices(sessionmaker)
    assert (notice.status, notice.attempts) == (NoticeStatus.FAILED, 3)


async def test_sms_goes_through_the_configured_http_gateway_in_persian(sessionmaker, clock, http_server):
    receiver = Receiver()
    url = await http_server(receiver)
    mon = await server_with_monitor(sessionmaker, "web-1")
    async with sessionmaker() as s:
        customer_id = (await s.get(Service, mon.service_id)).customer_id
    await channel(sessionmaker, "sms", Audience.CUSTOMER, kind=ChannelKind.SMS, address="09120000000",
                  customer_id=customer_id)
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await IncidentEngine(sessionmaker, clock).process_pending()
    async with aiohttp.ClientSession() as http:
        sms = HttpSmsNotifier(http, f"{url}/send", to_field="receptor", text_field="message", extra={"key": "k"},
                              max_parts=3)
        assert await Dispatcher(sessionmaker, clock, {"sms": sms}).dispatch_due() == 1
    (body,) = receiver.bodies
    assert body["receptor"] == "09120000000" and body["key"] == "k"
    # The full Persian notice takes three UCS-2 parts; its compact form takes one.
    (notice,) = await notices(sessionmaker)
    assert "مشتری گرامی" in notice.body and sms_length(notice.body).parts > 1
    assert body["message"] == notice.data["short"] and sms_length(body["message"]).parts == 1
    assert "سرویس web-1" in body["message"] and "رخداد ۱" in body["message"]
