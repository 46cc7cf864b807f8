"""A corpus of hostile or malformed inputs that once answered 500: each now gets a clear 4xx naming the field,
and writes nothing. Through the real HTTP API on both databases."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.test_api_tickets import NOW, api  # noqa: F401 - the desk's fixture
from tickets.models import Package, Ticket


def _draft(world, **override) -> dict:
    from desk_world import technical_draft

    return {**technical_draft(world.service_a), **override}


@pytest.mark.parametrize(("override", "field"), [
    ({"subject": ["a", "b"]}, "subject"),
    ({"body": {"x": 1}}, "body"),
    ({"department": ["technical"]}, "department"),
    ({"service_id": 2**63}, "service_id"),
    ({"service_id": True}, "service_id"),
    ({"references_ticket_id": "7"}, "references_ticket_id"),
])
async def test_a_ticket_field_of_the_wrong_type_is_refused_naming_it(api, sessionmaker, override, field):  # noqa: F811
    world, call = api
    status, body = await call("a", "POST", "/api/v1/tickets", _draft(world, **override))
    assert (status, body["field"]) == (400, field)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count(Ticket.id))) == 0


async def test_a_package_for_an_unknown_customer_is_refused(api, sessionmaker):  # noqa: F811
    _world, call = api
    status, body = await call("noc", "POST", "/api/v1/packages", {
        "customer_id": 987654, "kind": "management", "starts_on": "2026-12-01", "ends_on": "2027-01-01"})
    assert (status, body["field"]) == (400, "customer_id")
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count(Package.id))) == 0


async def test_a_fine_for_an_unknown_violation_is_refused(api):  # noqa: F811
    world, call = api
    status, ticket = await call("a", "POST", "/api/v1/tickets", _draft(world))
    assert status == 201
    status, body = await call("finance", "POST", f"/api/v1/tickets/{ticket['id']}/fines", {
        "amount_rials": 500_000, "due_at": NOW.isoformat(), "violation_id": 987654})
    assert (status, body["field"]) == (400, "violation_id")


@pytest.mark.parametrize(("query", "field"), [
    ("year=99999&month=1", "year"), ("year=1405&month=13", "month"), ("year=-1&month=1", "year"),
    ("year=1405&month=0", "month"), ("year=1e3&month=1", "year"), ("year=1405", "month"),
])
async def test_an_sla_report_for_a_jalali_date_out_of_range_is_refused_naming_the_field(api, query, field):  # noqa: F811
    _world, call = api
    status, body = await call("noc", "GET", f"/api/v1/desk/sla-report?{query}")
    assert (status, body["field"]) == (400, field), body


@pytest.mark.parametrize("text", ["\\ud800", "abc\\udfff", "\\udc00\\ud800"])
async def test_a_lone_surrogate_in_a_json_string_is_a_400_and_writes_nothing(api, sessionmaker, text):  # noqa: F811
    """Valid JSON, but not text a UTF-8 database can store: it answered 500 at PostgreSQL's INSERT."""
    world, call = api
    draft = _draft(world)
    raw = json.dumps(draft).replace(json.dumps(draft["subject"]), f'"{text}"')
    status, body = await call("a", "POST", "/api/v1/tickets", raw_body=raw.encode())
    assert (status, body["field"]) == (400, "<body>"), body
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count(Ticket.id))) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"customer_id": 987654, "recipient": "دادسرا", "letter_reference": "۱۲۳/ق"}, "customer_id"),
    ({"customer_id": 1, "recipient": "د" * 201, "letter_reference": "۱۲۳/ق"}, "recipient"),
    ({"customer_id": 1, "recipient": "دادسرا", "letter_reference": "۱" * 201}, "letter_reference"),
])
async def test_a_disclosure_for_an_unknown_customer_or_too_long_is_a_400(api, body, field):  # noqa: F811
    """Found by schemathesis: an unknown customer_id answered 500 (the foreign key), and so would a recipient
    longer than its column on PostgreSQL."""
    _world, call = api
    status, answer = await call("admin", "POST", "/api/v1/audit/disclosures", body)
    assert (status, answer["field"]) == (400, field), answer
