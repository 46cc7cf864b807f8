"""Status-page webhooks end to end on SQLite and PostgreSQL, with a real aiohttp receiver on loopback (allowed
explicitly by the test's settings): the public form, the confirmation request to the URL itself (confirm link
and signing key), notices only for the chosen services once confirmed, signed with the subscription's own key,
one delivery per event through the outbox's retries; and the SSRF guard refusing private, loopback and
metadata addresses, at subscribe time and again at delivery."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from incidents.dispatcher import Dispatcher
from incidents.metrics import IncidentMetrics
from incidents.models import NoticeStatus, Notification, NotificationChannel, Severity, Source
from incidents.signed_webhook import SIGNATURE_HEADER, verify_signature
from incidents.statuspage.fanout import WEBHOOK_KIND
from incidents.statuspage.models import StatusSubscription, SubscriptionState
from incidents.statuspage.webhooks import StatusWebhookNotifier, subscription_secret
from incidents.store import open_incident
from monitor.models import Customer, Service
from probes.allow import parse_networks

HTML = {"Accept": "text/html"}
SECRET = "master-signing-secret-for-tests"
LOOPBACK = parse_networks("127.0.0.0/8, ::1/128")


class Receiver:
    """A webhook endpoint on loopback: keeps every request; ``statuses`` scripts the next answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append({"headers": dict(request.headers), "raw": raw, "json": json.loads(raw)})
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def events(self) -> list[str]:
        return [r["json"]["event"] for r in self.requests]


class World:
    def __init__(self, client, receiver, hook_url, dispatcher, sm, clock, services, deps) -> None:
        self.client, self.receiver, self.hook_url, self.dispatcher = client, receiver, hook_url, dispatcher
        self.sm, self.clock, self.services, self.deps = sm, clock, services, deps

    async def subscribe(self, url: str, services: list[int] = ()):
        data = [("url", url)] + [("services", str(s)) for s in services]
        return await self.client.post("/status/subscribe/webhook", headers=HTML, data=data)

    async def deliver(self) -> int:
        sent = 0
        for _ in range(10):
            n = await self.dispatcher.dispatch_due()
            sent += n
            if not n:
                break
        return sent

    async def subscriptions(self) -> list[StatusSubscription]:
        async with self.sm() as s:
            return list((await s.execute(select(StatusSubscription).order_by(StatusSubscription.id))).scalars())

    async def incident(self, service: str, key: str) -> int:
        async with self.sm() as s, s.begin():
            found = await open_incident(s, key=key, source=Source.MONITOR, severity=Severity.URGENT,
                                        title=f"{service} down", opened_at=self.clock.now(), now=self.clock.now(),
                                        service_id=self.services[service])
        return found.id

    async def confirm_from(self, request: dict) -> None:
        """What the receiver's owner does with the confirmation request: POST its confirm link."""
        resp = await self.client.post(urlsplit(request["json"]["confirm_url"]).path, headers=HTML)
        page = await resp.text()
        assert resp.status == 200 and "درخواستی امضاشده به این نشانی می‌فرستیم" in page, page
        assert "http://127.0.0.1:" in page and "/hook" not in page  # the URL shown only by its host


async def _world(sm, clock, web_allow, notifier_allow):
    async with sm() as s, s.begin():
        customer = Customer(name="cust-kavir", display_name="شرکت کویر")
        s.add(customer)
        await s.flush()
        portal = Service(name="svc-kavir-portal", display_name="پرتال کویر", customer_id=customer.id,
                         public_status=True)
        mail = Service(name="svc-kavir-mail", display_name="ایمیل کویر", customer_id=customer.id,
                       public_status=True)
        hidden = Service(name="svc-kavir-intranet", display_name="اینترانت", customer_id=customer.id)
        s.add_all([portal, mail, hidden])
    services = {"portal": portal.id, "mail": mail.id, "hidden": hidden.id}
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.hook)
    extra = {} if web_allow is None else {"status_webhook_allow": web_allow}
    deps = WebDeps(sessionmaker=sm, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   services=extra)
    notifier = StatusWebhookNotifier(SECRET, notifier_allow, clock.now)
    dispatcher = Dispatcher(sm, clock, {WEBHOOK_KIND: notifier}, metrics=IncidentMetrics(CollectorRegistry()))
    return receiver, app, deps, notifier, dispatcher, services


@pytest.fixture
async def make_world(sessionmaker, clock):
    opened = []

    async def make(web_allow=LOOPBACK, notifier_allow=LOOPBACK) -> World:
        receiver, app, deps, notifier, dispatcher, services = await _world(sessionmaker, clock, web_allow,
                                                                           notifier_allow)
        hook_server = TestServer(app, host="127.0.0.1")
        await hook_server.start_server()
        client = TestClient(TestServer(build_app(deps), host="127.0.0.1"))
        await client.start_server()
        opened.append((client, hook_server, notifier))
        return World(client, receiver, str(hook_server.make_url("/hook")), dispatcher, sessionmaker, clock,
                     services, deps)

    yield make
    for client, hook_server, notifier in opened:
        await client.close()
        await hook_server.close()
        await notifier.close()


def _verified(request: dict, secret: str, clock) -> bool:
    return verify_signature(secret.encode(), request["headers"][SIGNATURE_HEADER], request["raw"], clock.now())


async def test_a_webhook_confirms_by_its_link_and_hears_only_of_its_services_signed_with_its_own_key(
        make_world, clock):
    world = await make_world()
    page = await world.subscribe(world.hook_url, [world.services["portal"]])
    assert page.status == 200 and "تا تأیید نکنید چیز دیگری فرستاده نمی‌شود" in await page.text()
    (sub,) = await world.subscriptions()
    assert sub.state == SubscriptionState.PENDING and sub.service_ids == [world.services["portal"]]
    assert await world.deliver() == 1
    (first,) = world.receiver.requests
    body = first["json"]
    assert body["event"] == "subscription.confirm" and body["components"] == ["پرتال کویر"]
    key = body["signing_secret"]
    assert key == subscription_secret(SECRET.encode(), sub.id, world.hook_url) and SECRET not in key
    assert _verified(first, key, clock)
    assert not _verified(first, SECRET, clock)  # signed with the subscription's key, not the master
    assert first["headers"]["Idempotency-Key"].startswith("negahban-status:confirm:1:")

    # Until confirmed, an incident on its service sends nothing.
    await world.incident("portal", "early")
    assert await world.deliver() == 0
    await world.confirm_from(first)
    assert (await world.subscriptions())[0].state == SubscriptionState.ACTIVE

    clock.advance(seconds=30)
    await world.incident("mail", "mail-1")  # a service it did not choose
    portal_incident = await world.incident("portal", "portal-1")
    assert await world.deliver() == 1
    assert world.receiver.events() == ["subscription.confirm", "incident.opened"]
    opened = world.receiver.requests[-1]
    assert _verified(opened, key, clock)
    assert opened["json"]["incident_id"] == portal_incident and opened["json"]["components"] == ["پرتال کویر"]
    assert opened["json"]["subject"] == "اختلال در پرتال کویر"
    assert "signing_secret" not in opened["json"]
    assert "svc-" not in opened["raw"].decode() and "down" not in opened["json"]["body"]

    # The unsubscribe link of the payload ends it.
    assert (await world.client.post(urlsplit(opened["json"]["unsubscribe_url"]).path)).status == 200
    await world.incident("portal", "portal-2")
    assert await world.deliver() == 0


async def test_a_failing_receiver_is_retried_with_backoff_and_gets_one_delivery_per_event(make_world, clock):
    world = await make_world()
    await world.subscribe(world.hook_url)
    await world.deliver()
    await world.confirm_from(world.receiver.requests[0])
    world.receiver.statuses = [503, 500]
    await world.incident("mail", "m1")

    async def seen_after(seconds: float) -> int:
        clock.advance(seconds=seconds)
        await world.deliver()
        return len(world.receiver.requests) - 1  # less the confirmation

    assert await seen_after(0) == 1  # refused (503): rescheduled in 5 s, not tried again at once
    assert await seen_after(6) == 2  # refused again (500): next in 10 s
    assert await seen_after(6) == 2  # not yet
    assert await seen_after(5) == 3  # accepted
    assert await seen_after(3600) == 3
    attempts = world.receiver.requests[1:]
    assert [r["json"]["event"] for r in attempts] == ["incident.opened"] * 3
    assert len({r["headers"]["Idempotency-Key"] for r in attempts}) == 1  # the receiver can drop a repeat
    async with world.sm() as s:
        statuses = list((await s.execute(select(Notification.status).where(
            Notification.kind == "incident.opened"))).scalars())
    assert statuses == [NoticeStatus.SENT]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook",          # loopback, not allowed here
    "http://localhost:{port}/hook",          # a name resolving to loopback
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "http://[::1]:{port}/hook",
    "http://[::ffff:10.0.0.5]/hook",         # a private address written as IPv6
    "http://10.1.2.3/hook",
    "http://192.168.1.1/hook",
    "http://internal.example.test/hook",     # resolves (the test's resolver) to a private address
])
async def test_a_private_or_metadata_address_is_refused_when_not_allowed(make_world, url):
    world = await make_world(web_allow=[])

    async def resolve(host: str) -> list[str]:
        return {"internal.example.test": ["93.184.216.34", "10.0.0.7"], "localhost": ["127.0.0.1", "::1"]}[host]

    world.deps.services["status_webhook_resolve"] = resolve
    port = urlsplit(world.hook_url).port
    page = await world.subscribe(url.format(port=port))
    text = await page.text()
    assert page.status == 400
    assert 'data-field="url"' in text and "شبکهٔ داخلی" in text
    assert await world.subscriptions() == []
    assert await world.deliver() == 0 and world.receiver.requests == []


@pytest.mark.parametrize(("url", "why"), [
    ("", "نشانی وب‌هوک را بنویسید"),
    ("ftp://example.com/hook", "مانند https://example.com/hook"),
    ("http://user:pw@example.com/hook", "مانند https://example.com/hook"),
    ("http://example.com/h ook", "مانند https://example.com/hook"),
    ("https://مثال.ایران/hook", "مانند https://example.com/hook"),
    ("https://example.com/" + "a" * 500, "بیش از اندازه بلند"),
])
async def test_a_malformed_url_is_refused_naming_the_field(make_world, url, why):
    world = await make_world()
    page = await world.subscribe(url)
    text = await page.text()
    assert page.status == 400 and 'data-field="url"' in text and why in text
    assert await world.subscriptions() == []


async def test_a_service_not_on_the_status_page_cannot_be_chosen(make_world):
    world = await make_world()
    page = await world.subscribe(world.hook_url, [world.services["hidden"]])
    assert page.status == 400 and 'data-field="services"' in await page.text()
    assert await world.subscriptions() == []


async def test_delivery_checks_the_address_again_and_a_refused_one_disables_the_channel(make_world, clock):
    # Subscribed while loopback was allowed; the dispatcher's notifier no longer allows it.
    world = await make_world(notifier_allow=[])
    await world.subscribe(world.hook_url)
    name = world.hook_url.replace("127.0.0.1", "localhost")
    await world.subscribe(name)  # a name: refused by the guarded resolver when connecting
    await world.deliver()
    clock.advance(hours=1)
    await world.deliver()
    assert world.receiver.requests == []
    async with world.sm() as s:
        channels = list((await s.execute(select(NotificationChannel).order_by(NotificationChannel.id))).scalars())
        notes = list((await s.execute(select(Notification.status, Notification.last_error)
                                      .order_by(Notification.id))).all())
    assert [c.enabled for c in channels] == [False, False]
    assert all(status == NoticeStatus.FAILED for status, _e in notes)
    assert "may not reach" in channels[0].disabled_reason and "may not reach" in channels[1].disabled_reason


async def test_without_a_signing_secret_webhooks_are_not_offered(make_world):
    world = await make_world(web_allow=None)
    page = await world.client.get("/status", headers=HTML)
    assert 'action="/status/subscribe/webhook"' not in await page.text()
    assert (await world.subscribe(world.hook_url)).status == 404
    assert await world.subscriptions() == []


async def test_the_status_page_offers_the_webhook_form_with_the_public_services(make_world):
    world = await make_world()
    page = await (await world.client.get("/status", headers=HTML)).text()
    form = page.split('class="card subscribe-webhook"')[1].split("</section>")[0]
    assert 'action="/status/subscribe/webhook"' in form and "اطلاع‌رسانی با وب‌هوک" in page
    assert "پرتال کویر" in form and "ایمیل کویر" in form and "اینترانت" not in form
    assert f'value="{world.services["portal"]}"' in form
