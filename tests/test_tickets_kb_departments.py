"""Rule 12 (knowledge base search with Persian normalisation, staff editing) and rule 13 (configurable
departments)."""

from datetime import timedelta

import pytest
from desk_world import make_world, technical_draft, tehran

from monitor.errors import AccessDenied
from tickets import kb
from tickets.errors import Refusal
from tickets.intake import open_ticket
from tickets.kb import score
from tickets.models import Department

NOW = tehran(2026, 11, 25, 10, 0)
TITLE, BODY = "راهنمای پیکربندی ایمیل", "برای ارسال ایمیل‌ها تنظیمات SMTP را در کنترل‌پنل بررسی کنید"


@pytest.mark.parametrize("query, matches", [
    ("ایمیل ارسال نمی‌شود", True),
    ("ايميل ارسال نمي شود", True),            # Arabic keyboard
    ("ایمیلهای من ارسال نمیشود", True),       # no ZWNJ, plural glued on
    ("تنظیمات smtp", True),                    # Latin term, any case
    ("پرداخت فاکتور", False),
    ("و از به که", False),                      # stop-words only
])
def test_search_scoring_uses_normalised_tokens(query, matches):
    assert (score(query, TITLE, BODY) >= kb.MIN_SCORE) is matches


def test_a_title_match_outranks_a_body_match():
    assert score("ایمیل", "ایمیل", "") > score("ایمیل", "شبکه", "ایمیل")


async def test_staff_edit_articles_and_customers_see_only_published_ones(sessionmaker):
    world = await make_world(sessionmaker)
    article = await kb.create_article(sessionmaker, world.noc, title=TITLE, body=BODY, now=NOW)
    with pytest.raises(AccessDenied):
        await kb.create_article(sessionmaker, world.a, title=TITLE, body=BODY, now=NOW)
    with pytest.raises(Refusal) as caught:
        await kb.update_article(sessionmaker, world.noc, article.id, title="email settings", now=NOW)
    assert caught.value.code == "text_finglish"
    await kb.update_article(sessionmaker, world.noc, article.id, published=False, now=NOW + timedelta(minutes=1))
    assert [a.id for a in await kb.list_articles(sessionmaker, world.noc)] == [article.id]
    assert await kb.list_articles(sessionmaker, world.a) == []
    async with sessionmaker() as s:
        assert await kb.search(s, "ایمیل ارسال") == []
    await kb.delete_article(sessionmaker, world.noc, article.id)
    assert await kb.list_articles(sessionmaker, world.noc) == []


async def test_a_department_row_adds_a_department_with_its_own_required_fields(sessionmaker):
    world = await make_world(sessionmaker)
    async with sessionmaker.begin() as s:
        s.add(Department(key="domains", name_fa="دامنه", required_fields=["domain_name"],
                         field_labels={"domain_name": "نام دامنه"}))
        s.add(Department(key="sales", name_fa="فروش", active=False))
    draft = {"department": "domains", "subject": "انتقال دامنه", "body": "می‌خواهم دامنه را منتقل کنم"}
    with pytest.raises(Refusal) as caught:
        await open_ticket(sessionmaker, world.a, draft, now=NOW)
    assert (caught.value.code, caught.value.extra["missing"]) == ("missing_fields", ["domain_name"])
    assert "نام دامنه" in caught.value.message
    ticket = await open_ticket(sessionmaker, world.a, draft | {"domain_name": "example.ir"}, now=NOW)
    assert ticket.fields == {"domain_name": "example.ir"}
    with pytest.raises(Refusal) as caught:
        await open_ticket(sessionmaker, world.a, technical_draft(world.service_a, department="sales"), now=NOW)
    assert caught.value.code == "unknown_department" and "sales" not in caught.value.extra["departments"]
