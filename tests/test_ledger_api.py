"""The ledger over HTTP: who may do what, and what a customer sees of their statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ledger_world import NOW, PER_TECH, PER_VISIT, make_ledger_world
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import issue_token
from monitor.clock import ManualClock
from tickets.ledger.models import LedgerEntry


@pytest.fixture
async def api(db):
    sm = db.sessionmaker
    w = await make_ledger_world(sm, secret="zz-secret")
    async with sm.begin() as s:
        tokens = {name: await issue_token(s, getattr(w, name).user_id, "t", NOW)
                  for name in ("tech", "lead", "finance", "alice", "bob")}
    app = build_app(WebDeps(sessionmaker=sm, clock=ManualClock(NOW), registry=CollectorRegistry()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async def call(who, method, path, **kw):
            resp = await client.request(method, f"/api/v1/ledger{path}",
                                        headers={"Authorization": f"Bearer {tokens[who]}"}, **kw)
            return resp.status, (await resp.json() if resp.content_type == "application/json"
                                 else await resp.text())
        yield w, call


def _visit_body(w) -> dict:
    return {"datacenter_id": w.dc, "ticket_id": w.ticket_a, "technician_ids": [w.tech.user_id],
            "departed_at": (NOW - timedelta(hours=4)).isoformat(), "returned_at": (NOW - timedelta(hours=1)).isoformat(),
            "cause": "customer_server", "notes": "disk controller"}


async def test_a_technician_records_a_visit_a_lead_approves_it_and_the_customer_sees_it_in_toman(api):
    w, call = api
    status, visit = await call("tech", "POST", "/visits", json=_visit_body(w))
    assert (status, visit["billing"], visit["technician_ids"]) == (201, "awaiting_approval", [w.tech.user_id])
    assert (await call("tech", "POST", f"/visits/{visit['id']}/approve"))[0] == 403
    for _ in range(2):
        status, approved = await call("lead", "POST", f"/visits/{visit['id']}/approve")
        assert (status, approved["billing"]) == (200, "bill")
    status, ledger = await call("finance", "GET", f"/customers/{w.customer_a}/entries")
    assert (status, ledger["balance_rials"]) == (200, PER_VISIT + PER_TECH)
    assert [e["kind"] for e in ledger["entries"]] == ["visit"]
    status, mine = await call("alice", "GET", f"/customers/{w.customer_a}/statements/1405/9")
    assert (status, mine["closing"], mine["lines"][0]["kind"]) == (
        200, "۳۲۵٬۰۰۰ تومان", "هزینهٔ مراجعه به دیتاسنتر")


async def test_finance_approves_or_rejects_a_visit_with_a_reason_over_the_api(api):
    w, call = api
    _, first = await call("tech", "POST", "/visits", json=_visit_body(w))
    _, second = await call("tech", "POST", "/visits", json=_visit_body(w))
    status, approved = await call("finance", "POST", f"/visits/{first['id']}/approve")
    assert (status, approved["billing"]) == (200, "bill")
    for body in ({}, {"reason": ""}, {"reason": "x" * 2001}):
        assert (await call("finance", "POST", f"/visits/{second['id']}/reject", json=body))[0] == 400, body
    assert (await call("tech", "POST", f"/visits/{second['id']}/reject", json={"reason": "no"}))[0] == 403
    assert (await call("alice", "POST", f"/visits/{second['id']}/reject", json={"reason": "no"}))[0] == 403
    status, rejected = await call("finance", "POST", f"/visits/{second['id']}/reject",
                                  json={"reason": "the customer had warned us"})
    assert (status, rejected["billing"], rejected["rejection_reason"]) == (200, "not_billable",
                                                                           "the customer had warned us")
    assert (await call("finance", "POST", f"/visits/{second['id']}/approve"))[0] == 400
    status, ledger = await call("finance", "GET", f"/customers/{w.customer_a}/entries")
    assert ledger["balance_rials"] == PER_VISIT + PER_TECH


async def test_a_customer_cannot_read_another_customers_statement_or_the_staff_ledger(api):
    w, call = api
    status, body = await call("alice", "GET", f"/customers/{w.customer_b}/statements/1405/9")
    assert status == 404 and "zz-secret" not in str(body)
    assert (await call("alice", "GET", f"/customers/{w.customer_a}/entries"))[0] == 403
    assert (await call("alice", "GET", f"/customers/{w.customer_a}/statements/1405/9/csv"))[0] == 403
    assert (await call("bob", "GET", f"/customers/{w.customer_b}/statements/1405/9"))[0] == 200


async def test_finance_imports_payments_all_or_nothing_and_gets_every_bad_row_back(api):
    w, call = api
    bad = f"customer_id,amount_rials,reference\n{w.customer_a},1000,A\n{w.customer_a},12.5,B\n0,5,C\n"
    status, body = await call("finance", "POST", "/payments/import", data=bad.encode())
    assert status == 400
    assert [(r["line"], r["field"]) for r in body["rows"]] == [(3, "amount_rials")]
    status, body = await call("finance", "GET", f"/customers/{w.customer_a}/entries")
    assert body["entries"] == []
    good = f"customer_id,amount_rials,reference\n{w.customer_a},1000,A\n{w.customer_b},2000,B\n"
    status, body = await call("finance", "POST", "/payments/import", data=good.encode())
    assert (status, body["imported"], body["total_rials"]) == (200, 2, 3000)
    assert (await call("tech", "POST", "/payments/import", data=good.encode()))[0] == 403


async def test_money_sent_as_a_float_is_refused_naming_the_field(api):
    w, call = api
    status, body = await call("finance", "POST", "/payments",
                              json={"customer_id": w.customer_a, "amount_rials": 1000.0, "reference": "R"})
    assert (status, body["field"]) == (400, "amount_rials")
    status, body = await call("finance", "POST", "/payments",
                              json={"customer_id": w.customer_a, "amount_rials": 1000, "reference": "R"})
    assert (status, body["entry"]["amount_rials"]) == (201, -1000)


async def test_finance_stores_and_exports_a_statement_in_rials(api):
    w, call = api
    await call("finance", "POST", "/payments", json={"customer_id": w.customer_a, "amount_rials": 70, "reference": "R"})
    status, stored = await call("finance", "POST", f"/customers/{w.customer_a}/statements/1405/9")
    assert (status, stored["closing_rials"], stored["entry_count"]) == (201, -70, 1)
    status, text = await call("finance", "GET", f"/customers/{w.customer_a}/statements/1405/9/csv")
    assert status == 200 and text.splitlines()[-1].startswith("closing,,,,-70")
    status, body = await call("finance", "GET", f"/customers/{w.customer_a}/statements/1405/13")
    assert (status, body["field"]) == (400, "month")


@pytest.mark.parametrize("amount", [2**63 - 1, 10**19, 10**15 + 1, True, "5000", 5000.0, 0, -1, None])
async def test_a_payment_amount_out_of_range_or_of_the_wrong_type_is_refused_and_nothing_is_written(
        api, db, amount):
    w, call = api
    status, body = await call("finance", "POST", "/payments",
                              json={"customer_id": w.customer_a, "amount_rials": amount, "reference": "R-x"})
    assert status == 400 and body["field"] == "amount_rials"
    async with db.sessionmaker() as s:
        assert await s.scalar(select(func.count(LedgerEntry.id))) == 0
    status, _ = await call("finance", "GET", f"/customers/{w.customer_a}/entries")
    assert status == 200  # the customer's ledger view still answers


@pytest.mark.parametrize("customer_id", [0, -5, 2**63, 10**30, True, "1"])
async def test_an_id_out_of_range_or_of_the_wrong_type_is_refused(api, customer_id):
    _w, call = api
    status, body = await call("finance", "POST", "/payments",
                              json={"customer_id": customer_id, "amount_rials": 5000, "reference": "R-y"})
    assert status == 400 and body["field"] == "customer_id"


@pytest.mark.parametrize("path_id", ["0", "9223372036854775808", "99999999999999999999999"])
async def test_a_path_id_out_of_range_is_answered_as_missing(api, path_id):
    _w, call = api
    status, _ = await call("finance", "GET", f"/customers/{path_id}/entries")
    assert status == 404


async def test_paying_a_fine_through_the_ledger_settles_it_once_and_refuses_to_overpay(api, db):
    from tickets.fines import post_fine
    from tickets.models import Fine

    w, call = api
    fine = await post_fine(db.sessionmaker, w.finance, w.ticket_a, amount_rials=700_000,
                           due_at=NOW + timedelta(days=7), now=NOW)
    pay = {"customer_id": w.customer_a, "fine_id": fine.id, "reference": "BANK-F1"}
    status, body = await call("finance", "POST", "/payments", json={**pay, "amount_rials": 700_001})
    assert (status, body["field"]) == (400, "amount_rials")  # more than the fine
    status, body = await call("finance", "POST", "/payments", json={**pay, "amount_rials": 700_000})
    assert status == 201 and body["created"] is True
    async with db.sessionmaker() as s:
        assert (await s.get(Fine, fine.id)).paid_at == NOW
    status, body = await call("finance", "POST", "/payments", json={**pay, "amount_rials": 700_000})
    assert status == 200 and body["created"] is False  # the replay
    status, body = await call("finance", "POST", "/payments",
                              json={**pay, "reference": "BANK-F2", "amount_rials": 1})
    assert (status, body["field"]) == (400, "amount_rials")  # nothing left to pay


@pytest.mark.parametrize(("scope", "status"), [("in", 400), ("out", 201), (None, 201)])
async def test_an_out_of_scope_charge_on_an_in_scope_ticket_is_refused(api, db, scope, status):
    from tickets.models import Ticket

    w, call = api
    async with db.sessionmaker.begin() as s:
        (await s.get(Ticket, w.ticket_a)).scope = scope
    got, body = await call("finance", "POST", "/items", json={
        "ticket_id": w.ticket_a, "kind": "out_of_scope", "amount_rials": 2_000_000, "description": "وردپرس"})
    assert got == status
    if status == 400:
        assert body["field"] == "kind"


async def test_a_csv_field_over_the_csv_limit_is_a_bad_file_not_a_crash(api):
    w, call = api
    text = f"customer_id,amount_rials,reference,fine_id\n{w.customer_a},5000,\"{'x' * 140_000}\",\n"
    status, body = await call("finance", "POST", "/payments/import", data=text.encode())
    assert status == 400 and body["rows"][0]["field"] == "<file>"


async def test_a_module_name_longer_than_its_column_is_refused(api):
    _w, call = api
    status, body = await call("finance", "POST", "/modules",
                              json={"name": "m" * 100_000, "reinstall_price_rials": 1000})
    assert (status, body["field"]) == (400, "name")
