"""The desk's JSON API: thin routes over the ``tickets`` services, where the rules live.

Customers: check a draft (articles, missing fields, text problems), open a ticket, list and read their own
tickets, write on the thread, close their own ticket, see their fines, search the knowledge base, and ask
whether phone support is open. Staff: the queue by due time, answer, assign, close without answer, lower a
priority, set the scope, record violations and packages; finance posts fines and marks them paid; admins
change the office calendar, read the audit log and record disclosures. A refusal from the desk is answered
400 with its payload (code, field, Persian message, the draft back, facts); another tenant's ticket is 404.

Collaborators come from ``WebDeps.services``: ``sla_targets`` (a :class:`tickets.sla.SlaTargets`) and
``has_open_incident`` (``async (session, service_id) -> bool``, given by the incidents stage), both
optional.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel
from sqlalchemy import select

from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import (
    JalaliMonth,
    JalaliYear,
    PageQuery,
    Params,
    PathId,
    ids,
    page_of,
    paged,
    sliced,
)
from dashboards.web.routing import BODY, PATH, QUERY, RouteTable
from dashboards.web.types import Day, Moment, Rials, RowId
from monitor.accounts import ALL_ROLES, STAFF, Role, scope
from monitor.errors import InvalidInput
from tickets import audit, calendar_admin, desk, fines, intake, kb, packages, reports
from tickets.calendar import TEHRAN, is_office_hours, load_calendar
from tickets.errors import Refusal
from tickets.models import OPEN_STATUSES, Fine, Priority
from tickets.priority import no_incident_known
from tickets.sla import SlaTargets

__all__ = ["routes", "QueueQuery", "OpenStatus", "PriorityName"]

routes = RouteTable()
CUSTOMER = {Role.CUSTOMER}
ADMIN = {Role.ADMIN}
FINANCE = fines.FINANCE_ROLES


def refusals(handler):
    """Answer a desk refusal with 400 and its payload (the customer's draft included), in the shape of every
    error: ``reason`` is the Persian message."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as refusal:
            return json_response({"reason": refusal.message, **refusal.payload()}, status=400)

    return wrapped


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def _targets(request: web.Request) -> SlaTargets:
    return request.app[DEPS].services.get("sla_targets") or SlaTargets()


TICKET = ids("ticket_id")
ARTICLE = ids("article_id")


class TicketsQuery(PageQuery):
    customer_id: PathId | None = Field(None, description="staff: one customer's tickets")
    status: str | None = Field(None, max_length=40)


OpenStatus = Literal[tuple(s.value for s in OPEN_STATUSES)]  # type: ignore[valid-type]
PriorityName = Literal[tuple(p.value for p in Priority)]  # type: ignore[valid-type]


QueueScope = Literal[desk.QUEUE_SCOPES]  # type: ignore[valid-type]


class QueueQuery(PageQuery):
    """The staff queue's filters (the JSON queue and the desk's page take the same)."""

    status: OpenStatus | None = Field(None, description="only tickets in this open status")
    priority: PriorityName | None = Field(None, description="only tickets of this priority")
    department: str | None = Field(None, min_length=1, max_length=30, pattern=r"^[a-z][a-z0-9_]*$",
                                   description="only tickets of this department (its key, e.g. technical)")
    overdue: bool = Field(False, description="only tickets unanswered past their first-response due time")
    mine: bool = Field(False, description="only tickets assigned to the reader")
    scope: QueueScope | None = Field(None, description="rule 5: in, out, or undecided (not set yet)")

    def queue_filter(self) -> desk.QueueFilter:
        return desk.QueueFilter(status=self.status, priority=self.priority, department=self.department,
                                overdue=self.overdue, mine=self.mine, scope=self.scope)


class ArticlesQuery(PageQuery):
    q: str | None = Field(None, max_length=500, description="search text; without it, every article")


class AuditQuery(PageQuery):
    customer_id: PathId | None = None


class SlaReportQuery(Params):
    year: JalaliYear
    month: JalaliMonth


class CalendarChangePath(Params):
    kind: Literal["closure", "removed"]
    day: Day


class PhoneSupport(BaseModel):
    open: bool
    now_tehran: str
    closed_because: str | None
    hours: str


class Draft(RootModel[dict[str, Any]]):
    pass


class Text(BaseModel):
    model_config = ConfigDict(extra="ignore")
    body: str
    waiting_on_customer: bool = False


# --- customers (and staff) ------------------------------------------------------------------------------

@routes.get("/api/v1/desk/phone-support", roles=ALL_ROLES, response=PhoneSupport)
async def phone_support(request: web.Request) -> web.Response:
    """Whether phone support is open now (office hours and the calendar)."""
    sm, _p, now = _ctx(request)
    async with sm() as session:
        calendar = await load_calendar(session, now)
    local = now.astimezone(TEHRAN)
    return json_response({"open": is_office_hours(now, calendar), "now_tehran": local.isoformat(),
                          "closed_because": calendar.closed_because(local.date()),
                          "hours": "شنبه تا چهارشنبه، ۹ تا ۱۷"})


@routes.post("/api/v1/tickets/draft-check", roles=CUSTOMER, body=Draft)
@refusals
async def draft_check(request: web.Request) -> web.Response:
    """Check a draft before sending: related articles, missing fields, text problems."""
    sm, principal, now = _ctx(request)
    draft = request[BODY].root
    if not any(draft.get(k) for k in ("subject", "body")):
        raise Refusal("empty_draft", "body", "موضوع یا متن درخواست را بنویسید تا راهنماهای مرتبط را ببینید.",
                      draft=draft)
    return json_response(await intake.check_draft(sm, principal, draft, now=now))


@routes.post("/api/v1/tickets", roles=CUSTOMER, body=Draft, status=201)
@refusals
async def create_ticket(request: web.Request) -> web.Response:
    """Open a ticket (the department's fields, in Persian)."""
    sm, principal, now = _ctx(request)
    draft = request[BODY].root
    has_incident = request.app[DEPS].services.get("has_open_incident") or no_incident_known
    ticket = await intake.open_ticket(sm, principal, draft, now=now, targets=_targets(request),
                                      has_open_incident=has_incident)
    return json_response(desk.ticket_json(ticket, now), status=201)


@routes.get("/api/v1/tickets", roles=ALL_ROLES, query=TicketsQuery, paginated=True)
async def list_tickets(request: web.Request) -> web.Response:
    """Tickets (a customer's own only)."""
    sm, principal, now = _ctx(request)
    q = request[QUERY]
    rows = await desk.list_tickets(sm, principal, now=now, customer_id=q.customer_id, status=q.status)
    return page_of(request, sliced(list(rows), q), q, lambda t: desk.ticket_json(t, now))


@routes.get("/api/v1/tickets/{ticket_id}", roles=ALL_ROLES, path=TICKET)
async def read_ticket(request: web.Request) -> web.Response:
    """One ticket with its thread."""
    sm, principal, now = _ctx(request)
    ticket, messages = await desk.get_ticket(sm, principal, request[PATH].ticket_id, now=now)
    return json_response(desk.ticket_json(ticket, now) | {"messages": [desk.message_json(m) for m in messages]})


@routes.post("/api/v1/tickets/{ticket_id}/messages", roles=ALL_ROLES, path=TICKET, body=Text, status=201)
@refusals
async def add_message(request: web.Request) -> web.Response:
    """Write on the ticket's thread."""
    sm, principal, now = _ctx(request)
    body = request[BODY]
    message = await desk.add_message(sm, principal, request[PATH].ticket_id, body.body, now=now)
    return json_response(desk.message_json(message), status=201)


@routes.post("/api/v1/tickets/{ticket_id}/close", roles=ALL_ROLES, path=TICKET)
async def close_ticket(request: web.Request) -> web.Response:
    """Close the ticket."""
    sm, principal, now = _ctx(request)
    ticket = await desk.close(sm, principal, request[PATH].ticket_id, now=now)
    return json_response(desk.ticket_json(ticket, now))


@routes.get("/api/v1/fines", roles=ALL_ROLES, query=PageQuery, paginated=True)
async def list_fines(request: web.Request) -> web.Response:
    """Fines by due time (a customer's own only)."""
    sm, principal, _now = _ctx(request)
    q = request[QUERY]
    stmt = scope(select(Fine).order_by(Fine.due_at, Fine.id), principal, Fine.customer_id)
    async with sm() as session:
        return page_of(request, list((await session.execute(paged(stmt, q))).scalars()), q, fines.fine_json)


@routes.get("/api/v1/kb/articles", roles=ALL_ROLES, query=ArticlesQuery, paginated=True)
async def list_articles(request: web.Request) -> web.Response:
    """Knowledge-base articles, or those matching ``q`` best first."""
    sm, principal, _now = _ctx(request)
    q = request[QUERY]
    if q.q is None:
        return page_of(request, sliced(list(await kb.list_articles(sm, principal)), q), q, kb.article_json)
    async with sm() as session:
        found = await kb.search(session, q.q, limit=q.offset + q.limit + 1)
    return page_of(request, sliced(list(found), q), q, lambda f: kb.article_json(f.article, f.score))


# --- staff ----------------------------------------------------------------------------------------------

@routes.get("/api/v1/desk/queue", roles=STAFF, query=QueueQuery, paginated=True)
async def queue(request: web.Request) -> web.Response:
    """The desk's queue by due time, narrowed by status, priority, department, overdue, mine and scope."""
    sm, principal, now = _ctx(request)
    q = request[QUERY]
    rows = await desk.queue(sm, principal, q.queue_filter(), now=now, limit=q.limit + 1, offset=q.offset)
    return page_of(request, rows, q, lambda t: desk.ticket_json(t, now))


@routes.post("/api/v1/tickets/{ticket_id}/answer", roles=STAFF, path=TICKET, body=Text, status=201)
@refusals
async def answer(request: web.Request) -> web.Response:
    """Answer the customer."""
    sm, principal, now = _ctx(request)
    body = request[BODY]
    message = await desk.answer(sm, principal, request[PATH].ticket_id, body.body, now=now,
                                waiting_on_customer=body.waiting_on_customer)
    return json_response(desk.message_json(message), status=201)


class Assign(BaseModel):
    assignee_id: RowId | None


@routes.post("/api/v1/tickets/{ticket_id}/assign", roles=STAFF, path=TICKET, body=Assign)
@refusals
async def assign(request: web.Request) -> web.Response:
    """Assign the ticket to a staff member (null: unassign)."""
    sm, principal, now = _ctx(request)
    ticket = await desk.assign(sm, principal, request[PATH].ticket_id, request[BODY].assignee_id)
    return json_response(desk.ticket_json(ticket, now))


class Reason(BaseModel):
    reason: str


@routes.post("/api/v1/tickets/{ticket_id}/close-without-answer", roles=STAFF, path=TICKET, body=Reason)
@refusals
async def close_without_answer(request: web.Request) -> web.Response:
    """Close without an answer, saying why."""
    sm, principal, now = _ctx(request)
    ticket = await desk.close_without_answer(sm, principal, request[PATH].ticket_id, reason=request[BODY].reason,
                                             now=now)
    return json_response(desk.ticket_json(ticket, now))


class PriorityIn(BaseModel):
    priority: str


@routes.post("/api/v1/tickets/{ticket_id}/priority", roles=STAFF, path=TICKET, body=PriorityIn)
@refusals
async def lower_priority(request: web.Request) -> web.Response:
    """Lower the ticket's priority."""
    sm, principal, now = _ctx(request)
    ticket = await desk.lower_priority(sm, principal, request[PATH].ticket_id, request[BODY].priority)
    return json_response(desk.ticket_json(ticket, now))


class ScopeIn(BaseModel):
    scope: str


@routes.post("/api/v1/tickets/{ticket_id}/scope", roles=STAFF, path=TICKET, body=ScopeIn)
@refusals
async def set_scope(request: web.Request) -> web.Response:
    """Set whether the ticket's work is in the customer's package."""
    sm, principal, now = _ctx(request)
    return json_response(await packages.set_scope(sm, principal, request[PATH].ticket_id, request[BODY].scope,
                                                  today=now.astimezone(TEHRAN).date()))


class ViolationIn(BaseModel):
    rule: int
    note: str = ""


@routes.post("/api/v1/tickets/{ticket_id}/violations", roles=STAFF, path=TICKET, body=ViolationIn, status=201)
@refusals
async def record_violation(request: web.Request) -> web.Response:
    """Record a violation of a rule of the terms on the ticket."""
    sm, principal, now = _ctx(request)
    body = request[BODY]
    v = await fines.record_violation(sm, principal, request[PATH].ticket_id, rule=body.rule,
                                     note=body.note, now=now)
    return json_response({"id": v.id, "ticket_id": v.ticket_id, "rule": v.rule, "note": v.note}, status=201)


class FineIn(BaseModel):
    amount_rials: Rials
    due_at: Moment
    violation_id: RowId | None = None


@routes.post("/api/v1/tickets/{ticket_id}/fines", roles=FINANCE, path=TICKET, body=FineIn, status=201)
@refusals
async def post_fine(request: web.Request) -> web.Response:
    """Post a fine on the ticket."""
    sm, principal, now = _ctx(request)
    body = request[BODY]
    if body.due_at.tzinfo is None:
        raise InvalidInput("due_at", "give a time zone (e.g. +03:30 or Z)")
    fine = await fines.post_fine(sm, principal, request[PATH].ticket_id, amount_rials=body.amount_rials,
                                 due_at=body.due_at, violation_id=body.violation_id, now=now)
    return json_response(fines.fine_json(fine), status=201)


@routes.post("/api/v1/fines/{fine_id}/paid", roles=FINANCE, path=ids("fine_id"))
async def mark_fine_paid(request: web.Request) -> web.Response:
    """Mark the fine paid."""
    sm, principal, now = _ctx(request)
    return json_response(fines.fine_json(await fines.mark_fine_paid(sm, principal, request[PATH].fine_id, now=now)))


class PackageIn(BaseModel):
    customer_id: RowId
    kind: str
    starts_on: Day
    ends_on: Day
    note: str = ""


@routes.post("/api/v1/packages", roles=STAFF, body=PackageIn, status=201)
@refusals
async def record_package(request: web.Request) -> web.Response:
    """Record a support package the customer bought."""
    sm, principal, now = _ctx(request)
    b = request[BODY]
    pkg = await packages.record_package(sm, principal, customer_id=b.customer_id, kind=b.kind,
                                        starts_on=b.starts_on, ends_on=b.ends_on, note=b.note, now=now)
    return json_response(packages.package_json(pkg), status=201)


class ArticleIn(BaseModel):
    title: str
    body: str
    department: str | None = None
    published: bool = True


class ArticlePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    body: str | None = None
    department: str | None = None
    published: bool | None = None


@routes.post("/api/v1/kb/articles", roles=STAFF, body=ArticleIn, status=201)
@refusals
async def create_article(request: web.Request) -> web.Response:
    """Write a knowledge-base article."""
    sm, principal, now = _ctx(request)
    b = request[BODY]
    article = await kb.create_article(sm, principal, title=b.title, body=b.body, department=b.department,
                                      published=b.published, now=now)
    return json_response(kb.article_json(article), status=201)


@routes.put("/api/v1/kb/articles/{article_id}", roles=STAFF, path=ARTICLE, body=ArticlePatch)
@refusals
async def update_article(request: web.Request) -> web.Response:
    """Change an article (only the fields given)."""
    sm, principal, now = _ctx(request)
    changes = request[BODY].model_dump(exclude_none=True)
    article = await kb.update_article(sm, principal, request[PATH].article_id, now=now, **changes)
    return json_response(kb.article_json(article))


@routes.delete("/api/v1/kb/articles/{article_id}", roles=STAFF, path=ARTICLE)
async def delete_article(request: web.Request) -> web.Response:
    """Delete an article."""
    sm, principal, _now = _ctx(request)
    await kb.delete_article(sm, principal, request[PATH].article_id)
    return json_response({"deleted": True})


@routes.get("/api/v1/desk/calendar", roles=STAFF)
async def calendar_changes(request: web.Request) -> web.Response:
    """The office calendar: holidays and the admins' changes."""
    sm, _p, now = _ctx(request)
    async with sm() as session:
        calendar = await load_calendar(session, now)
    return json_response({
        "holidays": {d.isoformat(): n for d, n in sorted(calendar.holidays.items())},
        "changes": [{"day": c.day.isoformat(), "kind": c.kind, "name": c.name}
                    for c in await calendar_admin.list_changes(sm)]})


class DayIn(BaseModel):
    day: Day
    name: str = ""


class ClosureIn(DayIn):
    until: Day | None = None


@routes.post("/api/v1/desk/calendar/closures", roles=ADMIN, body=ClosureIn, status=201)
@refusals
async def add_closure(request: web.Request) -> web.Response:
    """Close the office on a day, or from ``day`` to ``until``, for a reason (``name``); due times are
    recomputed. A day before today, an end before the start or no reason is refused, nothing written."""
    sm, principal, now = _ctx(request)
    b = request[BODY]
    changed = await calendar_admin.add_closure(sm, principal, b.day, name=b.name, until=b.until, now=now,
                                               targets=_targets(request))
    return json_response({"day": b.day.isoformat(), "kind": "closure", "tickets_recomputed": changed}, status=201)


@routes.post("/api/v1/desk/calendar/removals", roles=ADMIN, body=DayIn, status=201)
@refusals
async def remove_seeded_date(request: web.Request) -> web.Response:
    """Open the office on a seeded holiday."""
    sm, principal, now = _ctx(request)
    b = request[BODY]
    changed = await calendar_admin.remove_seeded_date(sm, principal, b.day, now=now, targets=_targets(request))
    return json_response({"day": b.day.isoformat(), "kind": "removed", "tickets_recomputed": changed}, status=201)


@routes.delete("/api/v1/desk/calendar/{kind}/{day}", roles=ADMIN, path=CalendarChangePath)
async def withdraw_calendar_change(request: web.Request) -> web.Response:
    """Withdraw an admin's change to the calendar."""
    sm, principal, now = _ctx(request)
    p = request[PATH]
    changed = await calendar_admin.withdraw_change(sm, principal, p.day, p.kind, now=now, targets=_targets(request))
    return json_response({"tickets_recomputed": changed})


@routes.get("/api/v1/desk/sla-report", roles=STAFF, query=SlaReportQuery)
async def sla_report(request: web.Request) -> web.Response:
    """The month's SLA figures per band (Jalali year and month)."""
    sm, principal, now = _ctx(request)
    year, month = request[QUERY].year, request[QUERY].month
    report = await reports.monthly_sla_report(sm, principal, year, month, now=now, targets=_targets(request))
    return json_response({"year": year, "month": month, "bands": [r.as_json() for r in report.values()]})


@routes.get("/api/v1/audit", roles=ADMIN, query=AuditQuery, paginated=True)
async def audit_log(request: web.Request) -> web.Response:
    """The audit log (reads and disclosures of customers' data)."""
    sm, principal, _now = _ctx(request)
    q = request[QUERY]
    entries = await audit.list_entries(sm, principal, customer_id=q.customer_id)
    return page_of(request, sliced(list(entries), q), q, audit.entry_json)


class DisclosureIn(BaseModel):
    customer_id: RowId
    recipient: str = Field("", max_length=200)
    letter_reference: str = Field("", max_length=200)
    subject: str = Field("", max_length=200)


@routes.post("/api/v1/audit/disclosures", roles=ADMIN, body=DisclosureIn, status=201)
@refusals
async def disclose(request: web.Request) -> web.Response:
    """Record a disclosure of a customer's data (to whom, under which letter)."""
    sm, principal, now = _ctx(request)
    b = request[BODY]
    entry = await audit.disclose(sm, principal, customer_id=b.customer_id, recipient=b.recipient,
                                 letter_reference=b.letter_reference, subject=b.subject, now=now)
    return json_response(audit.entry_json(entry), status=201)
