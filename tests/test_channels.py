"""Every channel against a loopback server that checks the provider's documented request shape
(tests/channel_servers.py), through the real dispatcher: delivered, retried after a 5xx, disabled by a 4xx."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from incidents.dispatcher import DispatchConfig, Dispatcher
from incidents.engine import EngineConfig, IncidentEngine
from incidents.messengers import BaleNotifier, TelegramNotifier
from incidents.metrics import IncidentMetrics
from incidents.models import Audience, ChannelKind, NoticeStatus, NotificationChannel
from incidents.sms import GhasedakNotifier, HttpSmsNotifier, KavenegarNotifier
from incidents.sms_text import sms_length
from monitor.models import Service
from tests.channel_servers import BotApi, Gateway, Ghasedak, Kavenegar, start
from tests.incident_support import channel, flip, notices, server_with_monitor

TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
async def serve():
    runners = []

    async def run(provider) -> str:
        return await start(provider, runners)

    yield run
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def customer_incident(sessionmaker, clock, kind: ChannelKind, address: str) -> None:
    """A customer with a channel of ``kind``, and an incident on its service (its notice is Persian)."""
    mon = await server_with_monitor(sessionmaker, "web-1")
    async with sessionmaker() as s:
        customer_id = (await s.get(Service, mon.service_id)).customer_id
    await channel(sessionmaker, f"cust-{kind}", Audience.CUSTOMER, kind=kind, address=address,
                  customer_id=customer_id)
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await IncidentEngine(sessionmaker, clock, EngineConfig()).process_pending()


async def channel_row(sessionmaker) -> NotificationChannel:
    async with sessionmaker() as s:
        return await s.get(NotificationChannel, 1)


# --- Kavenegar -------------------------------------------------------------------------------------------

async def test_kavenegar_gets_its_documented_send_with_the_persian_notice_in_one_part(
        sessionmaker, clock, serve, http):
    provider = Kavenegar("K-123")
    url = await serve(provider)
    await customer_incident(sessionmaker, clock, ChannelKind.KAVENEGAR, "09121234567")
    notifier = KavenegarNotifier(http, "K-123", sender="10004346", base_url=url)
    assert await Dispatcher(sessionmaker, clock, {"kavenegar": notifier}).dispatch_due() == 1
    assert provider.errors == []
    (req,) = provider.requests
    assert (req["method"], req["key"], req["receptor"], req["sender"]) == ("POST", "K-123", "09121234567", "10004346")
    assert sms_length(req["message"]).parts == 1 and "رخداد ۱" in req["message"]
    assert [n.status for n in await notices(sessionmaker)] == [NoticeStatus.SENT]


async def test_a_bad_kavenegar_key_disables_the_channel_visibly(sessionmaker, clock, serve, http):
    url = await serve(Kavenegar("right-key"))
    await customer_incident(sessionmaker, clock, ChannelKind.KAVENEGAR, "09121234567")
    registry = CollectorRegistry()
    dispatcher = Dispatcher(sessionmaker, clock, {"kavenegar": KavenegarNotifier(http, "wrong-key", base_url=url)},
                            metrics=IncidentMetrics(registry))
    await dispatcher.dispatch_due()
    await dispatcher.refresh_channel_metrics()
    ch = await channel_row(sessionmaker)
    assert not ch.enabled and ch.disabled_reason.startswith("HTTP 401: kavenegar")
    assert "wrong-key" not in ch.disabled_reason  # the key is in the URL path, never in a reason
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.FAILED and notice.last_error.startswith("HTTP 401")
    assert registry.get_sample_value("negahban_notification_channel_disabled",
                                     {"channel": "cust-kavenegar", "kind": "kavenegar"}) == 1
    assert registry.get_sample_value("negahban_notifications_total",
                                     {"kind": "kavenegar", "outcome": "permanent_failure"}) == 1


async def test_a_gateway_echoing_the_key_in_its_error_never_puts_it_in_the_reason(sessionmaker, clock, serve, http):
    url = await serve(Kavenegar("K-123", statuses=[(500, {"error": "upstream failed for /v1/K-123/sms/send.json"})]))
    await customer_incident(sessionmaker, clock, ChannelKind.KAVENEGAR, "09121234567")
    await Dispatcher(sessionmaker, clock, {"kavenegar": KavenegarNotifier(http, "K-123", base_url=url)}).dispatch_due()
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.PENDING and "/v1/<secret>/sms" in notice.last_error
    assert "K-123" not in notice.last_error


# --- Ghasedak --------------------------------------------------------------------------------------------

async def test_ghasedak_gets_its_documented_v2_send_and_is_retried_after_5xx(sessionmaker, clock, serve, http):
    provider = Ghasedak("G-key", statuses=[(503, {"result": {"code": 503}}), (502, {})])
    url = await serve(provider)
    await customer_incident(sessionmaker, clock, ChannelKind.GHASEDAK, "09351234567")
    dispatcher = Dispatcher(sessionmaker, clock, {"ghasedak": GhasedakNotifier(
        http, "G-key", line_number="30005088", base_url=url)}, DispatchConfig(base_backoff_s=10))
    assert await dispatcher.dispatch_due() == 1
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.PENDING and notice.last_error.startswith("HTTP 503")
    assert await dispatcher.dispatch_due() == 0  # waits for its backoff
    clock.advance(10)
    assert await dispatcher.dispatch_due() == 1
    clock.advance(20)
    assert await dispatcher.dispatch_due() == 1
    (notice,) = await notices(sessionmaker)
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 3)
    assert provider.errors == [] and len(provider.requests) == 3
    last = provider.requests[-1]
    assert (last["apikey"], last["receptor"], last["linenumber"]) == ("G-key", "09351234567", "30005088")
    assert sms_length(last["message"]).parts == 1
    assert (await channel_row(sessionmaker)).enabled


async def test_ghasedak_answering_200_with_an_error_code_is_not_taken_for_success(sessionmaker, clock, serve, http):
    url = await serve(Ghasedak("G-key", statuses=[(200, {"result": {"code": 418, "message": "credit"}})]))
    await customer_incident(sessionmaker, clock, ChannelKind.GHASEDAK, "09351234567")
    await Dispatcher(sessionmaker, clock, {"ghasedak": GhasedakNotifier(http, "G-key", base_url=url)}).dispatch_due()
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.FAILED and "418" in notice.last_error


# --- the generic HTTP-SMS template -----------------------------------------------------------------------

@pytest.mark.parametrize(("method", "encoding", "where"), [
    ("POST", "json", "json"), ("POST", "form", "form"), ("GET", "query", "query")])
async def test_the_http_sms_template_sends_its_configured_request(sessionmaker, clock, serve, http,
                                                                  method, encoding, where):
    provider = Gateway()
    url = await serve(provider)
    await customer_incident(sessionmaker, clock, ChannelKind.SMS, "09191234567")
    sms = HttpSmsNotifier(http, f"{url}/send", method=method, encoding=encoding, to_field="mobile",
                          text_field="msg", extra={"user": "noc"}, headers={"X-Key": "s3"})
    assert await Dispatcher(sessionmaker, clock, {"sms": sms}).dispatch_due() == 1
    (req,) = provider.requests
    fields = req["query"] if where == "query" else req["body"]
    assert req["method"] == method and (req["where"] == where or where == "query")
    assert (fields["mobile"], fields["user"], req["headers"]["X-Key"]) == ("09191234567", "noc", "s3")
    assert sms_length(fields["msg"]).parts == 1


def test_a_get_gateway_with_a_body_encoding_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="sms_encoding=query"):
        HttpSmsNotifier(None, "http://127.0.0.1/send", method="GET", encoding="json")


# --- Telegram and Bale -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [ChannelKind.TELEGRAM, ChannelKind.BALE])
async def test_a_bot_gets_send_message_with_chat_id_and_text(sessionmaker, clock, serve, http, kind):
    provider = BotApi(TOKEN)
    url = await serve(provider)
    await channel(sessionmaker, "noc-chat", Audience.NOC, kind=kind, address="-1001234567890")
    mon = await server_with_monitor(sessionmaker, "db-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await IncidentEngine(sessionmaker, clock).process_pending()
    cls = TelegramNotifier if kind == ChannelKind.TELEGRAM else BaleNotifier
    assert await Dispatcher(sessionmaker, clock, {kind.value: cls(http, TOKEN, base_url=url)}).dispatch_due() == 1
    (body,) = provider.requests
    assert provider.errors == [] and body["chat_id"] == "-1001234567890"
    assert body["text"].startswith("[URGENT] #1 opened: tcp-db-1") and "severity: urgent" in body["text"]


async def test_a_bot_blocked_by_the_chat_disables_the_channel(sessionmaker, clock, serve, http):
    url = await serve(BotApi(TOKEN, statuses=[
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})]))
    await customer_incident(sessionmaker, clock, ChannelKind.BALE, "4528861")
    await Dispatcher(sessionmaker, clock, {"bale": BaleNotifier(http, TOKEN, base_url=url)}).dispatch_due()
    ch = await channel_row(sessionmaker)
    assert not ch.enabled and "bot was blocked" in ch.disabled_reason and TOKEN not in ch.disabled_reason


async def test_a_bot_api_rate_limit_is_retried_not_disabled(sessionmaker, clock, serve, http):
    provider = BotApi(TOKEN, statuses=[(429, {"ok": False, "error_code": 429, "description": "Too Many Requests",
                                              "parameters": {"retry_after": 3}})])
    url = await serve(provider)
    await customer_incident(sessionmaker, clock, ChannelKind.TELEGRAM, "12345")
    dispatcher = Dispatcher(sessionmaker, clock, {"telegram": TelegramNotifier(http, TOKEN, base_url=url)},
                            DispatchConfig(base_backoff_s=5))
    await dispatcher.dispatch_due()
    clock.advance(5)
    await dispatcher.dispatch_due()
    (notice,) = await notices(sessionmaker)
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 2) and len(provider.requests) == 2
    assert (await channel_row(sessionmaker)).enabled


async def test_a_wrong_bot_token_is_permanent(sessionmaker, clock, serve, http):
    url = await serve(BotApi(TOKEN))
    await customer_incident(sessionmaker, clock, ChannelKind.TELEGRAM, "12345")
    await Dispatcher(sessionmaker, clock, {"telegram": TelegramNotifier(http, "1:wrong", base_url=url)}).dispatch_due()
    ch = await channel_row(sessionmaker)
    assert not ch.enabled and ch.disabled_reason.startswith("HTTP 401: telegram")


async def test_an_unreachable_gateway_is_transient(sessionmaker, clock, http):
    await customer_incident(sessionmaker, clock, ChannelKind.KAVENEGAR, "09121234567")
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    await Dispatcher(sessionmaker, clock, {"kavenegar": KavenegarNotifier(
        http, "K-unreachable", base_url="http://127.0.0.1:9")}).dispatch_due()
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.PENDING and "kavenegar" in notice.last_error
    assert (await channel_row(sessionmaker)).enabled
