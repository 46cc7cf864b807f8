"""The signed webhook: X-Negahban-Signature (t=<unix>,v1=<HMAC-SHA256 over "t.body">) plus Idempotency-Key,
checked by a loopback receiver with ``verify_signature``."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from incidents.dispatcher import Dispatcher
from incidents.engine import IncidentEngine
from incidents.models import Audience, NoticeStatus
from incidents.signed_webhook import SIGNATURE_HEADER, SignedWebhookNotifier, sign, verify_signature
from tests.channel_servers import Provider, start
from tests.incident_support import channel, flip, notices, server_with_monitor

SECRET = "whsec-7f3a"


class Receiver(Provider):
    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock

    def routes(self):
        return [web.post("/hook", self.hook)]

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        self.requests.append({"raw": raw, "signature": header, "key": request.headers.get("Idempotency-Key")})
        if not verify_signature(SECRET.encode(), header, raw, self.clock.now()):
            return web.json_response({"error": "bad signature"}, status=401)
        return web.json_response({"ok": True})


async def test_a_signed_notice_verifies_at_the_receiver_with_its_idempotency_key(sessionmaker, clock):
    runners = []
    receiver = Receiver(clock)
    url = await start(receiver, runners)
    try:
        await channel(sessionmaker, "hook", Audience.NOC, address=f"{url}/hook")
        mon = await server_with_monitor(sessionmaker, "web-1")
        await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
        await IncidentEngine(sessionmaker, clock).process_pending()
        async with aiohttp.ClientSession() as http:
            notifier = SignedWebhookNotifier(http, SECRET, clock.now)
            assert await Dispatcher(sessionmaker, clock, {"webhook": notifier}).dispatch_due() == 1
    finally:
        for runner in runners:
            await runner.cleanup()
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.SENT
    (req,) = receiver.requests
    assert req["signature"].startswith(f"t={int(clock.now().timestamp())},v1=")
    assert req["key"] == f"negahban-{notice.dedup_key}" and b'"event":"opened"' in req["raw"]


async def test_a_receiver_refusing_the_signature_disables_the_channel(sessionmaker, clock):
    runners = []
    url = await start(Receiver(clock), runners)
    try:
        await channel(sessionmaker, "hook", Audience.NOC, address=f"{url}/hook")
        mon = await server_with_monitor(sessionmaker, "web-1")
        await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
        await IncidentEngine(sessionmaker, clock).process_pending()
        async with aiohttp.ClientSession() as http:
            notifier = SignedWebhookNotifier(http, "not-the-shared-secret", clock.now)
            await Dispatcher(sessionmaker, clock, {"webhook": notifier}).dispatch_due()
    finally:
        for runner in runners:
            await runner.cleanup()
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.FAILED and notice.last_error.startswith("HTTP 401")


@pytest.mark.parametrize(("age_s", "body", "secret", "ok"), [
    (0, b'{"a":1}', SECRET, True),
    (299, b'{"a":1}', SECRET, True),
    (301, b'{"a":1}', SECRET, False),        # a replay after the tolerance
    (-301, b'{"a":1}', SECRET, False),       # from the future
    (0, b'{"a":2}', SECRET, False),          # the body was changed
    (0, b'{"a":1}', "other", False),         # signed with another secret
])
def test_verify_signature(clock, age_s, body, secret, ok):
    signed_at = clock.now() - timedelta(seconds=age_s)
    header = sign(secret.encode(), int(signed_at.timestamp()), b'{"a":1}')
    assert verify_signature(SECRET.encode(), header, body, clock.now()) is ok


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1"])
def test_a_malformed_signature_header_does_not_verify(clock, header):
    assert verify_signature(SECRET.encode(), header, b"{}", clock.now()) is False


def test_a_signed_webhook_needs_a_secret(clock):
    with pytest.raises(ValueError, match="secret"):
        SignedWebhookNotifier(None, "", clock.now)
