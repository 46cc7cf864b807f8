"""The desk's JSON API: flows through real HTTP on loopback, and per-route tenant isolation."""

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from desk_world import make_world, technical_draft, tehran
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import issue_token
from tickets import persian
from tickets.fines import post_fine
from tickets.intake import open_ticket
from tickets.models import AuditEntry, Ticket, TicketMessage

NOW = tehran(2026, 11, 25, 10, 0)


@pytest.fixture
async def api(sessionmaker, clock):
    clock.set(NOW)
    world = await make_world(sessionmaker)
    async with sessionmaker.begin() as s:
        tokens = {name: await issue_token(s, getattr(world, name).user_id, "t", NOW)
                  for name in ("a", "b", "noc", "admin", "finance")}
    app = build_app(WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async def call(who, method, path, body=None, raw_body: bytes | None = None):
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            if raw_body is not None:  # bytes as a hostile client sends them (json= would re-encode)
                headers["Content-Type"] = "application/json"
                resp = await client.request(method, path, data=raw_body, headers=headers)
            else:
                resp = await client.request(method, path, json=body, headers=headers)
            return resp.status, await resp.json()

        yield world, call


async def test_a_customer_opens_reads_and_writes_on_a_ticket_and_staff_answer(api):
    world, call = api
    draft = technical_draft(world.service_a, body="سرور من كار نمي كند")
    status, ticket = await call("a", "POST", "/api/v1/tickets", draft)
    assert status == 201 and ticket["body"] == "سرور من کار نمی کند"
    assert ticket["first_response_due"] == (NOW + timedelta(hours=1)).isoformat()
    status, queue = await call("noc", "GET", "/api/v1/desk/queue")
    assert [t["id"] for t in queue] == [ticket["id"]]
    assert (await call("noc", "POST", f"/api/v1/tickets/{ticket['id']}/answer", {"body": "بررسی شد"}))[0] == 201
    assert (await call("a", "POST", f"/api/v1/tickets/{ticket['id']}/messages", {"body": "ممنون"}))[0] == 201
    status, read = await call("a", "GET", f"/api/v1/tickets/{ticket['id']}")
    assert [m["author_kind"] for m in read["messages"]] == ["staff", "customer"] and read["status"] == "open"
    assert (await call("a", "POST", f"/api/v1/tickets/{ticket['id']}/close"))[0] == 200
    status, refused = await call("a", "POST", f"/api/v1/tickets/{ticket['id']}/messages", {"body": "باز هم"})
    assert (status, refused["error"]) == (400, "ticket_closed")
    assert refused["open_new_with"] == {"references_ticket_id": ticket["id"]}


async def test_a_refusal_is_persian_names_the_field_and_returns_the_draft(api):
    world, call = api
    draft = technical_draft(world.service_a, body="salam server ghat ast")
    status, body = await call("a", "POST", "/api/v1/tickets", draft)
    assert (status, body["error"], body["field"]) == (400, "text_finglish", "body")
    assert body["draft"] == draft and "فارسی" in body["message"]


async def test_draft_check_suggests_articles(api):
    world, call = api
    status, article = await call("noc", "POST", "/api/v1/kb/articles",
                                 {"title": "وقتی سرور قطع است", "body": "شبکه را بررسی کنید"})
    assert status == 201
    status, checked = await call("a", "POST", "/api/v1/tickets/draft-check",
                                 {"department": "technical", "subject": "سرورم قطع شده", "body": "سرور قطع است"})
    assert status == 200 and [a["id"] for a in checked["articles"]] == [article["id"]]
    assert checked["missing"] == ["service_id", "server_address", "started_at"]


async def test_phone_support_status_follows_the_calendar(api, clock):
    _world, call = api
    assert (await call("a", "GET", "/api/v1/desk/phone-support"))[1]["open"] is True
    clock.set(tehran(2026, 11, 26, 10, 0))
    status, body = await call("a", "GET", "/api/v1/desk/phone-support")
    assert (body["open"], body["closed_because"]) == (False, "weekend")


async def test_admin_calendar_closure_recomputes_and_report_and_audit_are_served(api, sessionmaker):
    world, call = api
    status, ticket = await call("a", "POST", "/api/v1/tickets", technical_draft(world.service_a))
    status, body = await call("admin", "POST", "/api/v1/desk/calendar/closures", {"day": "2026-11-25",
                                                                                 "name": "تعطیلی"})
    assert (status, body["tickets_recomputed"]) == (201, 1)
    status, read = await call("noc", "GET", f"/api/v1/tickets/{ticket['id']}")
    assert read["first_response_due"] == (NOW + timedelta(hours=3)).isoformat()
    status, report = await call("noc", "GET", "/api/v1/desk/sla-report?year=1405&month=9")
    assert status == 200 and [b["band"] for b in report["bands"]] == ["office", "outside"]
    status, log = await call("admin", "GET", f"/api/v1/audit?customer_id={world.customer_a}")
    assert [e["action"] for e in log] == ["read_ticket"]
    status, refused = await call("admin", "POST", "/api/v1/audit/disclosures",
                                 {"customer_id": world.customer_a, "recipient": "دادسرا"})
    assert (status, refused["error"]) == (400, "letter_reference_required")


async def test_suspension_through_the_api_and_paying_lifts_it(api, sessionmaker):
    world, call = api
    _s, first = await call("a", "POST", "/api/v1/tickets", technical_draft(world.service_a))
    status, fine = await call("finance", "POST", f"/api/v1/tickets/{first['id']}/fines",
                              {"amount_rials": 2_000_000, "due_at": (NOW - timedelta(hours=1)).isoformat()})
    assert status == 201
    other = technical_draft(world.service_a, subject="دیسک پر", body="فضای دیسک تمام شده است")
    status, body = await call("a", "POST", "/api/v1/tickets", other)
    assert (status, body["error"], body["draft"]) == (400, "support_suspended", other)
    assert (await call("finance", "POST", f"/api/v1/fines/{fine['id']}/paid"))[0] == 200
    assert (await call("a", "POST", "/api/v1/tickets", other))[0] == 201


# Every customer-reachable route that names a ticket, tried by A on B's ticket: 404, and nothing changes.
CROSS_TENANT = [
    ("GET", "/api/v1/tickets/{t}", None),
    ("POST", "/api/v1/tickets/{t}/messages", {"body": "سلام"}),
    ("POST", "/api/v1/tickets/{t}/close", None),
]


@pytest.mark.parametrize("method, path, body", CROSS_TENANT, ids=[p for _m, p, _b in CROSS_TENANT])
async def test_customer_a_cannot_see_or_act_on_bs_ticket(api, sessionmaker, method, path, body):
    world, call = api
    theirs = await open_ticket(sessionmaker, world.b, technical_draft(world.service_b, subject="محرمانهٔ بتا"),
                               now=NOW)
    status, answer = await call("a", method, path.format(t=theirs.id), body)
    assert status == 404 and "محرمانه" not in str(answer)
    async with sessionmaker() as s:
        assert (await s.get(Ticket, theirs.id)).status == "open"
        assert (await s.execute(select(func.count()).select_from(TicketMessage))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(AuditEntry))).scalar_one() == 0


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/fines"])
async def test_customer_a_lists_never_show_bs_rows(api, sessionmaker, path):
    world, call = api
    theirs = await open_ticket(sessionmaker, world.b, technical_draft(world.service_b), now=NOW)
    await post_fine(sessionmaker, world.finance, theirs.id, amount_rials=1, due_at=NOW, now=NOW)
    assert (await call("a", "GET", path)) == (200, [])
    assert len((await call("b", "GET", path))[1]) == 1


@pytest.mark.parametrize("route", ["/api/v1/tickets", "/api/v1/tickets/draft-check"])
async def test_customer_a_cannot_open_or_check_a_ticket_about_bs_service(api, route):
    world, call = api
    status, body = await call("a", "POST", route, technical_draft(world.service_b))
    if route.endswith("draft-check"):
        assert status == 200 and [p["error"] for p in body["problems"]] == ["service_not_owned"]
    else:
        assert (status, body["error"]) == (400, "service_not_owned")


async def test_ten_identical_tickets_sent_at_the_same_instant_open_exactly_one(api, sessionmaker):
    """Rule 16 under a race: the duplicate check of each submission sees the ones before it."""
    world, call = api
    draft = technical_draft(world.service_a, body="سرور من از ساعت ده صبح در دسترس نیست و سایت باز نمی‌شود")
    answers = await asyncio.gather(*(call("a", "POST", "/api/v1/tickets", draft) for _ in range(10)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [400] * 9
    assert {body["error"] for status, body in answers if status == 400} == {"duplicate"}
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count(Ticket.id))) == 1


URDU = "میرا سرور صبح سے کام نہیں کر رہا ہے، براہ کرم جلدی مدد کریں"
SORANI = "سێرڤەرەکەم لە بەیانییەوە کار ناکات تکایە یارمەتیم بدەن"
PASHTO = "زما سرور د سهار راهیسې کار نه کوي، مهرباني وکړئ ژر مرسته وکړئ"
TAJIK = "Сервери ман аз субҳ кор намекунад, лутфан кумак кунед"


@pytest.mark.parametrize(("text", "code"), [
    (URDU, "text_other_script"),
    (SORANI, "text_other_script"),
    (PASHTO, "text_other_script"),
    (TAJIK, "text_cyrillic"),
    ("salam server man az sobh kar nemikone", "text_finglish"),
    ("سرور من از صبح کار نمی‌کند و سایت باز نمی‌شود", None),
    ("سلام، سایت ما از دیروز بستہ شدہ و ایمیل ھم کار نمی‌کند", None),  # heh forms other keyboards give
    ("سرور من كار نمي كند و پورت ۸۰ بسته است https://example.test/status", None),  # Arabic keyboard, URL
    ("سرور قطع است\nnginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)", None),
])
async def test_intake_refuses_other_languages_each_with_its_own_persian_message(api, text, code):
    world, call = api
    status, body = await call("a", "POST", "/api/v1/tickets", technical_draft(world.service_a, body=text))
    if code is None:
        assert status == 201
        return
    assert (status, body["error"], body["field"]) == (400, code, "body")
    assert body["message"] == persian.MESSAGES[code.removeprefix("text_")]


@pytest.mark.parametrize(("text", "code"), [(URDU, "text_other_script"), (TAJIK, "text_cyrillic")])
async def test_thread_messages_follow_the_same_language_rule(api, text, code):
    world, call = api
    status, ticket = await call("a", "POST", "/api/v1/tickets", technical_draft(world.service_a))
    assert status == 201
    status, body = await call("a", "POST", f"/api/v1/tickets/{ticket['id']}/messages", {"body": text})
    assert (status, body["error"]) == (400, code)
