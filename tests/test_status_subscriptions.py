"""Status-page subscriptions by e-mail, end to end on SQLite and PostgreSQL: the public form, the confirmation
mail through the outbox and a real SMTP server on loopback, confirm and unsubscribe links (a GET never
changes anything), the incident and public-update notices with their unsubscribe link and headers, and the
refusals (bad, internationalised or header-injecting addresses, the rate limit, an expired form)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import expect
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.ratelimit import Buckets, Rate
from dashboards.web.subscribe_routes import SubscribeLimits
from incidents.dispatcher import Dispatcher
from incidents.metrics import IncidentMetrics
from incidents.models import NoticeStatus, Notification, Severity, Source
from incidents.notifiers import EmailNotifier
from incidents.statuspage.models import StatusSubscription, SubscriptionState
from incidents.store import open_incident
from monitor.accounts import Role, create_user, issue_token
from monitor.models import Customer, Service
from tests.channel_servers import smtp_mailbox
from tests.test_browser import ARTIFACTS, browser  # noqa: F401  (fixtures used by name)

HTML = {"Accept": "text/html"}
LATIN = re.compile(r"[A-Za-z]{2,}")
URL = re.compile(r"https?://\S+")
INTERNAL = ("kavir", "svc-", "portal-flaky", "down", "status_mismatch")


class World:
    def __init__(self, client, mailbox, dispatcher, sessionmaker, clock, noc, service_id, deps, kind) -> None:
        self.client, self.mailbox, self.dispatcher, self.kind = client, mailbox, dispatcher, kind
        self.sessionmaker, self.clock, self.noc, self.service_id, self.deps = (sessionmaker, clock, noc,
                                                                                service_id, deps)

    async def subscribe(self, email: str, **headers: str):
        """What the browser posts from the status page's form (its own Origin, as a browser sends it)."""
        origin = f"http://{self.client.host}:{self.client.port}"
        return await self.client.post("/status/subscribe", headers={**HTML, "Origin": origin, **headers},
                                      data={"email": email})

    async def deliver(self) -> list:
        """Send what the outbox holds (passes until one sends nothing: a channel hears of one incident in
        order); return the mails the SMTP server received meanwhile."""
        before = len(self.mailbox.messages)
        for _ in range(10):
            if not await self.dispatcher.dispatch_due():
                break
        return self.mailbox.messages[before:]

    async def subscriptions(self) -> list[StatusSubscription]:
        async with self.sessionmaker() as s:
            return list((await s.execute(select(StatusSubscription).order_by(StatusSubscription.id))).scalars())

    async def open_incident(self, key: str = "k1") -> int:
        async with self.sessionmaker() as s, s.begin():
            incident = await open_incident(s, key=key, source=Source.MONITOR, severity=Severity.URGENT,
                                           title="kavir-portal-flaky down", opened_at=self.clock.now(),
                                           now=self.clock.now(), service_id=self.service_id)
        return incident.id

    async def post_update(self, incident_id: int, text: str, status: str = "identified"):
        resp = await self.client.post(f"/api/v1/incidents/{incident_id}/updates", headers=self.noc,
                                      json={"text": text, "status": status})
        assert resp.status == 201, await resp.text()


@pytest.fixture
async def world(db, sessionmaker, clock):
    async with sessionmaker() as s, s.begin():
        customer = Customer(name="cust-kavir", display_name="شرکت کویر")
        s.add(customer)
        await s.flush()
        service = Service(name="svc-kavir-portal", display_name="پرتال کویر", customer_id=customer.id,
                          public_status=True)
        s.add(service)
        nora = await create_user(s, "nora", Role.NOC)
        noc = {"Authorization": f"Bearer {await issue_token(s, nora.id, 't', clock.now())}"}
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    with smtp_mailbox() as (mailbox, port):
        dispatcher = Dispatcher(sessionmaker, clock, {"email": EmailNotifier("127.0.0.1", port,
                                                                             "status@negahban.test")},
                                metrics=IncidentMetrics(CollectorRegistry()))
        async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
            yield World(client, mailbox, dispatcher, sessionmaker, clock, noc, service.id, deps, db.kind)


def _text(mail) -> str:
    return mail.get_content() if not mail.is_multipart() else mail.get_body(("plain",)).get_content()


def _path(url: str) -> str:
    return urlsplit(url).path


def _persian_only(text: str) -> None:
    """No Latin words but the links' addresses, and none of the internal names."""
    assert not LATIN.search(URL.sub("", text)), text
    for word in INTERNAL:
        assert word not in text, text


async def test_subscribe_confirm_receive_an_update_unsubscribe_and_hear_nothing_more(world):
    resp = await world.subscribe("Ali.Rezaei@Example.com")
    assert resp.status == 200
    assert "اگر این نشانی هنوز مشترک نباشد" in await resp.text()
    (sub,) = await world.subscriptions()
    assert sub.state == SubscriptionState.PENDING and sub.address == "ali.rezaei@example.com"

    (mail,) = [m for _to, m in await world.deliver()]
    assert world.mailbox.messages[0][0] == ["ali.rezaei@example.com"]
    assert str(mail["Subject"]) == "تأیید اشتراک اطلاع‌رسانی وضعیت سرویس‌ها"
    body = _text(mail)
    _persian_only(body)
    link = re.search(r"http://\S+/status/confirm/(\S+)", body)
    assert link is not None, body
    token = link.group(1)
    # Only the token's digest is stored.
    assert token not in (sub.confirm_sha256 or "") and len(sub.confirm_sha256) == 64

    # A GET (a mail scanner, a link preview) shows the button and changes nothing, however often.
    for _ in range(2):
        page = await world.client.get(_path(link.group(0)), headers=HTML)
        assert page.status == 200 and 'method="post"' in await page.text()
        assert page.headers["Cache-Control"] == "no-store"
    assert (await world.subscriptions())[0].state == SubscriptionState.PENDING
    done = await world.client.post(_path(link.group(0)), headers=HTML)
    assert done.status == 200 and "اشتراک شما تأیید شد" in await done.text()
    assert (await world.subscriptions())[0].state == SubscriptionState.ACTIVE

    # An incident on the public service, and the public update staff post about it.
    incident_id = await world.open_incident()
    world.clock.advance(seconds=120)
    await world.post_update(incident_id, "علت پیدا شد: خرابی دیسک سرور. در حال جایگزینی هستیم.")
    mails = [m for _to, m in await world.deliver()]
    assert len(mails) == 2
    opened, update = mails
    assert str(opened["Subject"]) == "اختلال در پرتال کویر"
    assert str(update["Subject"]) == "شناسایی شد: پرتال کویر"
    text = _text(update)
    assert "علت پیدا شد: خرابی دیسک سرور." in text
    for m in mails:
        _persian_only(str(m["Subject"]) + _text(m))
    unsubscribe = re.search(r"http://\S+/status/unsubscribe/\S+", text).group(0)
    assert update["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The unsubscribe link: the GET asks, the mail client's one-click POST acts.
    asked = await world.client.get(_path(unsubscribe), headers=HTML)
    assert asked.status == 200 and "لغو اشتراک" in await asked.text()
    assert (await world.subscriptions())[0].state == SubscriptionState.ACTIVE
    gone = await world.client.post(_path(unsubscribe), data="List-Unsubscribe=One-Click",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert gone.status == 200 and "اشتراک شما لغو شد" in await gone.text()
    assert (await world.subscriptions())[0].state == SubscriptionState.UNSUBSCRIBED

    world.clock.advance(seconds=120)
    await world.post_update(incident_id, "سرور جایگزین شد و سرویس در حال پایش است.", "monitoring")
    assert await world.deliver() == []
    # An unsubscribe disables the visitor's channel but is no disabled-channel alert of the NOC's.
    await world.dispatcher.refresh_channel_metrics()
    registry = world.dispatcher.metrics.channel_disabled
    assert [s for m in registry.collect() for s in m.samples] == []


async def test_an_unconfirmed_address_receives_only_its_confirmation(world):
    assert (await world.subscribe("pending@example.com")).status == 200
    assert len(await world.deliver()) == 1
    incident_id = await world.open_incident()
    await world.post_update(incident_id, "مشکل را بررسی می‌کنیم.", "investigating")
    assert await world.deliver() == []
    async with world.sessionmaker() as s:
        kinds = list((await s.execute(select(Notification.kind))).scalars())
    assert kinds == ["subscription.confirm"]


async def test_a_notice_queued_before_unsubscribing_is_skipped_not_sent(world):
    await world.subscribe("later@example.com")
    (mail,) = [m for _to, m in await world.deliver()]
    confirm_path = _path(re.search(r"http://\S+", _text(mail)).group(0))
    assert (await world.client.post(confirm_path)).status == 200
    incident_id = await world.open_incident()
    (sub,) = await world.subscriptions()
    unsubscribe = f"/status/unsubscribe/{sub.id}/{sub.manage_token}"
    assert (await world.client.post(unsubscribe)).status == 200
    assert await world.deliver() == []
    async with world.sessionmaker() as s:
        statuses = list((await s.execute(select(Notification.status).where(
            Notification.incident_id == incident_id))).scalars())
    assert statuses == [NoticeStatus.SKIPPED]


async def test_an_address_already_subscribed_gets_the_same_answer_and_no_mail(world):
    first = await world.subscribe("known@example.com")
    (mail,) = [m for _to, m in await world.deliver()]
    await world.client.post(_path(re.search(r"http://\S+", _text(mail)).group(0)))
    again = await world.subscribe("known@example.com")
    fresh = await world.subscribe("unknown@example.com")

    def answer(page: str) -> str:
        section = re.search(r'<section class="card subscribe".*?</section>', page, re.S).group(0)
        return section

    texts = [answer(await r.text()) for r in (first, again, fresh)]
    assert first.status == again.status == fresh.status == 200
    assert texts[0] == texts[1] == texts[2]
    assert [to for to, _m in await world.deliver()] == [["unknown@example.com"]]
    assert [s.state for s in await world.subscriptions()] == [SubscriptionState.ACTIVE, SubscriptionState.PENDING]


async def test_a_repeated_form_for_a_pending_address_mails_at_most_once_per_ten_minutes(world):
    for _ in range(2):
        await world.subscribe("twice@example.com")
    assert len(await world.deliver()) == 1
    world.clock.advance(minutes=11)
    await world.subscribe("twice@example.com")
    (mail,) = [m for _to, m in await world.deliver()]
    # The newer link replaces the older one.
    newest = _path(re.search(r"http://\S+", _text(mail)).group(0))
    assert (await world.client.post(newest)).status == 200
    assert (await world.subscriptions())[0].state == SubscriptionState.ACTIVE


@pytest.mark.parametrize("email", [
    "", "   ", "not-an-address", "a@b", "a@@example.com", "a b@example.com", "<a@example.com>",
    "a@example.com, b@example.com", "a@example.com;b@example.com", ".a@example.com", "a@-example.com",
    "a@example.c0m", "x" * 250 + "@example.com",
    "علی@مثال.ایران", "ali@example.ایران", "user@münchen.de", "ali@exam\u200cple.com",
    "a@b.c\r\nBcc: x@y", "a@example.com\nBcc: x@example.com", "a@example.com\r\n", "a@example.com\x00",
])
async def test_a_bad_address_is_refused_naming_the_field_and_nothing_is_stored_or_sent(world, email):
    resp = await world.subscribe(email)
    page = await resp.text()
    assert resp.status == 400
    assert 'data-field="email"' in page and "نشانی ایمیل:" in page and 'aria-invalid="true"' in page
    if "\n" in email:
        assert "Bcc" not in page  # never echoed back either
    assert await world.subscriptions() == []
    assert await world.deliver() == []


async def test_too_many_requests_for_one_address_answer_429_with_retry_after(world):
    world.deps.services["subscribe_limits"] = SubscribeLimits(per_address=Buckets(Rate(2, 1 / 3600)))
    assert (await world.subscribe("busy@example.com")).status == 200
    assert (await world.subscribe("BUSY@example.com ")).status == 200  # the same address, written otherwise
    third = await world.subscribe("busy@example.com")
    assert third.status == 429 and int(third.headers["Retry-After"]) > 0
    assert "درخواست‌ها زیاد بود" in await third.text()
    # Another address is not held back by this one's limit.
    assert (await world.subscribe("calm@example.com")).status == 200
    world.clock.advance(hours=1)
    assert (await world.subscribe("busy@example.com")).status == 200


async def test_too_many_requests_from_one_client_answer_429(world):
    world.deps.services["subscribe_limits"] = SubscribeLimits(per_client=Buckets(Rate(3, 1 / 60)))
    for i in range(3):
        assert (await world.subscribe(f"u{i}@example.com")).status == 200
    assert (await world.subscribe("u9@example.com")).status == 429
    assert len(await world.subscriptions()) == 3


async def test_a_form_posted_from_another_site_is_refused(world):
    resp = await world.subscribe("forged@example.com", Origin="https://evil.example")
    assert resp.status == 403 and "فقط از صفحهٔ وضعیت ما" in await resp.text()
    assert await world.subscriptions() == []
    # No Origin at all (a non-browser client): the form's own checks decide.
    plain = await world.client.post("/status/subscribe", headers=HTML, data={"email": "curl@example.com"})
    assert plain.status == 200 and len(await world.subscriptions()) == 1


async def test_an_expired_or_unknown_link_confirms_nothing(world):
    await world.subscribe("slow@example.com")
    (mail,) = [m for _to, m in await world.deliver()]
    confirm_path = _path(re.search(r"http://\S+", _text(mail)).group(0))
    world.clock.advance(hours=49)
    page = await world.client.get(confirm_path, headers=HTML)
    assert page.status == 200 and "این پیوند دیگر معتبر نیست" in await page.text()
    assert (await world.client.post(confirm_path)).status == 200
    assert (await world.subscriptions())[0].state == SubscriptionState.PENDING
    unknown = await world.client.post("/status/confirm/" + "A" * 43, headers=HTML)
    assert unknown.status == 404 and "این پیوند دیگر معتبر نیست" in await unknown.text()
    (sub,) = await world.subscriptions()
    wrong = await world.client.post(f"/status/unsubscribe/{sub.id}/{'B' * 43}", headers=HTML)
    assert wrong.status == 404
    assert (await world.subscriptions())[0].state == SubscriptionState.PENDING
    async with world.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Notification))).scalar_one() == 1


async def test_the_status_page_offers_the_form_in_persian(world):
    resp = await world.client.get("/status", headers=HTML)
    page = await resp.text()
    assert resp.status == 200 and 'action="/status/subscribe"' in page and "اطلاع‌رسانی با ایمیل" in page
    # One page for every visitor (shared render, no cookie, no token).
    assert "Set-Cookie" not in resp.headers
    assert await (await world.client.get("/status", headers=HTML)).text() == page
    main = page.split('<main id="main">')[1]
    assert not LATIN.search(re.sub(r"<[^>]+>", "", main).replace("name@example.com", ""))


@pytest.mark.integration
async def test_in_the_browser_a_visitor_subscribes_confirms_by_the_mail_link_and_gets_the_next_notice(
        world, browser):  # noqa: F811
    base = str(world.client.make_url("")).rstrip("/")
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    await page.goto(f"{base}/status")
    await page.fill("input[name=email]", "visitor@example.com")
    await page.click("form.subscribe-form button[type=submit]")
    await expect(page.locator("section.subscribe p.notice")).to_contain_text("تا تأیید نکنید")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"status-subscribe-phone-{world.kind}.png"), full_page=True)

    (mail,) = [m for _to, m in await world.deliver()]
    link = re.search(r"http://\S+/status/confirm/\S+", _text(mail)).group(0)
    await page.goto(link)
    assert (await world.subscriptions())[0].state == SubscriptionState.PENDING  # opening it changed nothing
    await page.click("section.status-link button[type=submit]")
    await expect(page.locator("section.status-link h1")).to_have_text("اشتراک شما تأیید شد")
    await page.screenshot(path=str(ARTIFACTS / f"status-confirmed-phone-{world.kind}.png"), full_page=True)

    incident_id = await world.open_incident()
    await world.post_update(incident_id, "علت پیدا شد و در حال رفع آن هستیم.")
    subjects = [str(m["Subject"]) for _to, m in await world.deliver()]
    assert subjects == ["اختلال در پرتال کویر", "شناسایی شد: پرتال کویر"]
