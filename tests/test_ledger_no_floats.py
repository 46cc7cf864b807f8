"""Money is a whole number of rials everywhere: no money column is a float or a scaled decimal, and the
ledger's code has no float value, float() call or true division that could turn rials into a float."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, Float, Integer, MetaData, Numeric, String, Table

from monitor.db import Base

ROOT = Path(__file__).resolve().parent.parent
MONEY_NAME = re.compile(r"rials|toman|amount|price|tariff|cost|fee|balance|opening|closing|charges|credits"
                        r"|payment|fine_total", re.I)
LEDGER_CODE = [*sorted((ROOT / "tickets" / "ledger").glob("*.py")), ROOT / "tickets" / "fines.py",
               ROOT / "dashboards" / "web" / "api_ledger.py"]


def money_column_problems(metadata: MetaData) -> list[str]:
    """Every money-named column must be an integer type; no column anywhere may be a scaled decimal."""
    problems = []
    for table in metadata.tables.values():
        for col in table.columns:
            kind = col.type
            scaled = isinstance(kind, Numeric) and not isinstance(kind, Float) and (kind.scale or 0) > 0
            if scaled:
                problems.append(f"{table.name}.{col.name} is a scaled decimal")
            if MONEY_NAME.search(col.name) and not col.foreign_keys and not isinstance(kind, String):
                if isinstance(kind, Float | Numeric) or not isinstance(kind, Integer | BigInteger):
                    problems.append(f"{table.name}.{col.name} is money but {kind!r}")
                elif col.name.endswith("_rials") and not isinstance(kind, BigInteger):
                    problems.append(f"{table.name}.{col.name} is rials but not a BigInteger")
    return problems


def float_money_in_code(source: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and type(node.value) is float:
            problems.append(f"line {node.lineno}: float literal {node.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
            problems.append(f"line {node.lineno}: float() call")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
            problems.append(f"line {node.lineno}: true division")
        elif isinstance(node, ast.alias) and node.name in {"Float", "Numeric", "DECIMAL", "REAL"}:
            problems.append(f"line {node.lineno}: imports {node.name}")
    return problems


def test_no_money_column_in_any_table_is_a_float_or_a_scaled_decimal():
    assert len(Base.metadata.tables) > 20  # every package's models are loaded (conftest)
    assert money_column_problems(Base.metadata) == []


def test_every_ledger_amount_is_a_bigint_of_rials():
    ledger_tables = [t for t in Base.metadata.tables.values()
                     if t.name.startswith(("ledger_", "datacenter_tariffs", "fines"))]
    money = [c for t in ledger_tables for c in t.columns if c.name.endswith("_rials")]
    assert len(money) >= 10
    assert all(isinstance(c.type, BigInteger) for c in money)


def test_the_column_check_catches_float_and_decimal_money():
    md = MetaData()
    Table("bad", md, Column("amount_rials", Float), Column("price", Numeric(12, 2)),
          Column("fee_rials", Integer), Column("latency_s", Float), Column("ok_rials", BigInteger))
    assert money_column_problems(md) == [
        "bad.amount_rials is money but Float()", "bad.price is a scaled decimal",
        "bad.price is money but Numeric(precision=12, scale=2)", "bad.fee_rials is rials but not a BigInteger"]


@pytest.mark.parametrize("path", LEDGER_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_ledgers_code_has_no_float_money(path):
    assert path.exists()
    assert float_money_in_code(path.read_text()) == []


@pytest.mark.parametrize(("source", "found"), [
    ("x = amount * 1.5", "float literal"),
    ("x = float(amount)", "float() call"),
    ("toman = rials / 10", "true division"),
    ("from sqlalchemy import Float", "imports Float"),
    ("toman, rem = divmod(rials, 10)", None),
])
def test_the_code_check_catches_float_money(source, found):
    problems = float_money_in_code(source)
    assert (found in problems[0]) if found else problems == []
