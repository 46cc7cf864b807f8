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
from datetime import date, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, RootModel
from sqlalchemy import select

from dashboards.web.body import int_param, json_response, read_model
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.routing import RouteTable
from dashboards.web.types import Rials, RowId
from monitor.accounts import ALL_ROLES, STAFF, Role, scope
from monitor.errors import InvalidInput
from tickets import audit, calendar_admin, desk, fines, intake, kb, packages, reports
from tickets.calendar import TEHRAN, is_office_hours, load_calendar
from tickets.errors import Refusal
from tickets.models import Fine
from tickets.priority import no_incident_known
from tickets.sla import SlaTargets

__all__ = ["routes"]

routes = RouteTable()
CUSTOMER = {Role.CUSTOMER}
ADMIN = {Role.ADMIN}
FINANCE = fines.FINANCE_ROLES


def refusals(handler):
    """Answer a desk refusal with 400 and its payload (the customer's draft included)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as refusal:
            return json_response(refusal.payload(), status=400)

    return wrapped


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def _targets(request: web.Request) -> SlaTargets:
    return request.app[DEPS].services.get("sla_targets") or SlaTargets()


def _query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(name, "not a whole number") from None


def _day(request: web.Request, raw: str | None = None) -> date:
    raw = raw if raw is not None else request.match_info["day"]
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise InvalidInput("day", "not a date (YYYY-MM-DD)") from None


class Draft(RootModel[dict[str, Any]]):
    pass


class Text(BaseModel):
    model_config = ConfigDict(extra="ignore")
    body: str
    waiting_on_customer: bool = False


# --- customers (and staff) ------------------------------------------------------------------------------

@routes.get("/api/v1/desk/phone-support", roles=ALL_ROLES)
async def phone_support(request: web.Request) -> web.Response:
    sm, _p, now = _ctx(request)
    async with sm() as session:
        calendar = await load_calendar(session, now)
    local = now.astimezone(TEHRAN)
    return json_response({"open": is_office_hours(now, calendar), "now_tehran": local.isoformat(),
                          "closed_because": calendar.closed_because(local.date()),
                          "hours": "شنبه تا چهارشنبه، ۹ تا ۱۷"})


@routes.post("/api/v1/tickets/draft-check", roles=CUSTOMER)
@refusals
async def draft_check(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    draft = (await read_model(request, Draft)).root
    if not any(draft.get(k) for k in ("subject", "body")):
        raise Refusal("empty_draft", "body", "موضوع یا متن درخواست را بنویسید تا راهنماهای مرتبط را ببینید.",
                      draft=draft)
    return json_response(await intake.check_draft(sm, principal, draft, now=now))


@routes.post("/api/v1/tickets", roles=CUSTOMER)
@refusals
async def create_ticket(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    draft = (await read_model(request, Draft)).root
    has_incident = request.app[DEPS].services.get("has_open_incident") or no_incident_known
    ticket = await intake.open_ticket(sm, principal, draft, now=now, targets=_targets(request),
                                      has_open_incident=has_incident)
    return json_response(desk.ticket_json(ticket, now), status=201)


@routes.get("/api/v1/tickets", roles=ALL_ROLES)
async def list_tickets(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    rows = await desk.list_tickets(sm, principal, now=now, customer_id=_query_int(request, "customer_id"),
                                   status=request.query.get("status"))
    return json_response([desk.ticket_json(t, now) for t in rows])


@routes.get("/api/v1/tickets/{ticket_id}", roles=ALL_ROLES)
async def read_ticket(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    ticket, messages = await desk.get_ticket(sm, principal, int_param(request, "ticket_id"), now=now)
    return json_response(desk.ticket_json(ticket, now) | {"messages": [desk.message_json(m) for m in messages]})


@routes.post("/api/v1/tickets/{ticket_id}/messages", roles=ALL_ROLES)
@refusals
async def add_message(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, Text)
    message = await desk.add_message(sm, principal, int_param(request, "ticket_id"), body.body, now=now)
    return json_response(desk.message_json(message), status=201)


@routes.post("/api/v1/tickets/{ticket_id}/close", roles=ALL_ROLES)
async def close_ticket(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    ticket = await desk.close(sm, principal, int_param(request, "ticket_id"), now=now)
    return json_response(desk.ticket_json(ticket, now))


@routes.get("/api/v1/fines", roles=ALL_ROLES)
async def list_fines(request: web.Request) -> web.Response:
    sm, principal, _now = _ctx(request)
    stmt = scope(select(Fine).order_by(Fine.due_at, Fine.id), principal, Fine.customer_id)
    async with sm() as session:
        return json_response([fines.fine_json(f) for f in (await session.execute(stmt)).scalars()])


@routes.get("/api/v1/kb/articles", roles=ALL_ROLES)
async def list_articles(request: web.Request) -> web.Response:
    sm, principal, _now = _ctx(request)
    query = request.query.get("q")
    if query is None:
        return json_response([kb.article_json(a) for a in await kb.list_articles(sm, principal)])
    async with sm() as session:
        found = await kb.search(session, query, limit=_query_int(request, "limit", 10))
    return json_response([kb.article_json(f.article, f.score) for f in found])


# --- staff ----------------------------------------------------------------------------------------------

@routes.get("/api/v1/desk/queue", roles=STAFF)
async def queue(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    return json_response([desk.ticket_json(t, now) for t in await desk.queue(sm, principal)])


@routes.post("/api/v1/tickets/{ticket_id}/answer", roles=STAFF)
@refusals
async def answer(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, Text)
    message = await desk.answer(sm, principal, int_param(request, "ticket_id"), body.body, now=now,
                                waiting_on_customer=body.waiting_on_customer)
    return json_response(desk.message_json(message), status=201)


class Assign(BaseModel):
    assignee_id: RowId | None


@routes.post("/api/v1/tickets/{ticket_id}/assign", roles=STAFF)
@refusals
async def assign(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, Assign)
    return json_response(desk.ticket_json(await desk.assign(sm, principal, int_param(request, "ticket_id"),
                                                            body.assignee_id), now))


class Reason(BaseModel):
    reason: str


@routes.post("/api/v1/tickets/{ticket_id}/close-without-answer", roles=STAFF)
@refusals
async def close_without_answer(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, Reason)
    ticket = await desk.close_without_answer(sm, principal, int_param(request, "ticket_id"), reason=body.reason,
                                             now=now)
    return json_response(desk.ticket_json(ticket, now))


class PriorityIn(BaseModel):
    priority: str


@routes.post("/api/v1/tickets/{ticket_id}/priority", roles=STAFF)
@refusals
async def lower_priority(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, PriorityIn)
    ticket = await desk.lower_priority(sm, principal, int_param(request, "ticket_id"), body.priority)
    return json_response(desk.ticket_json(ticket, now))


class ScopeIn(BaseModel):
    scope: str


@routes.post("/api/v1/tickets/{ticket_id}/scope", roles=STAFF)
@refusals
async def set_scope(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, ScopeIn)
    return json_response(await packages.set_scope(sm, principal, int_param(request, "ticket_id"), body.scope,
                                                  today=now.astimezone(TEHRAN).date()))


class ViolationIn(BaseModel):
    rule: int
    note: str = ""


@routes.post("/api/v1/tickets/{ticket_id}/violations", roles=STAFF)
@refusals
async def record_violation(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, ViolationIn)
    v = await fines.record_violation(sm, principal, int_param(request, "ticket_id"), rule=body.rule,
                                     note=body.note, now=now)
    return json_response({"id": v.id, "ticket_id": v.ticket_id, "rule": v.rule, "note": v.note}, status=201)


class FineIn(BaseModel):
    amount_rials: Rials
    due_at: datetime
    violation_id: RowId | None = None


@routes.post("/api/v1/tickets/{ticket_id}/fines", roles=FINANCE)
@refusals
async def post_fine(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    body = await read_model(request, FineIn)
    if body.due_at.tzinfo is None:
        raise InvalidInput("due_at", "give a time zone (e.g. +03:30 or Z)")
    fine = await fines.post_fine(sm, principal, int_param(request, "ticket_id"), amount_rials=body.amount_rials,
                                 due_at=body.due_at, violation_id=body.violation_id, now=now)
    return json_response(fines.fine_json(fine), status=201)


@routes.post("/api/v1/fines/{fine_id}/paid", roles=FINANCE)
async def mark_fine_paid(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    return json_response(fines.fine_json(await fines.mark_fine_paid(sm, principal, int_param(request, "fine_id"),
                                                                    now=now)))


class PackageIn(BaseModel):
    customer_id: RowId
    kind: str
    starts_on: date
    ends_on: date
    note: str = ""


@routes.post("/api/v1/packages", roles=STAFF)
@refusals
async def record_package(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    b = await read_model(request, PackageIn)
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


@routes.post("/api/v1/kb/articles", roles=STAFF)
@refusals
async def create_article(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    b = await read_model(request, ArticleIn)
    article = await kb.create_article(sm, principal, title=b.title, body=b.body, department=b.department,
                                      published=b.published, now=now)
    return json_response(kb.article_json(article), status=201)


@routes.put("/api/v1/kb/articles/{article_id}", roles=STAFF)
@refusals
async def update_article(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    changes = (await read_model(request, ArticlePatch)).model_dump(exclude_none=True)
    article = await kb.update_article(sm, principal, int_param(request, "article_id"), now=now, **changes)
    return json_response(kb.article_json(article))


@routes.delete("/api/v1/kb/articles/{article_id}", roles=STAFF)
async def delete_article(request: web.Request) -> web.Response:
    sm, principal, _now = _ctx(request)
    await kb.delete_article(sm, principal, int_param(request, "article_id"))
    return json_response({"deleted": True})


@routes.get("/api/v1/desk/calendar", roles=STAFF)
async def calendar_changes(request: web.Request) -> web.Response:
    sm, _p, now = _ctx(request)
    async with sm() as session:
        calendar = await load_calendar(session, now)
    return json_response({
        "holidays": {d.isoformat(): n for d, n in sorted(calendar.holidays.items())},
        "changes": [{"day": c.day.isoformat(), "kind": c.kind, "name": c.name}
                    for c in await calendar_admin.list_changes(sm)]})


class DayIn(BaseModel):
    day: date
    name: str = ""


@routes.post("/api/v1/desk/calendar/closures", roles=ADMIN)
async def add_closure(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    b = await read_model(request, DayIn)
    changed = await calendar_admin.add_closure(sm, principal, b.day, name=b.name, now=now,
                                               targets=_targets(request))
    return json_response({"day": b.day.isoformat(), "kind": "closure", "tickets_recomputed": changed}, status=201)


@routes.post("/api/v1/desk/calendar/removals", roles=ADMIN)
@refusals
async def remove_seeded_date(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    b = await read_model(request, DayIn)
    changed = await calendar_admin.remove_seeded_date(sm, principal, b.day, now=now, targets=_targets(request))
    return json_response({"day": b.day.isoformat(), "kind": "removed", "tickets_recomputed": changed}, status=201)


@routes.delete("/api/v1/desk/calendar/{kind}/{day}", roles=ADMIN)
async def withdraw_calendar_change(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    kind = request.match_info["kind"]
    if kind not in ("closure", "removed"):
        raise InvalidInput("kind", "closure or removed")
    changed = await calendar_admin.withdraw_change(sm, principal, _day(request), kind, now=now,
                                                   targets=_targets(request))
    return json_response({"tickets_recomputed": changed})


@routes.get("/api/v1/desk/sla-report", roles=STAFF)
async def sla_report(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    year, month = _query_int(request, "year"), _query_int(request, "month")
    if year is None or month is None or not 1 <= month <= 12:
        raise InvalidInput("month", "give year and month (1-12) of the Jalali calendar")
    report = await reports.monthly_sla_report(sm, principal, year, month, now=now, targets=_targets(request))
    return json_response({"year": year, "month": month, "bands": [r.as_json() for r in report.values()]})


@routes.get("/api/v1/audit", roles=ADMIN)
async def audit_log(request: web.Request) -> web.Response:
    sm, principal, _now = _ctx(request)
    entries = await audit.list_entries(sm, principal, customer_id=_query_int(request, "customer_id"))
    return json_response([audit.entry_json(e) for e in entries])


class DisclosureIn(BaseModel):
    customer_id: RowId
    recipient: str = ""
    letter_reference: str = ""
    subject: str = ""


@routes.post("/api/v1/audit/disclosures", roles=ADMIN)
@refusals
async def disclose(request: web.Request) -> web.Response:
    sm, principal, now = _ctx(request)
    b = await read_model(request, DisclosureIn)
    entry = await audit.disclose(sm, principal, customer_id=b.customer_id, recipient=b.recipient,
                                 letter_reference=b.letter_reference, subject=b.subject, now=now)
    return json_response(audit.entry_json(entry), status=201)
