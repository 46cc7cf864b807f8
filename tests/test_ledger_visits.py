"""Rule 11: datacenter visits are billed to the customer only when the customer's server caused them and a
NOC lead or finance approved them; finance may reject one with a reason (never billed, a posted charge
reversed); a change of cause after billing is a reversal, never an edit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from ledger_world import NOW, PER_TECH, PER_VISIT, entries, make_ledger_world, total

from monitor.errors import AccessDenied
from tickets.ledger.entries import post
from tickets.ledger.errors import LedgerInput
from tickets.ledger.models import Cause, DatacenterTariff, EntryKind
from tickets.ledger.visits import (
    Billing,
    approve_visit,
    billing_decision,
    pending_visits,
    record_visit,
    reject_visit,
    set_cause,
    set_tariff,
    settle_visit,
)

TWO_TECHS = PER_VISIT + 2 * PER_TECH


@pytest.mark.parametrize(("cause", "approved", "decision"), [
    (Cause.CUSTOMER_SERVER, True, Billing.BILL),
    (Cause.CUSTOMER_SERVER, False, Billing.AWAITING_APPROVAL),
    (Cause.COMPANY_NETWORK, True, Billing.NOT_BILLABLE),
    (Cause.COMPANY_NETWORK, False, Billing.NOT_BILLABLE),
    (Cause.UNDETERMINED, True, Billing.BLOCKED_UNDETERMINED),
    (Cause.UNDETERMINED, False, Billing.BLOCKED_UNDETERMINED),
])
def test_billing_decision_follows_cause_and_approval(cause, approved, decision):
    assert billing_decision(cause, approved) is decision


async def _visit(sm, w, *, cause=Cause.CUSTOMER_SERVER, dc=None, techs=None, departed=None, **kw):
    departed = departed or NOW - timedelta(hours=3)
    return await record_visit(sm, w.tech, datacenter_id=dc or w.dc, ticket_id=kw.pop("ticket_id", w.ticket_a),
                              technician_ids=techs or [w.tech.user_id, w.tech2.user_id], departed_at=departed,
                              returned_at=departed + timedelta(hours=2), cause=cause, now=NOW, **kw)


@pytest.mark.parametrize(("cause", "approve", "billed"), [
    (Cause.CUSTOMER_SERVER, True, TWO_TECHS),
    (Cause.CUSTOMER_SERVER, False, 0),
    (Cause.COMPANY_NETWORK, True, 0),
    (Cause.UNDETERMINED, True, 0),
])
async def test_a_visit_is_billed_only_when_the_customers_server_caused_it_and_a_lead_approved(
        sessionmaker, cause, approve, billed):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w, cause=cause)
    if approve:
        await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    assert await total(sessionmaker, customer_id=w.customer_a) == billed
    assert await total(sessionmaker, customer_id=w.customer_b) == 0


async def test_an_undetermined_cause_blocks_billing_until_it_is_decided(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w, cause=Cause.UNDETERMINED)
    approved = await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    assert approved.approved_at == NOW and await entries(sessionmaker) == []
    await set_cause(sessionmaker, w.lead, visit.id, Cause.CUSTOMER_SERVER, now=NOW + timedelta(hours=1))
    [charge] = await entries(sessionmaker)
    assert (charge.kind, charge.amount_rials, charge.visit_id, charge.ticket_id) == (
        EntryKind.VISIT, TWO_TECHS, visit.id, w.ticket_a)


async def test_a_double_approval_bills_once(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w)
    await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    again = await approve_visit(sessionmaker, w.admin, visit.id, now=NOW + timedelta(minutes=5))
    assert (again.approved_at, again.approved_by_id) == (NOW, w.lead.user_id)
    assert [e.amount_rials for e in await entries(sessionmaker)] == [TWO_TECHS]


async def test_a_cause_change_after_billing_posts_a_reversal_that_nets_to_zero(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w)
    await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    [charge] = await entries(sessionmaker)
    later = NOW + timedelta(days=1)
    await set_cause(sessionmaker, w.lead, visit.id, Cause.COMPANY_NETWORK, now=later)
    first, reversal = await entries(sessionmaker)
    assert (first.id, first.amount_rials, first.posted_at, first.kind) == (
        charge.id, charge.amount_rials, charge.posted_at, EntryKind.VISIT)  # the posted charge is untouched
    assert (reversal.kind, reversal.reverses_id, reversal.amount_rials) == (
        EntryKind.REVERSAL, charge.id, -TWO_TECHS)
    assert await total(sessionmaker, visit_id=visit.id) == 0
    await set_cause(sessionmaker, w.lead, visit.id, Cause.COMPANY_NETWORK, now=later)  # no change: no entry
    assert len(await entries(sessionmaker)) == 2


async def test_a_cause_changed_back_bills_again_once(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w)
    await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    await set_cause(sessionmaker, w.lead, visit.id, Cause.UNDETERMINED, now=NOW)
    await set_cause(sessionmaker, w.lead, visit.id, Cause.CUSTOMER_SERVER, now=NOW)
    await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    kinds = [(e.kind, e.amount_rials) for e in await entries(sessionmaker)]
    assert kinds == [(EntryKind.VISIT, TWO_TECHS), (EntryKind.REVERSAL, -TWO_TECHS), (EntryKind.VISIT, TWO_TECHS)]
    assert await total(sessionmaker, visit_id=visit.id) == TWO_TECHS


async def test_the_tariff_in_force_at_departure_prices_the_visit_per_technician(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    await set_tariff(sessionmaker, w.finance, datacenter_id=w.dc, per_visit_rials=4_000_000,
                     per_technician_rials=1_000_000, effective_from=NOW - timedelta(days=1))
    old = await _visit(sessionmaker, w, departed=NOW - timedelta(days=2), techs=[w.tech.user_id])
    new = await _visit(sessionmaker, w, departed=NOW - timedelta(hours=5))
    for v in (old, new):
        await approve_visit(sessionmaker, w.lead, v.id, now=NOW)
    assert await total(sessionmaker, visit_id=old.id) == PER_VISIT + PER_TECH
    assert await total(sessionmaker, visit_id=new.id) == 4_000_000 + 2 * 1_000_000


async def test_approving_a_billable_visit_without_a_tariff_is_refused_and_writes_nothing(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w, dc=w.dc_free)
    with pytest.raises(LedgerInput) as caught:
        await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    assert caught.value.field == "datacenter_id"
    async with sessionmaker() as s:
        assert (await s.get(type(visit), visit.id)).approved_at is None
    assert await entries(sessionmaker) == []


async def test_a_visit_for_an_incident_bills_the_incidents_customer(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w, ticket_id=None, incident_id=w.incident_a)
    assert visit.customer_id == w.customer_a
    await approve_visit(sessionmaker, w.lead, visit.id, now=NOW)
    [charge] = await entries(sessionmaker)
    assert (charge.customer_id, charge.incident_id) == (w.customer_a, w.incident_a)


@pytest.mark.parametrize(("change", "field"), [
    ({"ticket_id": None}, "ticket_id"),
    ({"returned_at": NOW - timedelta(days=9)}, "returned_at"),
    ({"technician_ids": []}, "technician_ids"),
    ({"technician_ids": "alice"}, "technician_ids"),
    ({"cause": "weather"}, "cause"),
    ({"ticket_id": None, "incident_id": "infra"}, "customer_id"),
    ({"customer_id": "b"}, "customer_id"),
    ({"datacenter_id": 987654}, "datacenter_id"),
    ({"ticket_id": 987654}, "ticket_id"),
])
async def test_a_bad_visit_is_refused_naming_the_field_and_nothing_is_written(sessionmaker, change, field):
    w = await make_ledger_world(sessionmaker)
    subst = {"alice": [w.alice.user_id], "infra": w.infra_incident, "b": w.customer_b}
    kw = {"datacenter_id": w.dc, "ticket_id": w.ticket_a, "technician_ids": [w.tech.user_id],
          "departed_at": NOW - timedelta(hours=3), "returned_at": NOW, "cause": Cause.CUSTOMER_SERVER}
    kw |= {k: subst.get(v, v) if isinstance(v, str) and k != "cause" else v for k, v in change.items()}
    with pytest.raises(LedgerInput) as caught:
        await record_visit(sessionmaker, w.tech, now=NOW, **kw)
    assert caught.value.field == field
    async with sessionmaker() as s:
        from sqlalchemy import func, select

        from tickets.ledger.models import DatacenterVisit
        assert (await s.execute(select(func.count()).select_from(DatacenterVisit))).scalar_one() == 0


async def test_roles_technicians_record_leads_and_finance_approve_and_only_leads_change_an_approved_cause(
        sessionmaker):
    w = await make_ledger_world(sessionmaker)
    with pytest.raises(AccessDenied):
        await record_visit(sessionmaker, w.finance, datacenter_id=w.dc, ticket_id=w.ticket_a,
                           technician_ids=[w.tech.user_id], departed_at=NOW, returned_at=NOW, now=NOW)
    visit = await _visit(sessionmaker, w, cause=Cause.UNDETERMINED)
    await set_cause(sessionmaker, w.tech, visit.id, Cause.CUSTOMER_SERVER, now=NOW)  # before approval: fine
    for who in (w.tech, w.alice, w.bob):
        with pytest.raises(AccessDenied):
            await approve_visit(sessionmaker, who, visit.id, now=NOW)
        with pytest.raises(AccessDenied):
            await reject_visit(sessionmaker, who, visit.id, "no", now=NOW)
        with pytest.raises(AccessDenied):
            await pending_visits(sessionmaker, who)
    await approve_visit(sessionmaker, w.finance, visit.id, now=NOW)
    with pytest.raises(LedgerInput) as caught:
        await set_cause(sessionmaker, w.tech, visit.id, Cause.COMPANY_NETWORK, now=NOW)
    assert caught.value.field == "cause"
    assert await total(sessionmaker) == TWO_TECHS


async def test_concurrent_approvals_of_one_visit_in_separate_sessions_bill_once_on_postgresql(pg_db):
    sm = pg_db.sessionmaker
    w = await make_ledger_world(sm)
    visits = [await _visit(sm, w) for _ in range(3)]
    for visit in visits:
        results = await asyncio.gather(*(approve_visit(sm, lead, visit.id, now=NOW + timedelta(seconds=i))
                                         for i, lead in enumerate([w.lead, w.admin] * 4)))
        assert len({r.approved_at for r in results}) == 1
        assert [e.amount_rials for e in await entries(sm, visit_id=visit.id)] == [TWO_TECHS]


async def test_concurrent_settlements_without_the_approval_lock_still_bill_once_on_postgresql(pg_db):
    """The unique idempotency key alone holds: settle one approved visit from 8 sessions at once."""
    sm = pg_db.sessionmaker
    w = await make_ledger_world(sm)
    visit = await _visit(sm, w)
    await approve_visit(sm, w.lead, visit.id, now=NOW)
    await set_cause(sm, w.lead, visit.id, Cause.UNDETERMINED, now=NOW)
    async with sm.begin() as s:  # decide the cause back without settling, then race the settlements
        v = await s.get(type(visit), visit.id)
        v.cause, v.cause_version = Cause.CUSTOMER_SERVER, v.cause_version + 1
    start = asyncio.Event()

    async def settle():
        async with sm.begin() as s:
            v = await s.get(type(visit), visit.id)
            await start.wait()
            return await settle_visit(s, v, now=NOW)

    tasks = [asyncio.ensure_future(settle()) for _ in range(8)]
    await asyncio.sleep(0)  # let every task open its session before releasing them together
    start.set()
    assert set(await asyncio.gather(*tasks)) == {Billing.BILL}
    assert await total(sm, visit_id=visit.id) == TWO_TECHS
    assert len(await entries(sm, visit_id=visit.id, kind="visit")) == 2


async def test_concurrent_posts_of_one_key_leave_one_entry_on_postgresql(pg_db):
    sm = pg_db.sessionmaker
    w = await make_ledger_world(sm)

    async def one():
        async with sm.begin() as s:
            entry, created = await post(s, key="race:1", customer_id=w.customer_a, kind=EntryKind.FINE,
                                        amount_rials=10, now=NOW)
            return entry.id, created

    results = await asyncio.gather(*(one() for _ in range(8)))
    assert len({eid for eid, _ in results}) == 1 and sum(c for _, c in results) == 1
    assert len(await entries(sm)) == 1


async def test_setting_a_tariff_is_for_finance_and_refuses_float_rials(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    with pytest.raises(AccessDenied):
        await set_tariff(sessionmaker, w.tech, datacenter_id=w.dc, per_visit_rials=1, effective_from=NOW)
    with pytest.raises(LedgerInput) as caught:
        await set_tariff(sessionmaker, w.finance, datacenter_id=w.dc, per_visit_rials=1.5, effective_from=NOW)
    assert caught.value.field == "per_visit_rials"
    async with sessionmaker() as s:
        from sqlalchemy import select
        assert len((await s.execute(select(DatacenterTariff))).all()) == 1


async def test_concurrent_cause_changes_of_a_billed_visit_reverse_it_once_on_postgresql(pg_db):
    sm = pg_db.sessionmaker
    w = await make_ledger_world(sm)
    visit = await _visit(sm, w)
    await approve_visit(sm, w.lead, visit.id, now=NOW)
    await asyncio.gather(*(set_cause(sm, lead, visit.id, Cause.COMPANY_NETWORK, now=NOW)
                           for lead in [w.lead, w.admin] * 3))
    assert [e.kind for e in await entries(sm, visit_id=visit.id)] == ["visit", "reversal"]
    assert await total(sm, visit_id=visit.id) == 0
    async with sm() as s:
        assert (await s.get(type(visit), visit.id)).cause_version == 2


def test_a_rejected_visit_is_never_billable():
    for cause in Cause:
        for approved in (True, False):
            assert billing_decision(cause, approved, rejected=True) is Billing.NOT_BILLABLE


async def test_finance_rejects_a_visit_with_a_reason_and_it_is_not_billed_nor_approvable(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w)
    for bad in ("", "   "):
        with pytest.raises(LedgerInput) as caught:
            await reject_visit(sessionmaker, w.finance, visit.id, bad, now=NOW)
        assert caught.value.field == "reason"
    with pytest.raises(LedgerInput):
        await reject_visit(sessionmaker, w.finance, visit.id, "x" * 2001, now=NOW)
    rejected = await reject_visit(sessionmaker, w.finance, visit.id, "  مشتری قبلاً اطلاع داده بود  ", now=NOW)
    assert (rejected.rejected_at, rejected.rejection_reason) == (NOW, "مشتری قبلاً اطلاع داده بود")
    again = await reject_visit(sessionmaker, w.lead, visit.id, "another", now=NOW + timedelta(hours=1))
    assert (again.rejected_at, again.rejection_reason, again.rejected_by_id) == (
        NOW, "مشتری قبلاً اطلاع داده بود", w.finance.user_id)
    with pytest.raises(LedgerInput) as caught:
        await approve_visit(sessionmaker, w.finance, visit.id, now=NOW)
    assert caught.value.field == "visit"
    assert await entries(sessionmaker) == [] and await pending_visits(sessionmaker, w.finance) == []


async def test_rejecting_an_approved_visit_reverses_its_charge(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    visit = await _visit(sessionmaker, w)
    await approve_visit(sessionmaker, w.finance, visit.id, now=NOW)
    assert await total(sessionmaker, customer_id=w.customer_a) == TWO_TECHS
    await reject_visit(sessionmaker, w.finance, visit.id, "duplicate visit record", now=NOW + timedelta(hours=1))
    rows = await entries(sessionmaker)
    assert [e.amount_rials for e in rows] == [TWO_TECHS, -TWO_TECHS] and rows[1].reverses_id == rows[0].id
    assert await total(sessionmaker, customer_id=w.customer_a) == 0


async def test_pending_visits_list_the_undecided_with_the_charge_approving_would_post(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    billable = await _visit(sessionmaker, w)
    undetermined = await _visit(sessionmaker, w, cause=Cause.UNDETERMINED, departed=NOW - timedelta(hours=1))
    await _visit(sessionmaker, w, cause=Cause.COMPANY_NETWORK)  # never billed: not awaiting anything
    no_tariff = await _visit(sessionmaker, w, dc=w.dc_free, departed=NOW - timedelta(minutes=30))
    approved = await _visit(sessionmaker, w)
    await approve_visit(sessionmaker, w.lead, approved.id, now=NOW)
    pending = await pending_visits(sessionmaker, w.finance)
    assert [p.visit.id for p in pending] == [billable.id, undetermined.id, no_tariff.id]
    assert [p.charge_rials for p in pending] == [TWO_TECHS, TWO_TECHS, None]
    assert pending[0].customer == "acme" and pending[0].technicians == 2 and pending[0].datacenter == "afranet"
    with pytest.raises(LedgerInput) as caught:
        await approve_visit(sessionmaker, w.finance, undetermined.id, now=NOW, decided_only=True)
    assert caught.value.field == "cause"
