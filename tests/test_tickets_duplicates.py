"""Rule 16: a ticket asking again what an open ticket asks is refused; anything else is opened.

The measure on the whole table (tests/duplicate_pairs.py) as a pure function, then the rule through the real
HTTP API on SQLite and PostgreSQL: representative pairs, another service, another department, and which
statuses count as open.
"""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from desk_world import make_world, technical_draft, tehran
from duplicate_pairs import DIFFERENT, FINANCIAL_PAIRS, OUTAGE, PARAPHRASES, text
from prometheus_client import CollectorRegistry

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import issue_token
from monitor.models import Service
from tickets.duplicates import THRESHOLD, comparison_form, content_words, similarity

NOW = tehran(2026, 11, 25, 10, 0)
PAIRS = {key: (first, second) for key, first, second in PARAPHRASES + DIFFERENT}


@pytest.mark.parametrize("key, first, second", PARAPHRASES, ids=[k for k, _a, _b in PARAPHRASES])
def test_a_paraphrase_scores_at_least_the_threshold_both_ways(key, first, second):
    assert similarity(text(first), text(second)) >= THRESHOLD
    assert similarity(text(second), text(first)) == pytest.approx(similarity(text(first), text(second)))


@pytest.mark.parametrize("key, first, second", DIFFERENT, ids=[k for k, _a, _b in DIFFERENT])
def test_a_different_request_about_the_same_service_scores_under_the_threshold(key, first, second):
    assert similarity(text(first), text(second)) < THRESHOLD


def test_the_table_leaves_a_gap_on_both_sides_of_the_threshold():
    """A retuning that puts the threshold at the edge of the measured gap fails here."""
    lowest = min(similarity(text(a), text(b)) for _k, a, b in PARAPHRASES)
    highest = max(similarity(text(a), text(b)) for _k, a, b in DIFFERENT)
    assert lowest - THRESHOLD >= 0.1 and THRESHOLD - highest >= 0.1


@pytest.mark.parametrize("variant, plain", [
    ("سايت كند است", "سایت کند است"),                         # Arabic-keyboard ي ك
    ("نمی‌شود", "نمی شود"),                                   # ZWNJ
    ("سَرورِ من قَطع است", "سرور من قطع است"),                 # diacritics
    ("نسخهٔ پشتیبان", "نسخه پشتیبان"),                        # hamza above heh
    ("پورت ٨٠ و ۴۴۳", "پورت 80 و 443"),                       # Arabic-Indic and Persian digits
    ("پائین", "پایین"),
    ("بکاپ دیتابیس", "پشتیبان دیتابیس"),                      # one spelling per hosting term
    ("پایگاه داده", "دیتابیس"),
    ("مصرف CPU صد درصد", "مصرف پردازنده 100 درصد"),           # "صد" inside "درصد" is left alone
])
def test_spelling_variants_fold_to_one_comparison_form(variant, plain):
    assert comparison_form(variant) == comparison_form(plain)


def test_courtesy_setting_and_time_words_do_not_count():
    assert content_words("سلام، لطفا سرور و سایت من را از امروز صبح بررسی کنید. ممنون") == ["بررسی"]
    # Two requests made only of such words are alike only when they are the same text.
    assert similarity("سلام\nلطفا سرور", "سلام\nلطفا سرور") == 1.0
    assert similarity("سلام\nلطفا سرور", "سلام\nسایت من") == 0.0


def test_the_reported_refusal_shares_only_the_setting():
    first, second = PAIRS["reported-refusal"]
    assert set(content_words(text(first))) & set(content_words(text(second))) == set()


@pytest.fixture
async def api(sessionmaker, clock):
    clock.set(NOW)
    world = await make_world(sessionmaker)
    async with sessionmaker.begin() as s:
        tokens = {name: await issue_token(s, getattr(world, name).user_id, "t", NOW) for name in ("a", "noc")}
    app = build_app(WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async def call(who, method, path, body=None):
            resp = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
            return resp.status, await resp.json()

        yield world, call


def _draft(world, key: str, draft: tuple[str, str], **over) -> dict:
    subject, body = draft
    if key in FINANCIAL_PAIRS:
        return {"department": "financial", "subject": subject, "body": body, "invoice_number": "۱۲۳۴"} | over
    return technical_draft(world.service_a, subject=subject, body=body) | over


@pytest.mark.parametrize("key", ["outage", "arabic-keyboard", "misspelt", "port-digits", "restore", "payment"])
async def test_through_the_api_a_paraphrase_of_an_open_ticket_is_refused_naming_it(api, key):
    world, call = api
    first, second = PAIRS[key]
    status, opened = await call("a", "POST", "/api/v1/tickets", _draft(world, key, first))
    assert status == 201
    status, refused = await call("a", "POST", "/api/v1/tickets", _draft(world, key, second))
    assert (status, refused["error"], refused["field"]) == (400, "duplicate", "body")
    assert refused["duplicate_of"] == opened["id"] and refused["draft"] == _draft(world, key, second)
    assert len((await call("a", "GET", "/api/v1/tickets"))[1]) == 1


@pytest.mark.parametrize("key", ["reported-refusal", "cpu-vs-ram", "restore-vs-backup-schedule",
                                 "mail-out-vs-mail-in", "payment-vs-invoice-copy"])
async def test_through_the_api_a_different_request_about_the_same_service_is_opened(api, key):
    world, call = api
    first, second = PAIRS[key]
    assert (await call("a", "POST", "/api/v1/tickets", _draft(world, key, first)))[0] == 201
    assert (await call("a", "POST", "/api/v1/tickets", _draft(world, key, second)))[0] == 201
    assert len((await call("a", "GET", "/api/v1/tickets"))[1]) == 2


async def _second_service_of_a(sessionmaker, world) -> int:
    async with sessionmaker.begin() as s:
        service = Service(name="svc-acme-2", customer_id=world.customer_a)
        s.add(service)
        await s.flush()
        return service.id


@pytest.mark.parametrize("where", ["other_service", "other_department", "no_service"])
async def test_through_the_api_the_same_text_elsewhere_is_never_a_duplicate(api, sessionmaker, where):
    world, call = api
    first = technical_draft(world.service_a, subject=OUTAGE[0], body=OUTAGE[1])
    assert (await call("a", "POST", "/api/v1/tickets", first))[0] == 201
    if where == "other_service":
        again = first | {"service_id": await _second_service_of_a(sessionmaker, world)}
    elif where == "other_department":
        again = {"department": "sales", "subject": OUTAGE[0], "body": OUTAGE[1]}
    else:  # a sales ticket about no service, then the same text about the service in sales
        assert (await call("a", "POST", "/api/v1/tickets",
                           {"department": "sales", "subject": OUTAGE[0], "body": OUTAGE[1]}))[0] == 201
        again = {"department": "sales", "service_id": world.service_a, "subject": OUTAGE[0], "body": OUTAGE[1]}
    status, body = await call("a", "POST", "/api/v1/tickets", again)
    assert status == 201, body
    # ... and in that other place the rule applies again.
    status, body = await call("a", "POST", "/api/v1/tickets", again)
    assert (status, body["error"]) == (400, "duplicate")


@pytest.mark.parametrize("how, target", [
    ("answered", True),                 # staff answered: still open, the customer writes in it
    ("waiting_on_customer", True),
    ("closed", False),                  # rule 15: a closed ticket is not reopened, a new one is opened
    ("closed_without_answer", False),
])
async def test_only_a_ticket_that_is_still_open_is_a_duplicate_target(api, how, target):
    world, call = api
    first, second = PAIRS["outage"]
    _s, opened = await call("a", "POST", "/api/v1/tickets", _draft(world, "outage", first))
    path = f"/api/v1/tickets/{opened['id']}"
    if how in ("answered", "waiting_on_customer"):
        answer = {"body": "در حال بررسی است"} | ({"waiting_on_customer": True} if how != "answered" else {})
        assert (await call("noc", "POST", f"{path}/answer", answer))[0] == 201
    elif how == "closed":
        assert (await call("a", "POST", f"{path}/close"))[0] == 200
    else:
        assert (await call("noc", "POST", f"{path}/close-without-answer", {"reason": "no_reply"}))[0] == 200
    assert (await call("a", "GET", path))[1]["status"] == how
    status, body = await call("a", "POST", "/api/v1/tickets", _draft(world, "outage", second))
    if target:
        assert (status, body["error"], body["duplicate_of"]) == (400, "duplicate", opened["id"])
    else:
        assert status == 201, body
