"""The desk's work on tickets: reading, the thread of messages, staff answers, assignment, closing, the
priority decision and the staff queue.

Customer-facing reads go through :func:`monitor.accounts.scope`, so a customer asking for another
customer's ticket gets :class:`monitor.errors.NotFound`, exactly as for a ticket that does not exist.
Staff reads of a customer's tickets are written to the audit log (rule 4). A closed ticket is never
reopened (rule 15): it takes no new message, and the refusal says to open a new ticket referencing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import STAFF, Principal, Role, User, require_role, scope
from monitor.errors import NotFound
from monitor.models import Customer, Service
from tickets import audit
from tickets.calendar import jalali_text
from tickets.errors import Refusal, TicketClosed
from tickets.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Priority,
    Scope,
    Status,
    Ticket,
    TicketMessage,
    Violation,
)
from tickets.persian import fa_digits, require_persian
from tickets.priority import RANK, URGENT_BUT_UP
from tickets.sla import is_breached

__all__ = ["get_ticket", "list_tickets", "count_tickets", "add_message", "answer", "add_note", "assign", "close",
           "close_without_answer", "lower_priority", "mark_urgent_misuse", "queue", "queue_count", "QueueFilter",
           "QUEUE_SCOPES", "UNDECIDED", "INTERNAL", "names", "Names", "ticket_json", "message_json",
           "CLOSE_REASONS"]

CLOSE_REASONS = ("incomplete_information", "duplicate", "out_of_scope", "violation", "no_reply")
# A staff-only note on the thread: never shown to the customer, never an answer (the clock keeps running).
INTERNAL = "internal"
NOTE_MAX = 5000
# The queue's scope filter: rule 5's two scopes, or not decided yet (``tickets.scope`` is NULL).
UNDECIDED = "undecided"
QUEUE_SCOPES = (Scope.IN.value, Scope.OUT.value, UNDECIDED)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_json(t: Ticket, now: datetime | None = None) -> dict:
    out = {k: getattr(t, k) for k in (
        "id", "customer_id", "service_id", "department", "source", "incident_id", "subject", "body", "fields",
        "status", "close_reason", "priority", "requested_priority", "priority_flag", "scope", "package_id",
        "references_ticket_id", "assignee_id", "sla_band", "shown_article_ids")}
    out |= {"opened_at": _iso(t.opened_at), "first_response_due": _iso(t.first_response_due),
            "first_response_at": _iso(t.first_response_at), "closed_at": _iso(t.closed_at),
            "opened_at_fa": jalali_text(t.opened_at), "first_response_due_fa": jalali_text(t.first_response_due)}
    if now is not None:
        out["breached"] = is_breached(t.first_response_due, t.first_response_at, now)
    return out


def message_json(m: TicketMessage) -> dict:
    return {"id": m.id, "author_kind": m.author_kind, "author_id": m.author_id, "body": m.body,
            "at": m.at.isoformat()}


async def _scoped_ticket(session: AsyncSession, principal: Principal, ticket_id: int) -> Ticket:
    stmt = scope(select(Ticket).where(Ticket.id == ticket_id), principal, Ticket.customer_id)
    ticket = (await session.execute(stmt)).scalar_one_or_none()
    if ticket is None:
        raise NotFound(f"ticket {ticket_id}")
    return ticket


async def get_ticket(sm: async_sessionmaker, principal: Principal, ticket_id: int, *,
                     now: datetime) -> tuple[Ticket, list[TicketMessage]]:
    """The ticket and its thread; a customer's thread leaves out the staff's internal notes."""
    async with sm.begin() as session:
        ticket = await _scoped_ticket(session, principal, ticket_id)
        stmt = select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
        if not principal.is_staff:  # internal notes are staff-only
            stmt = stmt.where(TicketMessage.author_kind != INTERNAL)
        messages = (await session.execute(stmt.order_by(TicketMessage.at, TicketMessage.id))).scalars().all()
        await audit.record(session, principal, audit.READ_TICKET, customer_id=ticket.customer_id,
                           subject=f"ticket {ticket_id}", now=now)
    return ticket, list(messages)


async def count_tickets(sm: async_sessionmaker, principal: Principal) -> int:
    """How many tickets the reader may list (a customer: their own)."""
    stmt = scope(select(func.count()).select_from(Ticket), principal, Ticket.customer_id)
    async with sm() as session:
        return int((await session.execute(stmt)).scalar_one())


async def list_tickets(sm: async_sessionmaker, principal: Principal, *, now: datetime,
                       customer_id: int | None = None, status: str | None = None, limit: int | None = None,
                       offset: int = 0) -> list[Ticket]:
    """A customer's own tickets, newest first; staff may filter by customer (an export, audited) or list all.
    ``limit``/``offset`` page it in the database."""
    stmt = scope(select(Ticket), principal, Ticket.customer_id).order_by(Ticket.opened_at.desc(), Ticket.id)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Ticket.status == status)
    async with sm.begin() as session:
        rows = list((await session.execute(stmt)).scalars())
        if principal.is_staff and customer_id is not None:
            if await session.get(Customer, customer_id) is None:  # the audit row needs a real customer
                raise NotFound(f"customer {customer_id}")
            await audit.record(session, principal, audit.EXPORT_TICKETS, customer_id=customer_id,
                               subject="tickets", now=now, detail={"count": len(rows)})
    return rows


def _refuse_if_closed(ticket: Ticket, draft: dict) -> None:
    if ticket.status in CLOSED_STATUSES:
        raise TicketClosed(
            "ticket_closed", "ticket_id",
            f"تیکت شمارهٔ {fa_digits(ticket.id)} بسته شده و دوباره باز نمی‌شود. لطفاً برای این درخواست یک تیکت "
            f"تازه باز کنید و در آن به تیکت {fa_digits(ticket.id)} ارجاع دهید.", draft=draft,
            extra={"ticket_id": ticket.id, "open_new_with": {"references_ticket_id": ticket.id}})


async def add_message(sm: async_sessionmaker, principal: Principal, ticket_id: int, body: str, *,
                      now: datetime) -> TicketMessage:
    """A message on the thread. From a customer it reopens the conversation (status open); from staff it
    is an answer (see :func:`answer`)."""
    if principal.is_staff:
        return await answer(sm, principal, ticket_id, body, now=now)
    draft = {"ticket_id": ticket_id, "body": body}
    try:
        text = require_persian(body, "body")
    except Refusal as r:
        raise r.with_draft(draft) from None
    async with sm.begin() as session:
        ticket = await _scoped_ticket(session, principal, ticket_id)
        _refuse_if_closed(ticket, draft)
        message = TicketMessage(ticket_id=ticket.id, author_id=principal.user_id, author_kind="customer",
                                body=text, at=now)
        session.add(message)
        ticket.status = Status.OPEN
    return message


async def answer(sm: async_sessionmaker, principal: Principal, ticket_id: int, body: str, *, now: datetime,
                 waiting_on_customer: bool = False) -> TicketMessage:
    """A staff answer, in Persian like every message on the thread (rule 1); the first one stops the
    first-response clock."""
    require_role(principal, STAFF)
    draft = {"ticket_id": ticket_id, "body": body}
    try:
        text = require_persian(body, "body")
    except Refusal as r:
        raise r.with_draft(draft) from None
    async with sm.begin() as session:
        ticket = await _scoped_ticket(session, principal, ticket_id)
        _refuse_if_closed(ticket, draft)
        message = TicketMessage(ticket_id=ticket.id, author_id=principal.user_id, author_kind="staff",
                                body=text, at=now)
        session.add(message)
        ticket.first_response_at = ticket.first_response_at or now
        ticket.status = Status.WAITING_ON_CUSTOMER if waiting_on_customer else Status.ANSWERED
    return message


async def add_note(sm: async_sessionmaker, principal: Principal, ticket_id: int, body: str, *,
                   now: datetime) -> TicketMessage:
    """A staff-only internal note on the thread (also on a closed ticket): the customer never reads it, and it
    neither answers the ticket nor stops the first-response clock."""
    require_role(principal, STAFF)
    text = (body or "").strip()
    draft = {"ticket_id": ticket_id, "body": body}
    if not text:
        raise Refusal("empty_note", "body", "متن یادداشت داخلی را بنویسید.", draft=draft)
    if len(text) > NOTE_MAX:
        raise Refusal("note_too_long", "body",
                      f"یادداشت داخلی حداکثر {fa_digits(NOTE_MAX)} نویسه است.", draft=draft)
    async with sm.begin() as session:
        ticket = await _scoped_ticket(session, principal, ticket_id)
        message = TicketMessage(ticket_id=ticket.id, author_id=principal.user_id, author_kind=INTERNAL,
                                body=text, at=now)
        session.add(message)
    return message


async def _staff_ticket(sm_session: AsyncSession, principal: Principal, ticket_id: int) -> Ticket:
    require_role(principal, STAFF)
    return await _scoped_ticket(sm_session, principal, ticket_id)


async def assign(sm: async_sessionmaker, principal: Principal, ticket_id: int, assignee_id: int | None) -> Ticket:
    """Assign the ticket to an active staff member (None unassigns it)."""
    async with sm.begin() as session:
        ticket = await _staff_ticket(session, principal, ticket_id)
        if assignee_id is not None:
            user = await session.get(User, assignee_id)
            if user is None or not user.active or Role(user.role) not in STAFF:
                raise Refusal("invalid_assignee", "assignee_id", "تیکت فقط به یکی از کارکنان فعال سپرده می‌شود.",
                              draft={"assignee_id": assignee_id})
        ticket.assignee_id = assignee_id
    return ticket


async def close(sm: async_sessionmaker, principal: Principal, ticket_id: int, *, now: datetime) -> Ticket:
    """Close a ticket (staff, or its own customer). Closing twice is harmless."""
    async with sm.begin() as session:
        ticket = await _scoped_ticket(session, principal, ticket_id)
        if ticket.status not in CLOSED_STATUSES:
            ticket.status, ticket.closed_at = Status.CLOSED, now
    return ticket


async def close_without_answer(sm: async_sessionmaker, principal: Principal, ticket_id: int, *, reason: str,
                               now: datetime) -> Ticket:
    """Rule 13: staff close a ticket without an answer, e.g. ``incomplete_information``."""
    if reason not in CLOSE_REASONS:
        raise Refusal("invalid_reason", "reason", "دلیل بستن نامعتبر است.",
                      draft={"reason": reason}, extra={"reasons": list(CLOSE_REASONS)})
    async with sm.begin() as session:
        ticket = await _staff_ticket(session, principal, ticket_id)
        _refuse_if_closed(ticket, {"reason": reason})
        ticket.status, ticket.close_reason, ticket.closed_at = Status.CLOSED_WITHOUT_ANSWER, reason, now
    return ticket


async def lower_priority(sm: async_sessionmaker, principal: Principal, ticket_id: int, priority: str) -> Ticket:
    """Rule 14: staff lower a ticket's priority (never raise it here); the misuse flag is settled."""
    if priority not in RANK:
        raise Refusal("invalid_priority", "priority", "اولویت نامعتبر است.", draft={"priority": priority})
    async with sm.begin() as session:
        ticket = await _staff_ticket(session, principal, ticket_id)
        if RANK[Priority(priority)] > RANK[Priority(ticket.priority)]:
            raise Refusal("priority_not_lower", "priority", "اولویت فقط پایین آورده می‌شود.",
                          draft={"priority": priority})
        ticket.priority, ticket.priority_flag = priority, None
    return ticket


async def mark_urgent_misuse(sm: async_sessionmaker, principal: Principal, ticket_id: int, *, note: str = "",
                             now: datetime) -> Violation:
    """Rule 14: staff confirm that an urgent ticket was filed while the service was up. The ticket keeps the
    ``urgent_but_service_up`` flag and a violation of rule 14 is recorded on it (rule 19: finance may fine
    it). Only an urgent ticket can be marked, and only once."""
    require_role(principal, STAFF)
    draft = {"ticket_id": ticket_id, "note": note}
    async with sm.begin() as session:
        ticket = await _scoped_ticket(session, principal, ticket_id)
        if ticket.priority != Priority.URGENT and ticket.requested_priority != Priority.URGENT:
            raise Refusal("not_urgent", "priority",
                          "فقط تیکتی که «ضروری» ثبت شده می‌تواند سوءاستفاده از اولویت ضروری علامت بخورد.",
                          draft=draft)
        already = (await session.execute(select(Violation.id).where(
            Violation.ticket_id == ticket.id, Violation.rule == 14).limit(1))).first()
        if already is not None:
            raise Refusal("already_marked", "priority",
                          "این تیکت پیش‌تر به‌عنوان سوءاستفاده از اولویت ضروری علامت خورده است.", draft=draft)
        ticket.priority_flag = URGENT_BUT_UP
        violation = Violation(ticket_id=ticket.id, rule=14, note=(note or "").strip() or URGENT_BUT_UP,
                              recorded_by_id=principal.user_id, recorded_at=now)
        session.add(violation)
    return violation


@dataclass(frozen=True)
class QueueFilter:
    """The staff queue's filters (validated by the caller): an open ``status``, a ``priority``, a
    ``department`` key, ``overdue`` (unanswered past the first-response due time), ``mine`` (assigned to the
    reader) and ``scope`` (``in``, ``out`` or ``undecided``)."""

    status: str | None = None
    priority: str | None = None
    department: str | None = None
    overdue: bool = False
    mine: bool = False
    scope: str | None = None


def _queue_where(stmt, principal: Principal, f: QueueFilter, now: datetime | None):
    stmt = stmt.where(Ticket.status.in_(OPEN_STATUSES))
    if f.status is not None:
        stmt = stmt.where(Ticket.status == f.status)
    if f.priority is not None:
        stmt = stmt.where(Ticket.priority == f.priority)
    if f.department is not None:
        stmt = stmt.where(Ticket.department == f.department)
    if f.overdue:
        if now is None:
            raise ValueError("the overdue filter needs now")
        stmt = stmt.where(Ticket.first_response_at.is_(None), Ticket.first_response_due < now)
    if f.mine:
        stmt = stmt.where(Ticket.assignee_id == principal.user_id)
    if f.scope == UNDECIDED:
        stmt = stmt.where(Ticket.scope.is_(None))
    elif f.scope is not None:
        stmt = stmt.where(Ticket.scope == f.scope)
    return stmt


async def queue(sm: async_sessionmaker, principal: Principal, f: QueueFilter = QueueFilter(), *,
                now: datetime | None = None, limit: int | None = None, offset: int = 0) -> list[Ticket]:
    """Open tickets for staff: those awaiting a first response first, by due time; then the rest by due.
    ``f`` narrows it (``now`` is needed for ``overdue``); ``limit``/``offset`` page it in the database."""
    require_role(principal, STAFF)
    stmt = _queue_where(select(Ticket), principal, f, now).order_by(
        Ticket.first_response_at.is_not(None), Ticket.first_response_due, Ticket.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    async with sm() as session:
        return list((await session.execute(stmt)).scalars())


async def queue_count(sm: async_sessionmaker, principal: Principal, f: QueueFilter = QueueFilter(), *,
                      now: datetime | None = None) -> int:
    """How many open tickets :func:`queue` has under ``f`` (all pages)."""
    require_role(principal, STAFF)
    stmt = _queue_where(select(func.count()).select_from(Ticket), principal, f, now)
    async with sm() as session:
        return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True)
class Names:
    """What staff pages call the customers, services and users of some tickets (id -> name)."""

    customers: dict[int, str] = field(default_factory=dict)
    services: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)


async def names(sm: async_sessionmaker, principal: Principal, tickets: Iterable[Ticket],
                messages: Iterable[TicketMessage] = ()) -> Names:
    """The display names (else the internal names) of the tickets' customers, services and assignees and of
    the messages' authors, for staff."""
    require_role(principal, STAFF)
    tickets, messages = list(tickets), list(messages)
    customer_ids = {t.customer_id for t in tickets}
    service_ids = {t.service_id for t in tickets if t.service_id is not None}
    user_ids = {t.assignee_id for t in tickets if t.assignee_id is not None} | \
        {m.author_id for m in messages if m.author_id is not None}
    async with sm() as session:
        customers = {c.id: c.display_name or c.name for c in (await session.execute(
            select(Customer).where(Customer.id.in_(customer_ids)))).scalars()} if customer_ids else {}
        services = {s.id: s.display_name or s.name for s in (await session.execute(
            select(Service).where(Service.id.in_(service_ids)))).scalars()} if service_ids else {}
        users = {u.id: u.display_name or u.username for u in (await session.execute(
            select(User).where(User.id.in_(user_ids)))).scalars()} if user_ids else {}
    return Names(customers, services, users)
