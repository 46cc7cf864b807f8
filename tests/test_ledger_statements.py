"""Monthly statements: totals equal the sum of entries for any sequence of charges, payments and reversals;
customers read only their own, in toman with Persian digits and Jalali dates; finance gets rials in CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_world import NOW, make_ledger_world
from sqlalchemy import select, text

from monitor.db import make_engine, make_sessionmaker
from monitor.errors import AccessDenied, NotFound
from monitor.models import Customer
from tickets.ledger.entries import balance, post, reverse
from tickets.ledger.format import jalali_fa, statement_csv, statement_fa, toman_fa
from tickets.ledger.models import CHARGE_KINDS, EntryKind, LedgerEntry, Statement
from tickets.ledger.payments import record_payment
from tickets.ledger.statements import (
    Line,
    build_statement,
    generate_month,
    generate_statement,
    month_span,
    month_statement,
    previous_jalali_month,
    read_statement,
)

AZAR_STARTS = datetime(2026, 11, 21, 20, 30, tzinfo=UTC)  # 1 Azar 1405, 00:00 in Tehran


@pytest.mark.parametrize(("rials", "shown"), [
    (0, "۰ تومان"),
    (10, "۱ تومان"),
    (15, "۱٫۵ تومان"),
    (12_345_670, "۱٬۲۳۴٬۵۶۷ تومان"),
    (-25_000_000, "−۲٬۵۰۰٬۰۰۰ تومان"),
    (9_007_199_254_740_993_0, "۹٬۰۰۷٬۱۹۹٬۲۵۴٬۷۴۰٬۹۹۳ تومان"),  # past a float's exact integers
])
def test_rials_are_shown_to_customers_as_toman_in_persian_digits(rials, shown):
    assert toman_fa(rials) == shown


def test_a_float_is_never_formatted_as_money():
    with pytest.raises(TypeError):
        toman_fa(1000.0)


@pytest.mark.parametrize(("at", "shown"), [
    (datetime(2026, 11, 26, 8, 0, tzinfo=UTC), "۱۴۰۵/۰۹/۰۵"),
    (datetime(2026, 11, 26, 20, 29, tzinfo=UTC), "۱۴۰۵/۰۹/۰۵"),
    (datetime(2026, 11, 26, 20, 30, tzinfo=UTC), "۱۴۰۵/۰۹/۰۶"),  # midnight in Tehran
    (datetime(2026, 3, 20, 20, 30, tzinfo=UTC), "۱۴۰۵/۰۱/۰۱"),
])
def test_dates_are_jalali_in_tehran_time(at, shown):
    assert jalali_fa(at) == shown


@pytest.mark.parametrize(("now", "month"), [
    (AZAR_STARTS, (1405, 8)),
    (AZAR_STARTS - timedelta(seconds=1), (1405, 7)),
    (datetime(2026, 3, 20, 20, 30, tzinfo=UTC), (1404, 12)),  # 1 Farvardin 1405 in Tehran
])
def test_the_monthly_job_stores_the_month_that_just_ended_in_tehran(now, month):
    assert previous_jalali_month(now) == month


def test_a_month_runs_from_tehran_midnight_to_tehran_midnight():
    start, end = month_span(1405, 9)
    assert (start, end) == (AZAR_STARTS, datetime(2026, 12, 21, 20, 30, tzinfo=UTC))
    lines = [Line(1, AZAR_STARTS - timedelta(seconds=1), "fine", 7), Line(2, AZAR_STARTS, "fine", 11),
             Line(3, end, "fine", 13)]
    assert [ln.entry_id for ln in build_statement(1, 1405, 9, 0, lines).lines] == [2]


ENTRY_KINDS = [k.value for k in CHARGE_KINDS]
charge = st.tuples(st.just("charge"), st.sampled_from(ENTRY_KINDS), st.integers(1, 10**13), st.integers(0, 120))
payment = st.tuples(st.just("payment"), st.just("payment"), st.integers(1, 10**13), st.integers(0, 120))
reversal = st.tuples(st.just("reverse"), st.just(""), st.integers(0, 50), st.integers(0, 120))
OPS = st.lists(st.one_of(charge, payment, reversal), max_size=25)
OPENING = st.integers(-(10**14), 10**14)


def _lines(ops) -> list[Line]:
    """The entries the ops post: a reversal negates an earlier, not yet reversed, non-reversal entry."""
    lines: list[Line] = []
    reversed_ids: set[int] = set()
    for op, kind, n, day in ops:
        at = AZAR_STARTS - timedelta(days=30) + timedelta(days=day, minutes=len(lines))
        if op == "reverse":
            open_ = [ln for ln in lines if ln.kind != "reversal" and ln.entry_id not in reversed_ids]
            if not open_:
                continue
            target = open_[n % len(open_)]
            reversed_ids.add(target.entry_id)
            lines.append(Line(len(lines) + 1, at, "reversal", -target.amount_rials, reverses_id=target.entry_id))
        else:
            lines.append(Line(len(lines) + 1, at, kind, n if op == "charge" else -n))
    return lines


@settings(max_examples=200, deadline=None)
@given(OPS, OPENING)
def test_a_statements_total_is_the_sum_of_its_entries_for_any_charges_payments_and_reversals(ops, opening):
    lines = _lines(ops)
    months = [(1405, m) for m in range(8, 13)]  # every month the ops can reach
    carried = opening
    for jy, jm in months:
        view = build_statement(7, jy, jm, carried, lines)
        inside = [ln for ln in lines if view.period_start <= ln.posted_at < view.period_end]
        assert view.total_rials == sum(ln.amount_rials for ln in inside)
        assert view.charges_rials + view.credits_rials == view.total_rials
        assert view.closing_rials == carried + view.total_rials
        assert statement_csv(view).count("\n") == len(inside) + 4
        carried = view.closing_rials
    assert carried == opening + sum(ln.amount_rials for ln in lines)


def _run_in_thread(coro_fn):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


async def _post_ops(sm, customer_id: int, ops) -> None:
    """Post the ops through the real ledger (charges, payments, reversals) at their times."""
    async with sm.begin() as s:
        posted: list[LedgerEntry] = []
        for i, line in enumerate(_lines(ops)):
            if line.kind == "reversal":
                target = posted[line.reverses_id - 1]  # a line's entry_id is its 1-based position
                entry, _ = await reverse(s, target, now=line.posted_at)
            else:
                entry, _ = await post(s, key=f"prop:{i}", customer_id=customer_id, kind=EntryKind(line.kind),
                                      amount_rials=line.amount_rials, now=line.posted_at)
            posted.append(entry)


async def _check_db_statements(sm, customer_id: int, ops) -> None:
    await _post_ops(sm, customer_id, ops)
    expected = _lines(ops)
    await generate_month(sm, 1405, 9, now=NOW)
    async with sm() as s:
        start, end = month_span(1405, 9)
        view = await month_statement(s, customer_id, 1405, 9)
        assert view.opening_rials == sum(ln.amount_rials for ln in expected if ln.posted_at < start)
        assert view.total_rials == sum(ln.amount_rials for ln in expected if start <= ln.posted_at < end)
        assert view.closing_rials == await balance(s, customer_id, before=end)
        stored = (await s.execute(select(Statement))).scalars().all()
        if expected:
            [row] = stored
            assert (row.opening_rials, row.charges_rials + row.credits_rials, row.closing_rials) == (
                view.opening_rials, view.total_rials, view.closing_rials)
        assert await balance(s, customer_id) == sum(ln.amount_rials for ln in expected)


async def _fresh_db(kind: str, request, tmp_path_factory):
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("prop") / "p.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return make_engine(f"sqlite+aiosqlite:///{path}")
    engine = make_engine(request.getfixturevalue("pg_url"))
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE ledger_statements, ledger_entries, customers RESTART IDENTITY CASCADE"))
    return engine


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_stored_statements_equal_the_sum_of_entries_on_the_database(kind, request, tmp_path_factory):
    request.getfixturevalue("sqlite_template" if kind == "sqlite" else "pg_url")

    @settings(max_examples=20 if kind == "sqlite" else 10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(OPS)
    def prop(ops):
        async def run():
            engine = await _fresh_db(kind, request, tmp_path_factory)
            try:
                sm = make_sessionmaker(engine)
                async with sm.begin() as s:
                    c = Customer(name="prop")
                    s.add(c)
                    await s.flush()
                    cid = c.id
                await _check_db_statements(sm, cid, ops)
            finally:
                await engine.dispose()

        _run_in_thread(run)

    prop()


async def test_a_customer_reads_only_their_own_statement_in_toman(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=1_234_560,
                         reference="P-1", now=NOW)
    await post_and_fine(sessionmaker, w)
    mine = await read_statement(sessionmaker, w.alice, w.customer_a, 1405, 9)
    shown = statement_fa(mine)
    assert shown["month"] == "آذر ۱۴۰۵"
    assert [(ln["date"], ln["amount"]) for ln in shown["lines"]] == [
        ("۱۴۰۵/۰۹/۰۵", "−۱۲۳٬۴۵۶ تومان"), ("۱۴۰۵/۰۹/۰۵", "۵۰۰٬۰۰۰ تومان")]
    assert shown["closing"] == "۳۷۶٬۵۴۴ تومان"
    with pytest.raises(NotFound):
        await read_statement(sessionmaker, w.alice, w.customer_b, 1405, 9)
    theirs = await read_statement(sessionmaker, w.finance, w.customer_b, 1405, 9)
    assert theirs.lines == ()


async def post_and_fine(sm, w) -> None:
    from tickets.fines import post_fine
    await post_fine(sm, w.finance, w.ticket_a, amount_rials=5_000_000, due_at=NOW, now=NOW + timedelta(hours=1))


async def test_finance_stores_a_statement_in_rials_and_exports_it_as_csv(sessionmaker):
    w = await make_ledger_world(sessionmaker)
    await record_payment(sessionmaker, w.finance, customer_id=w.customer_a, amount_rials=2_000_000,
                         reference="P-0", now=AZAR_STARTS - timedelta(days=3))
    await post_and_fine(sessionmaker, w)
    with pytest.raises(AccessDenied):
        await generate_statement(sessionmaker, w.alice, w.customer_a, 1405, 9, now=NOW)
    row = await generate_statement(sessionmaker, w.finance, w.customer_a, 1405, 9, now=NOW)
    again = await generate_statement(sessionmaker, w.finance, w.customer_a, 1405, 9, now=NOW)
    assert row.id == again.id
    assert (row.opening_rials, row.charges_rials, row.credits_rials, row.closing_rials, row.entry_count) == (
        -2_000_000, 5_000_000, 0, 3_000_000, 1)
    view = await read_statement(sessionmaker, w.finance, w.customer_a, 1405, 9)
    rows = list(csv.reader(io.StringIO(statement_csv(view))))
    assert rows[1][3:5] == ["fine", "5000000"] and rows[1][2] == "1405/09/05"
    assert [r[:1] + r[4:5] for r in rows[2:]] == [["opening", "-2000000"], ["total", "5000000"],
                                                  ["closing", "3000000"]]
