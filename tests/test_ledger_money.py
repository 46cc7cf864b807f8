"""Rules 6-8 and 19 in the ledger: installs and reinstalls, priced items, fines and payments, balances, and
an append-only ledger corrected by reversals."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from ledger_world import NOW, entries, make_ledger_world, total
from sqlalchemy import func, select

from monitor.errors import AccessDenied
from tickets.fines import mark_fine_paid, overdue_fine, post_fine
from tickets.ledger.entries import balance
from tickets.ledger.errors import AppendOnly, LedgerInput, PaymentFileError
from tickets.ledger.fines import unpaid_overdue_fines
from tickets.ledger.installs import add_module, install_price_rials, record_install
from tickets.ledger.items import record_priced_item
from tickets.ledger.models import EntryKind, LedgerEntry, ModuleInstall
from tickets.ledger.payments import import_payments_csv, parse_payments_csv, record_payment, reverse_entry
from tickets.models import Package

REINSTALL = 1_200_000


@pytest.mark.parametrize(("sequence", "price"), [(1, 0), (2, REINSTALL), (3, REINSTALL), (10, REINSTALL)])
def test_the_first_install_is_free_and_every_reinstall_costs_the_reinstall_price(sequence, price):
    assert install_price_rials(sequence, REINSTALL) == price


async def test_installs_per_customer_and_module_charge_only_reinstalls(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    cpanel = await add_module(sessionmaker, w.finance, name="cpanel-backup", reinstall_price_rials=REINSTALL)
    other = await add_module(sessionmaker, w.admin, name="firewall", reinstall_price_rials=900_000)
    done = [await record_install(sessionmaker, w.tech, customer_id=c, module_id=m.id, now=NOW)
            for c, m in ((w.customer_a, cpanel), (w.customer_a, cpanel), (w.customer_b, cpanel),
                         (w.customer_a, other), (w.customer_a, cpanel))]
    assert [(i.sequence, i.price_rials, e is not None) for i, e in done] == [
        (1, 0, False), (2, REINSTALL, True), (1, 0, False), (1, 0, False), (3, REINSTALL, True)]
    assert await total(sessionmaker, customer_id=w.customer_a, kind="reinstall") == 2 * REINSTALL
    assert await total(sessionmaker, customer_id=w.customer_b) == 0


async def test_a_reinstall_is_charged_at_the_price_of_its_day(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    mod = await add_module(sessionmaker, w.finance, name="dns", reinstall_price_rials=REINSTALL)
    await record_install(sessionmaker, w.tech, customer_id=w.customer_a, module_id=mod.id, now=NOW)
    _, first = await record_install(sessionmaker, w.tech, customer_id=w.customer_a, module_id=mod.id,
                                    ticket_id=w.ticket_a, now=NOW)
    async with sessionmaker.begin() as s:
        (await s.get(type(mod), mod.id)).reinstall_price_rials = 2_000_000
    _, second = await record_install(sessionmaker, w.tech, customer_id=w.customer_a, module_id=mod.id, now=NOW)
    assert (first.amount_rials, first.ticket_id, second.amount_rials) == (REINSTALL, w.ticket_a, 2_000_000)


async def test_concurrent_installs_number_themselves_and_only_one_is_free_on_postgresql(pg_db):
    sm = pg_db.sessionmaker
    w = await make_ledger_world(sm)
    mod = await add_module(sm, w.finance, name="waf", reinstall_price_rials=REINSTALL)
    await asyncio.gather(*(record_install(sm, w.tech, customer_id=w.customer_a, module_id=mod.id, now=NOW)
                           for _ in range(4)))
    async with sm() as s:
        rows = (await s.execute(select(ModuleInstall.sequence, ModuleInstall.price_rials))).all()
    assert sorted(rows) == [(1, 0), (2, REINSTALL), (3, REINSTALL), (4, REINSTALL)]
    assert await total(sm) == 3 * REINSTALL


async def test_out_of_scope_work_and_packages_are_priced_items_tied_to_tickets(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    async with sessionmaker.begin() as s:
        pkg = Package(customer_id=w.customer_a, kind="management", starts_on=NOW.date(), ends_on=NOW.date(),
                      created_at=NOW)
        s.add(pkg)
    item, entry = await record_priced_item(sessionmaker, w.finance, ticket_id=w.ticket_a, kind="out_of_scope",
                                           amount_rials=3_000_000, description="WordPress repair", now=NOW)
    _, pentry = await record_priced_item(sessionmaker, w.lead, ticket_id=w.ticket_a, kind="package",
                                         amount_rials=15_000_000, package_id=pkg.id, now=NOW)
    assert (entry.kind, entry.customer_id, entry.ticket_id, entry.item_id) == (
        EntryKind.OUT_OF_SCOPE, w.customer_a, w.ticket_a, item.id)
    assert pentry.kind == EntryKind.PACKAGE
    assert await total(sessionmaker, customer_id=w.customer_a) == 18_000_000


@pytest.mark.parametrize(("change", "field"), [
    ({"amount_rials": 1.5}, "amount_rials"),
    ({"amount_rials": 0}, "amount_rials"),
    ({"amount_rials": "100"}, "amount_rials"),
    ({"kind": "hosting"}, "kind"),
    ({"ticket_id": 987654}, "ticket_id"),
    ({"package_id": "of-b"}, "package_id"),
])
async def test_a_bad_priced_item_is_refused_by_field_and_posts_nothing(sessionmaker, change, field):
    w = await make_ledger_world(sessionmaker)
    async with sessionmaker.begin() as s:
        pkg = Package(customer_id=w.customer_b, kind="management", starts_on=NOW.date(), ends_on=NOW.date(),
                      created_at=NOW)
        s.add(pkg)
    kw = {"ticket_id": w.ticket_a, "kind": "out_of_scope", "amount_rials": 10} | change
    kw["package_id"] = pkg.id if kw.get("package_id") == "of-b" else kw.get("package_id")
    with pytest.raises(LedgerInput) as caught:
        await record_priced_item(sessionmaker, w.finance, now=NOW, **kw)
    assert caught.value.field == field
    assert await entries(sessionmaker) == []


async def test_a_fine_posts_to_the_ledger_once_with_its_due_date(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    fine = await post_fine(sessionmaker, w.finance, w.ticket_a, amount_rials=5_000_000,
                           due_at=NOW + timedelta(days=7), now=NOW)
    [entry] = await entries(sessionmaker)
    assert (entry.kind, entry.amount_rials, entry.fine_id, entry.due_at, entry.idempotency_key) == (
        EntryKind.FINE, 5_000_000, fine.id, NOW + timedelta(days=7), f"fine:{fine.id}")
    from tickets.ledger.fines import post_fine_entry
    async with sessionmaker.begin() as s:
        again = await post_fine_entry(s, fine, now=NOW)
    assert again.id == entry.id and len(await entries(sessionmaker)) == 1


async def test_unpaid_overdue_fines_come_from_the_ledger_and_any_payment_naming_the_fine_settles_it(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    due = NOW + timedelta(days=7)
    fine = await post_fine(sessionmaker, w.finance, w.ticket_a, amount_rials=5_000_000, due_at=due, now=NOW)
    late = due + timedelta(seconds=1)
    async with sessionmaker() as s:
        assert await unpaid_overdue_fines(s, w.customer_a, due) == []  # due, not yet past due
        [unpaid] = await unpaid_overdue_fines(s, w.customer_a, late)
        assert (unpaid.fine_id, unpaid.outstanding_rials) == (fine.id, 5_000_000)
        assert await unpaid_overdue_fines(s, w.customer_b, late) == []
    await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=2_000_000,
                         reference="BANK-1", fine_id=fine.id, now=NOW)
    async with sessionmaker() as s:
        [unpaid] = await unpaid_overdue_fines(s, w.customer_a, late)
        assert unpaid.outstanding_rials == 3_000_000
    await import_payments_csv(sessionmaker, w.finance,
                              f"customer_id,amount_rials,reference,fine_id\n{w.customer_a},3000000,BANK-2,{fine.id}\n",
                              now=NOW)
    async with sessionmaker() as s:
        assert await unpaid_overdue_fines(s, w.customer_a, late) == []
        assert await overdue_fine(s, w.customer_a, late) is None  # the desk's suspension check agrees


async def test_the_desk_marking_a_fine_paid_records_the_payment_in_the_ledger(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    fine = await post_fine(sessionmaker, w.finance, w.ticket_a, amount_rials=700_000, due_at=NOW, now=NOW)
    late = NOW + timedelta(days=1)
    async with sessionmaker() as s:
        assert (await overdue_fine(s, w.customer_a, late)).id == fine.id
    await mark_fine_paid(sessionmaker, w.finance, fine.id, now=late)
    await mark_fine_paid(sessionmaker, w.finance, fine.id, now=late)
    assert [e.amount_rials for e in await entries(sessionmaker)] == [700_000, -700_000]
    async with sessionmaker() as s:
        assert await overdue_fine(s, w.customer_a, late) is None


async def test_a_cancelled_fine_is_reversed_and_no_longer_suspends(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    await post_fine(sessionmaker, w.finance, w.ticket_a, amount_rials=700_000, due_at=NOW, now=NOW)
    [entry] = await entries(sessionmaker)
    await reverse_entry(sessionmaker, w.finance, entry.id, reason="fined by mistake", now=NOW)
    await reverse_entry(sessionmaker, w.finance, entry.id, reason="clicked twice", now=NOW)
    assert [e.amount_rials for e in await entries(sessionmaker)] == [700_000, -700_000]
    async with sessionmaker() as s:
        assert await unpaid_overdue_fines(s, w.customer_a, NOW + timedelta(days=1)) == []


async def test_a_payment_reference_posts_once_and_a_reused_reference_is_refused(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    _, created = await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=1_000_000,
                                      reference="TRX-9", now=NOW)
    entry, again = await record_payment(sessionmaker, w.finance, customer_id=w.customer_a,
                                        amount_rials=1_000_000, reference="TRX-9", now=NOW)
    assert (created, again, entry.amount_rials, entry.kind) == (True, False, -1_000_000, EntryKind.PAYMENT)
    with pytest.raises(LedgerInput) as caught:
        await record_payment(sessionmaker, w.finance, customer_id=w.customer_b, amount_rials=5,
                             reference="TRX-9", now=NOW)
    assert caught.value.field == "reference"
    with pytest.raises(AccessDenied):
        await record_payment(sessionmaker, w.tech, customer_id=w.customer_a, amount_rials=5, reference="x",
                             now=NOW)
    async with sessionmaker() as s:
        assert await balance(s, w.customer_a) == -1_000_000


GOOD = "customer_id,amount_rials,reference,note\n{a},\"1,500,000\",R-1,first\n{a},۲۵۰۰۰۰۰,R-2,\n{b},700000,R-3,\n"


async def test_a_payment_file_imports_every_row_and_importing_it_again_adds_nothing(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    text = GOOD.format(a=w.customer_a, b=w.customer_b)
    first = await import_payments_csv(sessionmaker, w.finance, text, now=NOW)
    second = await import_payments_csv(sessionmaker, w.admin, text, now=NOW)
    assert (first.imported, first.already_imported, first.total_rials) == (3, 0, 4_700_000)
    assert (second.imported, second.already_imported) == (0, 3)
    assert await total(sessionmaker, customer_id=w.customer_a) == -4_000_000
    assert await total(sessionmaker, customer_id=w.customer_b) == -700_000


@pytest.mark.parametrize(("row", "field"), [
    ("{a},1500.5,R-9", "amount_rials"),
    ("{a},-100,R-9", "amount_rials"),
    ("{a},0,R-9", "amount_rials"),
    ("{a},,R-9", "amount_rials"),
    ("x{a},100,R-9", "customer_id"),
    ("987654,100,R-9", "customer_id"),
    ("{a},100,", "reference"),
    ("{a},100,R-1", "reference"),
    ("{b},100,R-9,{fine}", "fine_id"),
    ("{a},100", "<row>"),
])
async def test_a_bad_payment_row_names_its_line_and_field_and_nothing_is_imported(sessionmaker, row, field):
    w = await make_ledger_world(sessionmaker)
    fine = await post_fine(sessionmaker, w.finance, w.ticket_a, amount_rials=10, due_at=NOW, now=NOW)
    header = "customer_id,amount_rials,reference,fine_id\n"
    good = f"{w.customer_a},100,R-1,\n{w.customer_b},200,R-2,\n"
    bad = row.format(a=w.customer_a, b=w.customer_b, fine=fine.id) + ("," if row.count(",") == 2 else "")
    with pytest.raises(PaymentFileError) as caught:
        await import_payments_csv(sessionmaker, w.finance, header + good + bad + "\n", now=NOW)
    [err] = caught.value.errors
    assert (err.line, err.field) == (4, field)
    assert caught.value.field == f"line 4: {field}"
    assert [e.kind for e in await entries(sessionmaker)] == ["fine"]


def test_a_payment_file_reports_every_bad_row_and_a_missing_column():
    rows, errors = parse_payments_csv("customer_id,amount_rials,reference\n1,1.0,a\n2,5,b\n3,x,c\n")
    assert [(e.line, e.field) for e in errors] == [(2, "amount_rials"), (4, "amount_rials")] and len(rows) == 1
    _, errors = parse_payments_csv("customer_id,amount\n1,5\n")
    assert [(e.line, e.field) for e in errors] == [(1, "amount_rials")]


async def test_posted_entries_are_never_edited_or_deleted(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=10, reference="R",
                         now=NOW)
    with pytest.raises(AppendOnly):
        async with sessionmaker.begin() as s:
            (await s.execute(select(LedgerEntry))).scalar_one().amount_rials = 20
    with pytest.raises(AppendOnly):
        async with sessionmaker.begin() as s:
            await s.delete((await s.execute(select(LedgerEntry))).scalar_one())
    assert [e.amount_rials for e in await entries(sessionmaker)] == [-10]


async def test_a_reversal_is_not_itself_reversed_and_a_visit_charge_is_corrected_through_its_cause(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    entry, _ = await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=10,
                                    reference="R", now=NOW)
    reversal = await reverse_entry(sessionmaker, w.finance, entry.id, reason="wrong customer", now=NOW)
    assert reversal.amount_rials == 10
    with pytest.raises(LedgerInput):
        await reverse_entry(sessionmaker, w.finance, reversal.id, reason="again", now=NOW)
    with pytest.raises(LedgerInput) as caught:
        await reverse_entry(sessionmaker, w.finance, entry.id, reason=" ", now=NOW)
    assert caught.value.field == "reason"
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(LedgerEntry))).scalar_one() == 2
        assert await balance(s, w.customer_a) == 0


@pytest.mark.parametrize("sql", ["UPDATE ledger_entries SET amount_rials = 1",
                                 "UPDATE ledger_entries SET kind = 'payment', customer_id = customer_id",
                                 "DELETE FROM ledger_entries"])
async def test_the_database_itself_refuses_to_edit_or_delete_a_posted_entry(sessionmaker, sql):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    w = await make_ledger_world(sessionmaker)
    await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=10, reference="R",
                         now=NOW)
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessionmaker.begin() as s:
            await s.execute(text(sql))
    assert [e.amount_rials for e in await entries(sessionmaker)] == [-10]


async def test_a_ticket_link_may_still_be_cleared_on_an_entry(sessionmaker):
    from sqlalchemy import text

    w = await make_ledger_world(sessionmaker)
    await record_priced_item(sessionmaker, w.finance, ticket_id=w.ticket_a, kind="out_of_scope", amount_rials=5,
                             now=NOW)
    async with sessionmaker.begin() as s:
        await s.execute(text("UPDATE ledger_entries SET ticket_id = NULL"))
    assert [(e.ticket_id, e.amount_rials) for e in await entries(sessionmaker)] == [(None, 5)]
