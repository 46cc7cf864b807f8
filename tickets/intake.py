"""Ticket intake: the customer's draft checked against the support terms, then stored in one transaction.

The checks, in the order a customer meets them (each failure is a :class:`tickets.errors.Refusal` with a
code, the field, a Persian message and the draft handed back; nothing is stored):

====================  ========================  =====================================================
rule                  code                      when
====================  ========================  =====================================================
3                     customer_not_verified     the customer's identity is not verified
13                    unknown_department        no such department
19                    support_suspended         a fine is unpaid past its due date (financial allowed)
3                     service_not_owned         the service is not the caller's (or does not exist)
13                    missing_fields            every required field that is missing, listed
1                     text_finglish/arabic/...  subject or body not Persian in Persian script
14                    invalid_priority          not urgent / important / normal
15                    reference_not_found       the referenced (closed) ticket is not the caller's
16                    duplicate                 an open ticket asks the same thing (its id is given)
====================  ========================  =====================================================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role, scope
from monitor.models import Customer, Service
from tickets import kb
from tickets.calendar import load_calendar
from tickets.departments import FIELD_LABELS, FINANCIAL, DepartmentRule, load_departments, missing_fields
from tickets.duplicates import find_duplicate
from tickets.errors import DuplicateTicket, MissingFields, NotAllowed, Refusal, SupportSuspended
from tickets.fines import overdue_fine
from tickets.models import Source, Status, Ticket
from tickets.persian import fa_digits, require_persian
from tickets.priority import HasOpenIncident, choose_priority, no_incident_known, urgent_flag
from tickets.sla import SlaTargets, first_response_due

__all__ = ["check_draft", "open_ticket", "DRAFT_FIELDS"]

log = logging.getLogger("negahban.tickets")

DRAFT_FIELDS = ("department", "service_id", "subject", "body", "priority", "server_address", "started_at",
                "invoice_number", "references_ticket_id", "shown_article_ids")


MAX_DRAFT_KEYS = 40


_ID_FIELDS = ("service_id", "references_ticket_id")


def _check_type(name: str, value: Any) -> None:
    """A draft's known field holds text, or for ids a whole number in range; a list or a dict is refused."""
    if value is None:
        return
    if name in _ID_FIELDS:
        ok = type(value) is int and 1 <= value < 2**63
    elif name == "shown_article_ids":
        ok = isinstance(value, list) and all(type(v) is int for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise Refusal("invalid_field", name, "مقدار این بخش نامعتبر است.")


def _clean(draft: Mapping[str, Any]) -> dict[str, Any]:
    """The draft's known fields first, then a configured department's own (plain values, bounded)."""
    if not isinstance(draft, Mapping):
        raise Refusal("invalid_draft", None, "پیش‌نویس درخواست نامعتبر است.")
    known = {k: draft[k] for k in DRAFT_FIELDS if k in draft}
    for name, value in known.items():
        _check_type(name, value)
    extra = {str(k): v for k, v in draft.items() if k not in known and isinstance(v, str | int | float | None)}
    return known | dict(list(extra.items())[: MAX_DRAFT_KEYS - len(known)])


async def _department(session: AsyncSession, draft: dict) -> DepartmentRule:
    rules = await load_departments(session)
    rule = rules.get(draft.get("department") or "")
    if rule is None:
        names = "، ".join(r.name_fa for r in rules.values())
        raise Refusal("unknown_department", "department", f"واحد را انتخاب کنید: {names}.",
                      extra={"departments": sorted(rules)})
    return rule


async def _verified_customer(session: AsyncSession, principal: Principal) -> Customer:
    require_role(principal, {Role.CUSTOMER})
    customer = await session.get(Customer, principal.customer_id)
    if customer is None or not customer.verified:
        raise NotAllowed("customer_not_verified", None,
                         "پشتیبانی فقط به مالک اصلی سرویس پس از تأیید هویت او ارائه می‌شود. لطفاً ابتدا "
                         "هویت خود را در سامانهٔ فروش تأیید کنید.")
    return customer


async def _check_suspension(session: AsyncSession, customer_id: int, rule: DepartmentRule, now) -> None:
    fine = await overdue_fine(session, customer_id, now)
    if fine is not None and rule.key != FINANCIAL:
        raise SupportSuspended(
            "support_suspended", "department",
            "به دلیل جریمهٔ پرداخت‌نشده‌ای که مهلت آن گذشته، پشتیبانی شما معلق است. تا پرداخت جریمه فقط "
            "تیکت واحد مالی پذیرفته می‌شود.", extra={"fine_id": fine.id, "amount_rials": fine.amount_rials})


async def _owned_service(session: AsyncSession, principal: Principal, service_id: Any) -> int | None:
    if service_id in (None, ""):
        return None
    refusal = NotAllowed("service_not_owned", "service_id",
                         "این سرویس در حساب شما نیست؛ فقط مالک یک سرویس می‌تواند برای آن تیکت باز کند.")
    try:
        service_id = int(service_id)
    except (TypeError, ValueError):
        raise refusal from None
    stmt = scope(select(Service.id).where(Service.id == service_id), principal, Service.customer_id)
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise refusal
    return service_id


def _require_fields(draft: dict, rule: DepartmentRule) -> None:
    missing = missing_fields(draft, rule)
    if missing:
        labels = "، ".join(rule.labels.get(m) or FIELD_LABELS.get(m, m) for m in missing)
        raise MissingFields("missing_fields", missing[0], f"این موارد را کامل کنید: {labels}.",
                            extra={"missing": missing})


async def _reference(session: AsyncSession, principal: Principal, ref: Any) -> int | None:
    if ref in (None, ""):
        return None
    refusal = Refusal("reference_not_found", "references_ticket_id", "تیکت ارجاع‌شده در حساب شما پیدا نشد.")
    try:
        ref = int(ref)
    except (TypeError, ValueError):
        raise refusal from None
    stmt = scope(select(Ticket.id).where(Ticket.id == ref), principal, Ticket.customer_id)
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise refusal
    return ref


def _shown(draft: dict) -> list[int]:
    try:
        return sorted({int(i) for i in draft.get("shown_article_ids") or []})
    except (TypeError, ValueError):
        raise Refusal("invalid_article_ids", "shown_article_ids", "فهرست مقاله‌های نمایش‌داده‌شده نامعتبر است.") from None


async def _check_duplicate(session: AsyncSession, customer_id: int, service_id, rule, subject, body) -> None:
    dup = await find_duplicate(session, customer_id=customer_id, service_id=service_id, department=rule.key,
                               text=f"{subject}\n{body}")
    if dup is not None:
        raise DuplicateTicket("duplicate", "body",
                              f"برای همین درخواست تیکت بازِ شمارهٔ {fa_digits(dup.id)} را دارید؛ لطفاً پیام خود را در همان "
                              "تیکت بفرستید و تیکت تکراری باز نکنید.", extra={"duplicate_of": dup.id})


async def check_draft(sm: async_sessionmaker, principal: Principal, draft: Mapping[str, Any], *,
                      now: datetime) -> dict:
    """What intake would say about ``draft`` now: matching articles, missing fields, text problems."""
    draft = _clean(draft)
    problems: list[dict] = []
    async with sm() as session:
        await _verified_customer(session, principal)
        articles = await kb.suggest(session, draft)
        missing = []
        try:
            await _owned_service(session, principal, draft.get("service_id"))
            missing = missing_fields(draft, await _department(session, draft))
        except Refusal as r:
            problems.append(r.payload() | {"draft": None})
    for name in ("subject", "body"):
        if draft.get(name):
            try:
                require_persian(draft[name], name)
            except Refusal as r:
                problems.append(r.payload() | {"draft": None})
    return {"articles": [kb.article_json(a.article, a.score) for a in articles], "missing": missing,
            "problems": problems, "draft": draft}


async def _build(session: AsyncSession, principal: Principal, draft: dict, now: datetime,
                 targets: SlaTargets, has_open_incident: HasOpenIncident) -> Ticket:
    customer = await _verified_customer(session, principal)
    rule = await _department(session, draft)
    await _check_suspension(session, customer.id, rule, now)
    service_id = await _owned_service(session, principal, draft.get("service_id"))
    _require_fields(draft, rule)
    subject, body = require_persian(draft["subject"], "subject"), require_persian(draft["body"], "body")
    priority = choose_priority(draft.get("priority"), rule)
    ref = await _reference(session, principal, draft.get("references_ticket_id"))
    await _check_duplicate(session, customer.id, service_id, rule, subject, body)
    band, due = first_response_due(now, await load_calendar(session, now), targets)
    extra = {k: draft[k] for k in rule.required_fields if k not in ("service_id", "description")}
    return Ticket(
        customer_id=customer.id, service_id=service_id, department=rule.key, source=Source.CUSTOMER,
        subject=subject, body=body, fields=extra, status=Status.OPEN, priority=priority,
        requested_priority=draft.get("priority") or priority,
        priority_flag=await urgent_flag(session, priority, service_id, has_open_incident),
        references_ticket_id=ref, opened_by_id=principal.user_id, opened_at=now, sla_band=band,
        first_response_due=due, shown_article_ids=_shown(draft),
    )


async def _serialise_intake(session: AsyncSession, customer_id: int | None) -> None:
    """Make one customer's submissions take turns, so the duplicate check of each sees the ones before it
    (rule 16: ten identical tickets sent at the same instant open one).

    PostgreSQL: a transaction-scoped advisory lock per customer. SQLite has one writer: a write as the
    transaction's first statement waits (busy_timeout) for the other writer before anything is read.
    """
    if customer_id is None:
        return
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"intake:customer:{customer_id}"})
    else:
        await session.execute(update(Customer).where(Customer.id == customer_id).values(id=Customer.id))


async def open_ticket(sm: async_sessionmaker, principal: Principal, draft: Mapping[str, Any], *,
                      now: datetime, targets: SlaTargets = SlaTargets(),
                      has_open_incident: HasOpenIncident = no_incident_known) -> Ticket:
    """Open a customer's ticket from ``draft`` or raise a :class:`Refusal` carrying the draft back."""
    draft = _clean(draft)
    try:
        async with sm.begin() as session:
            await _serialise_intake(session, principal.customer_id)
            ticket = await _build(session, principal, draft, now, targets, has_open_incident)
            session.add(ticket)
    except Refusal as refusal:
        log.info("ticket_refused customer=%s code=%s field=%s", principal.customer_id, refusal.code, refusal.field)
        raise refusal.with_draft(draft) from None
    log.info("ticket_opened id=%s customer=%s department=%s band=%s due=%s", ticket.id, ticket.customer_id,
             ticket.department, ticket.sla_band, ticket.first_response_due.isoformat())
    return ticket
