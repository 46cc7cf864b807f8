"""Ledger metrics: visits by datacenter and billing state, billed rials by kind net of reversals."""

from __future__ import annotations

from datetime import timedelta

from ledger_world import NOW, PER_TECH, PER_VISIT, make_ledger_world
from prometheus_client import CollectorRegistry

from tickets.ledger.installs import add_module, record_install
from tickets.ledger.metrics import register_ledger_collector
from tickets.ledger.models import Cause
from tickets.ledger.payments import record_payment
from tickets.ledger.visits import approve_visit, record_visit, set_cause


async def test_visits_by_datacenter_and_billing_and_billed_rials_by_kind(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    registry = CollectorRegistry()
    collector = register_ledger_collector(registry)
    visits = []
    for cause, dc in ((Cause.CUSTOMER_SERVER, w.dc), (Cause.CUSTOMER_SERVER, w.dc), (Cause.COMPANY_NETWORK, w.dc),
                      (Cause.UNDETERMINED, w.dc_free)):
        visits.append(await record_visit(sessionmaker, w.tech, datacenter_id=dc, ticket_id=w.ticket_a,
                                         technician_ids=[w.tech.user_id], departed_at=NOW - timedelta(hours=2),
                                         returned_at=NOW, cause=cause, now=NOW))
    for v in visits[:3]:
        await approve_visit(sessionmaker, w.lead, v.id, now=NOW)
    await set_cause(sessionmaker, w.lead, visits[1].id, Cause.COMPANY_NETWORK, now=NOW)  # billed, then reversed
    mod = await add_module(sessionmaker, w.finance, name="backup", reinstall_price_rials=300)
    for _ in range(3):
        await record_install(sessionmaker, w.tech, customer_id=w.customer_b, module_id=mod.id, now=NOW)
    await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=99, reference="R",
                         now=NOW)
    assert registry.get_sample_value("negahban_ledger_visits", {"datacenter": "afranet", "billing": "bill"}) is None
    await collector.refresh_with(sessionmaker)

    def visits_of(dc, billing):
        return registry.get_sample_value("negahban_ledger_visits", {"datacenter": dc, "billing": billing})

    assert visits_of("afranet", "bill") == 1
    assert visits_of("afranet", "not_billable") == 2
    assert visits_of("asiatech", "blocked_undetermined") == 1
    assert registry.get_sample_value("negahban_ledger_billed_rials", {"kind": "visit"}) == PER_VISIT + PER_TECH
    assert registry.get_sample_value("negahban_ledger_billed_rials", {"kind": "reinstall"}) == 600
    assert registry.get_sample_value("negahban_ledger_billed_rials", {"kind": "fine"}) == 0
    assert registry.get_sample_value("negahban_ledger_payments_rials") == 99
