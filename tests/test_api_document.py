"""The API's contract through the real HTTP interface: the OpenAPI document is built from the route
declarations, every error has one JSON shape, lists are paginated with a bounded limit, timestamps are RFC
3339; and a corpus of inputs that once answered 500 (found by tests/test_api_contract.py) stays a clear 4xx."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.web.app import ROUTE_TABLES, build_app
from dashboards.web.deps import WebDeps
from dashboards.web.openapi import openapi_path
from incidents.models import Incident
from monitor.accounts import Role, create_user, issue_token
from monitor.models import Customer, Service
from tickets.ledger.money import MAX_RIALS

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
async def api(db, clock):
    now = clock.now()
    async with db.sessionmaker.begin() as s:
        customers = [Customer(name=f"c{i}", display_name=f"C{i}", verified=True) for i in range(3)]
        s.add_all(customers)
        await s.flush()
        svc = Service(name="svc", customer_id=customers[0].id)
        s.add(svc)
        await s.flush()
        s.add(Incident(dedup_key="k", open_key="k", source="manual", severity="urgent", title="down",
                       service_id=svc.id, customer_id=customers[0].id, opened_at=now))
        tokens = {}
        for name, role, cid in (("admin", Role.ADMIN, None), ("cust", Role.CUSTOMER, customers[0].id)):
            user = await create_user(s, name, role, customer_id=cid)
            tokens[name] = await issue_token(s, user.id, "t", now)
    app = build_app(WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async def call(who, method, path, **kw):
            headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
            resp = await client.request(method, path, headers=headers, **kw)
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp, body

        yield call


def _assert_error_shape(body, status_field=None):
    assert set(body) >= {"error", "field", "reason"}, body
    assert isinstance(body["error"], str) and isinstance(body["reason"], str) and body["reason"]
    if status_field is not None:
        assert body["field"] == status_field, body


async def test_document_is_built_from_every_route_declaration(api):
    resp, doc = await api(None, "GET", "/api/v1/openapi.json")
    assert resp.status == 200 and doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]}
    entries = [e for t in ROUTE_TABLES for e in t.entries]
    for e in entries:
        op = doc["paths"][openapi_path(e.path)][e.method.lower()]
        assert op["x-roles"] == sorted(str(r) for r in e.roles) and op["x-public"] is e.public, e.path
        assert op["security"] == ([] if e.public else [{"bearer": []}, {"session": []}])
        assert "{" not in e.path or op["parameters"], f"{e.method} {e.path}: path parameters undocumented"
    assert sum(len(v) for v in doc["paths"].values()) == len(entries)
    # The bound the route validates is the bound the document states: one model for both.
    pay = doc["paths"]["/api/v1/ledger/payments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    amount = doc["components"]["schemas"][pay["$ref"].rsplit("/", 1)[1]]["properties"]["amount_rials"]
    assert amount["maximum"] == MAX_RIALS
    limit = next(p for p in doc["paths"]["/api/v1/incidents"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["in"] == "query" and limit["schema"]["maximum"] == 500


async def test_unknown_route_wrong_method_and_no_token_answer_the_error_shape(api):
    resp, body = await api(None, "GET", "/api/v1/no-such-thing")
    assert resp.status == 404
    _assert_error_shape(body)
    resp, body = await api("admin", "DELETE", "/api/v1/me")
    assert resp.status == 405 and "GET" in resp.headers["Allow"]
    _assert_error_shape(body)
    resp, body = await api(None, "GET", "/api/v1/me")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    _assert_error_shape(body, "Authorization")
    resp, body = await api("cust", "GET", "/api/v1/customers")
    assert resp.status == 403
    _assert_error_shape(body)


async def test_lists_are_paginated_with_a_bounded_limit(api):
    resp, body = await api("admin", "GET", "/api/v1/customers?limit=501")
    assert resp.status == 400
    _assert_error_shape(body, "limit")
    resp, first = await api("admin", "GET", "/api/v1/customers?limit=2")
    assert resp.status == 200 and [c["name"] for c in first] == ["c0", "c1"]
    assert re.fullmatch(r'<[^>]*page=2[^>]*>; rel="next"', resp.headers["Link"])
    resp, second = await api("admin", "GET", "/api/v1/customers?limit=2&page=2")
    assert [c["name"] for c in second] == ["c2"] and "Link" not in resp.headers


async def test_timestamps_are_rfc3339(api):
    resp, rows = await api("admin", "GET", "/api/v1/incidents")
    assert resp.status == 200 and rows
    assert RFC3339.match(rows[0]["opened_at"]), rows[0]["opened_at"]
    assert datetime.fromisoformat(rows[0]["opened_at"]).tzinfo is not None
    resp, one = await api("admin", "GET", f"/api/v1/incidents/{rows[0]['id']}")
    assert resp.status == 200 and RFC3339.match(one["opened_at"])


# Inputs that answered 500 before, as schemathesis found them: (who, method, path, body, status, field).
CORPUS = [
    ("admin", "GET", "/api/v1/tickets?customer_id=335", None, 404, None),
    ("admin", "POST", "/api/v1/desk/calendar/removals", {"day": "0087-06-24"}, 400, "day"),
    ("admin", "POST", "/api/v1/desk/calendar/closures", {"day": "9999-12-31"}, 400, "day"),
    ("admin", "GET", "/api/v1/desk/sla-report?year=99999&month=1", None, 400, "year"),
    ("admin", "GET", "/api/v1/ledger/customers/1/statements/99999/1", None, 400, "year"),
    ("admin", "DELETE", "/api/v1/desk/calendar/closure/0001-01-01", None, 400, "day"),
    ("admin", "POST", "/api/v1/packages", {"customer_id": 1, "kind": "management", "starts_on": "0001-01-01",
                                           "ends_on": "0002-01-01"}, 400, "starts_on"),
    ("admin", "GET", "/api/v1/services/99999999999999999999", None, 404, None),
    ("admin", "GET", "/api/v1/incidents?limit=0", None, 400, "limit"),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "status", "field"), CORPUS)
async def test_inputs_that_once_answered_500_get_a_clear_error(api, who, method, path, body, status, field):
    resp, answer = await api(who, method, path, json=body)
    assert resp.status == status, answer
    _assert_error_shape(answer, field)


async def test_a_second_tariff_starting_at_the_same_moment_is_refused_not_a_500(api, db):
    from monitor.models import Datacenter

    async with db.sessionmaker.begin() as s:
        dc = Datacenter(name="dc-1")
        s.add(dc)
        await s.flush()
    tariff = {"datacenter_id": dc.id, "per_visit_rials": 1, "effective_from": "2000-01-01T00:00:00Z"}
    resp, _ = await api("admin", "POST", "/api/v1/ledger/tariffs", json=tariff)
    assert resp.status == 201
    resp, answer = await api("admin", "POST", "/api/v1/ledger/tariffs", json=tariff)
    assert resp.status == 400, answer
    _assert_error_shape(answer, "effective_from")


async def test_a_login_form_with_a_non_ascii_csrf_token_is_refused_not_a_500(api):
    resp, page = await api(None, "POST", "/login", data={"username": "x", "password": "y", "csrf": "\u00e9t\u00e9"},
                           cookies={"ngb_login_csrf": "abc"})
    assert resp.status == 403 and "فرم منقضی" in page

