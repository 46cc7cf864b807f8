"""Rule 13: departments and the fields each one requires.

Built-in defaults (technical, financial, sales) can be overridden or extended by rows of ``departments``.
A draft is a flat mapping (``department``, ``service_id``, ``subject``, ``body``, ``priority`` and the
department's own fields such as ``server_address``); ``description`` is the draft's ``body``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Department, Priority

__all__ = ["DepartmentRule", "DEFAULT_DEPARTMENTS", "FIELD_LABELS", "load_departments", "missing_fields",
           "field_value", "TECHNICAL", "FINANCIAL", "SALES"]

TECHNICAL, FINANCIAL, SALES = "technical", "financial", "sales"


@dataclass(frozen=True)
class DepartmentRule:
    key: str
    name_fa: str
    required_fields: tuple[str, ...] = ()
    forced_priority: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # Persian names of the department's own fields


DEFAULT_DEPARTMENTS = {
    TECHNICAL: DepartmentRule(TECHNICAL, "فنی", ("service_id", "server_address", "description", "started_at")),
    FINANCIAL: DepartmentRule(FINANCIAL, "مالی", ("invoice_number",), Priority.NORMAL),
    SALES: DepartmentRule(SALES, "فروش", (), Priority.NORMAL),
}

FIELD_LABELS = {
    "department": "واحد", "subject": "موضوع", "body": "متن درخواست", "description": "شرح مشکل",
    "service_id": "سرویس", "server_address": "نشانی سرور (نشانی آی‌پی یا نام میزبان)",
    "started_at": "زمان شروع مشکل", "invoice_number": "شماره فاکتور", "priority": "اولویت",
}


async def load_departments(session: AsyncSession) -> dict[str, DepartmentRule]:
    rules = dict(DEFAULT_DEPARTMENTS)
    for row in (await session.execute(select(Department))).scalars():
        if not row.active:
            rules.pop(row.key, None)
            continue
        rules[row.key] = DepartmentRule(row.key, row.name_fa, tuple(row.required_fields or ()),
                                        row.forced_priority, dict(row.field_labels or {}))
    return rules


def field_value(draft: Mapping[str, Any], name: str) -> Any:
    return draft.get("body") if name == "description" else draft.get(name)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_fields(draft: Mapping[str, Any], rule: DepartmentRule) -> list[str]:
    """Every field ``rule`` requires that ``draft`` lacks (subject always required), in the rule's order."""
    wanted = ("subject", *rule.required_fields)
    if "description" not in rule.required_fields:
        wanted += ("body",)
    return [name for name in wanted if _blank(field_value(draft, name))]
