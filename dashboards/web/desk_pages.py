"""The technicians' ticket desk in the browser: the queue and one ticket's page with its forms.

The pages only read and ask: the queue is :func:`tickets.desk.queue` with the same filters as the JSON queue
(:class:`dashboards.web.api_tickets.QueueQuery`), and every form calls the service the API calls
(:func:`tickets.desk.answer`, ``assign``, ``lower_priority``, ``close``). A form that succeeds redirects back
(303) with ``?done=<what>``, which the page shows as a notice from a fixed list; a refusal is the page again
(400) with the Persian message and what was typed kept. A bad filter is a 400 page naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import jdatetime
from aiohttp import web
from pydantic import Field

from dashboards.web.api_tickets import QueueQuery, SlaReportQuery, _targets
from dashboards.web.deps import DEPS
from dashboards.web.fa import MONTHS_FA, PRIORITY_FA, STATE_FA
from dashboards.web.html import TEHRAN, see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params, ids
from dashboards.web.routing import BODY, FORM, HTML, JSON, PATH, RouteTable, parse_query
from dashboards.web.templating import N_, render
from monitor.accounts import Role
from monitor.errors import InvalidInput
from tickets import desk, fines, packages, reports
from tickets.departments import load_departments
from tickets.errors import Refusal
from tickets.models import CLOSED_STATUSES, OPEN_STATUSES, Priority
from tickets.monitoring import watch_of
from tickets.priority import RANK
from tickets.sla import BANDS, OFFICE, is_breached

__all__ = ["routes", "DESK_ROLES", "STATUS_WORDS", "NOTICES"]

routes = RouteTable()
DESK_ROLES = frozenset({Role.TECHNICIAN, Role.NOC, Role.ADMIN})
TICKET = ids("ticket_id")
PAGE_SIZE = 50
# A field the form model refuses is answered in the shape of every error; a refusal of the desk is the page
# again with the refusal in Persian and the typed text kept.
ERRORS = {400: ("a field refused (JSON), or the page again with the desk's refusal in Persian", (JSON, HTML))}

# Statuses in staff words (the customer's portal says "waiting on your reply"; staff read "on the customer").
STATUS_WORDS: Mapping[str, str] = {
    "open": N_("Open"), "answered": N_("Answered"), "waiting_on_customer": N_("Waiting on the customer"),
    "closed": N_("Closed"), "closed_without_answer": N_("Closed without answer")}
# Staff pages may be read in English; Persian readers get rule 14's words of the customer pages.
PRIORITY_EN = {"urgent": N_("Urgent"), "important": N_("Important"), "normal": N_("Normal")}
NOTICES: Mapping[str, str] = {
    "answered": N_("The answer was sent to the customer."), "assigned": N_("The ticket is now assigned to you."),
    "priority": N_("The priority was changed."), "closed": N_("The ticket was closed."),
    "note": N_("The internal note was saved; the customer does not see it."),
    "scope_in": N_("The ticket is now in scope."),
    "scope_out": N_("The ticket is now out of scope; the customer is offered paid work or a package."),
    "misuse": N_("The urgent priority was marked as misused and a violation of rule 14 recorded."),
    "violation": N_("The violation was recorded; finance may fine it."),
    "incomplete": N_("The ticket was closed without an answer: incomplete information.")}
INCIDENT_WORDS: Mapping[str, str] = {"triggered": N_("Triggered"), "acknowledged": N_("Acknowledged"),
                                     "resolved": N_("Resolved")}
BAND_WORDS: Mapping[str, str] = {OFFICE: N_("In office hours"), "outside": N_("Outside office hours")}
SCOPE_WORDS: Mapping[str, str] = {"in": N_("In scope"), "out": N_("Out of scope"), "undecided": N_("Scope not decided")}
FILTER_FIELDS = {"status": N_("Status filter"), "priority": N_("Priority filter"), "page": N_("Page"),
                 "limit": N_("Rows per page"),
                 "department": N_("Department filter"), "overdue": N_("Overdue filter"), "mine": N_("Mine filter"),
                 "scope": N_("Scope filter")}


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def _render(request: web.Request, template: str, context: dict[str, Any], *, title: str,
           status: int = 200) -> web.Response:
    """Render a desk page; message ids (``title``, the words of statuses and priorities, a notice) are
    translated by the template, in the page's language."""
    return render(request, template, context | {
        "status_words": STATUS_WORDS, "priority_fa": PRIORITY_FA, "priority_en": PRIORITY_EN,
        "page_title": title}, status=status, title=title)


# --- the queue --------------------------------------------------------------------------------------------

@routes.get("/desk", roles=DESK_ROLES, produces=HTML, errors={400: ("a bad filter, named", HTML)})
async def desk_queue_page(request: web.Request) -> web.Response:
    """The queue of open tickets by first-response due time, with each one's band (rule 17: 1 h in office
    hours, 3 h outside) and a countdown to its due time, filtered by ``status``, ``priority``, ``department``,
    ``overdue``, ``mine`` and ``scope`` (the JSON queue's filters), ``limit`` (default 50) a page; the page is
    read from the database, not sliced in memory."""
    sm, p, now = _ctx(request)
    try:
        q = parse_query(QueueQuery, {"limit": str(PAGE_SIZE)} | dict(request.query))
    except InvalidInput as bad:
        return _render(request, "desk_error.html", {
            "field": bad.field, "field_word": FILTER_FIELDS.get(bad.field, bad.field),
            "value": request.query.get(bad.field, "")}, title=N_("Bad filter"), status=400)
    f = q.queue_filter()
    total = await desk.queue_count(sm, p, f, now=now)
    pages = max(1, math.ceil(total / q.limit))
    shown = await desk.queue(sm, p, f, now=now, limit=q.limit, offset=q.offset)
    named = await desk.names(sm, p, shown)
    async with sm() as session:
        departments = {k: r.name_fa for k, r in (await load_departments(session)).items()}
    filters = {k: v for k, v in (("status", q.status), ("priority", q.priority), ("department", q.department),
                                 ("scope", q.scope)) if v}
    filters |= {k: "1" for k, v in (("overdue", q.overdue), ("mine", q.mine)) if v}
    kept = filters | ({"limit": q.limit} if q.limit != PAGE_SIZE else {})
    targets = _targets(request)
    return _render(request, "desk_queue.html", {
        "tickets": [{"t": t, "overdue": t.first_response_at is None and is_breached(t.first_response_due, None, now)}
                    for t in shown],
        "names": named, "total": total, "page": q.page, "pages": pages,
        "base_query": urlencode(kept) + "&" if kept else "", "filters": filters,
        "statuses": [s.value for s in OPEN_STATUSES], "priorities": [x.value for x in Priority],
        "departments": departments, "scopes": list(desk.QUEUE_SCOPES), "scope_words": SCOPE_WORDS,
        "band_words": BAND_WORDS, "band_hours": {b: int(targets.of(b).total_seconds() // 3600) for b in BANDS},
        "now_iso": now.isoformat(),
    }, title=N_("Ticket desk"))


# --- the SLA report ---------------------------------------------------------------------------------------



@routes.get("/desk/sla", roles=DESK_ROLES, produces=HTML, errors={400: ("a bad month, named", HTML)})
async def desk_sla_page(request: web.Request) -> web.Response:
    """A Jalali month's first-response figures per band (rule 11: 1 h in office hours, 3 h outside): tickets,
    average, median and 90th percentile, breaches and those still unanswered; ``year`` and ``month`` (default:
    this month in Tehran), the JSON report's query."""
    sm, p, now = _ctx(request)
    today = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    try:
        q = parse_query(SlaReportQuery, {"year": str(today.year), "month": str(today.month)} | dict(request.query))
    except InvalidInput as bad:
        return _render(request, "desk_error.html", {
            "field": bad.field, "field_word": {"year": N_("Year"), "month": N_("Month")}.get(bad.field, bad.field),
            "value": request.query.get(bad.field, "")}, title=N_("Bad filter"), status=400)
    report = await reports.monthly_sla_report(sm, p, q.year, q.month, now=now, targets=_targets(request))
    prev = (q.year, q.month - 1) if q.month > 1 else (q.year - 1, 12)
    after = (q.year, q.month + 1) if q.month < 12 else (q.year + 1, 1)
    return _render(request, "desk_sla.html", {
        "bands": list(report.values()), "band_words": BAND_WORDS, "year": q.year, "month": q.month,
        "month_name": MONTHS_FA[q.month - 1], "prev": prev, "next": after,
        "is_current": (q.year, q.month) == (today.year, today.month),
    }, title=N_("SLA report"))


# --- one ticket -------------------------------------------------------------------------------------------

async def _ticket_page(request: web.Request, ticket_id: int, *, typed: str = "", waiting: bool = False,
                       error: Refusal | None = None, error_form: str = "", status: int = 200,
                       kept: Mapping[str, str] | None = None) -> web.Response:
    sm, p, now = _ctx(request)
    ticket, messages = await desk.get_ticket(sm, p, ticket_id, now=now)
    named = await desk.names(sm, p, [ticket], messages)
    watch = await watch_of(sm, p, service_id=ticket.service_id, incident_id=ticket.incident_id)
    violations = await fines.violations_of(sm, p, ticket_id)
    done = request.query.get("done", "")
    lower = [x.value for x in Priority if RANK[x] <= RANK[Priority(ticket.priority)] and x != ticket.priority]
    return _render(request, "desk_ticket.html", {
        "t": ticket, "messages": messages, "names": named, "closed": ticket.status in CLOSED_STATUSES,
        "overdue": is_breached(ticket.first_response_due, ticket.first_response_at, now),
        "notice": NOTICES.get(done, ""),
        "typed": typed, "waiting": waiting, "error": error.message if error else "", "error_form": error_form,
        "lower_priorities": lower, "mine": ticket.assignee_id == p.user_id, "kept": kept or {},
        "watch": watch, "state_fa": STATE_FA, "incident_words": INCIDENT_WORDS, "violations": violations,
        "scope_words": SCOPE_WORDS, "band_words": BAND_WORDS, "rules": list(fines.RULES),
        "misuse_marked": any(v.rule == 14 for v in violations),
        "can_mark_misuse": Priority.URGENT in (ticket.priority, ticket.requested_priority),
        "internal": desk.INTERNAL,
    }, title=N_("Ticket"), status=status)


@routes.get("/desk/tickets/{ticket_id}", roles=DESK_ROLES, path=TICKET, produces=HTML)
async def desk_ticket_page(request: web.Request) -> web.Response:
    """One ticket: its thread (internal notes marked), its facts, what monitoring sees of its service (the
    monitors' states, the incident) and the forms (answer, internal note, assign to me, priority, rule 14's
    misuse, scope, a violation, close, close as incomplete information)."""
    return await _ticket_page(request, request[PATH].ticket_id)


class AnswerForm(Params):
    body: str = Field("", description="the answer, in Persian (rule 1)")
    waiting_on_customer: bool = False
    csrf: str = Field("", max_length=200)


class PriorityForm(Params):
    priority: str = Field("", max_length=40, description="urgent, important or normal (only lower)")
    csrf: str = Field("", max_length=200)


class CsrfForm(Params):
    csrf: str = Field("", max_length=200)


def _back(ticket_id: int, done: str) -> web.Response:
    return see_other(f"/desk/tickets/{ticket_id}?done={done}")


@routes.post("/desk/tickets/{ticket_id}/answer", roles=DESK_ROLES, path=TICKET, body=AnswerForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def desk_answer_submit(request: web.Request) -> web.Response:
    """Answer the customer (the first answer stops the first-response clock); a refusal (not Persian, the
    ticket closed) is the page again with the text kept."""
    sm, p, now = _ctx(request)
    ticket_id, form = request[PATH].ticket_id, request[BODY]
    try:
        await desk.answer(sm, p, ticket_id, form.body, now=now, waiting_on_customer=form.waiting_on_customer)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, typed=form.body, waiting=form.waiting_on_customer,
                                  error=refusal, error_form="answer", status=400)
    return _back(ticket_id, "answered")


@routes.post("/desk/tickets/{ticket_id}/assign", roles=DESK_ROLES, path=TICKET, body=CsrfForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def desk_assign_submit(request: web.Request) -> web.Response:
    """Assign the ticket to the one who asks."""
    sm, p, _now = _ctx(request)
    ticket_id = request[PATH].ticket_id
    try:
        await desk.assign(sm, p, ticket_id, p.user_id)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="assign", status=400)
    return _back(ticket_id, "assigned")


@routes.post("/desk/tickets/{ticket_id}/priority", roles=DESK_ROLES, path=TICKET, body=PriorityForm,
             body_media=FORM, produces=HTML, status=303, errors=ERRORS)
async def desk_priority_submit(request: web.Request) -> web.Response:
    """Lower the ticket's priority (rule 14: never raised here)."""
    sm, p, _now = _ctx(request)
    ticket_id = request[PATH].ticket_id
    try:
        await desk.lower_priority(sm, p, ticket_id, request[BODY].priority)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="priority", status=400)
    return _back(ticket_id, "priority")


@routes.post("/desk/tickets/{ticket_id}/close", roles=DESK_ROLES, path=TICKET, body=CsrfForm, body_media=FORM,
             produces=HTML, status=303)
async def desk_close_submit(request: web.Request) -> web.Response:
    """Close the ticket (closing twice is harmless)."""
    sm, p, now = _ctx(request)
    ticket_id = request[PATH].ticket_id
    await desk.close(sm, p, ticket_id, now=now)
    return _back(ticket_id, "closed")


class NoteForm(Params):
    body: str = Field("", max_length=20000, description="the internal note (staff only)")
    csrf: str = Field("", max_length=200)


class ScopeForm(Params):
    scope: str = Field("", max_length=40, description="rule 5: in or out")
    csrf: str = Field("", max_length=200)


class MisuseForm(Params):
    note: str = Field("", max_length=2000, description="why the urgent priority was misused")
    csrf: str = Field("", max_length=200)


class ViolationForm(Params):
    rule: str = Field("", max_length=40, description="the rule of the terms violated (1 to 19)")
    note: str = Field("", max_length=2000)
    csrf: str = Field("", max_length=200)


_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


@routes.post("/desk/tickets/{ticket_id}/note", roles=DESK_ROLES, path=TICKET, body=NoteForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def desk_note_submit(request: web.Request) -> web.Response:
    """An internal note on the thread: staff read it, the customer never does; it is not an answer."""
    sm, p, now = _ctx(request)
    ticket_id, form = request[PATH].ticket_id, request[BODY]
    try:
        await desk.add_note(sm, p, ticket_id, form.body, now=now)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="note", status=400,
                                  kept={"note": form.body})
    return _back(ticket_id, "note")


@routes.post("/desk/tickets/{ticket_id}/scope", roles=DESK_ROLES, path=TICKET, body=ScopeForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def desk_scope_submit(request: web.Request) -> web.Response:
    """Rule 5: set the ticket in scope (free) or out of scope (paid work or a package; an active package of
    the customer's is attached)."""
    sm, p, now = _ctx(request)
    ticket_id, form = request[PATH].ticket_id, request[BODY]
    try:
        out = await packages.set_scope(sm, p, ticket_id, form.scope, today=now.astimezone(TEHRAN).date())
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="scope", status=400)
    return _back(ticket_id, f"scope_{out['scope']}")


@routes.post("/desk/tickets/{ticket_id}/misuse", roles=DESK_ROLES, path=TICKET, body=MisuseForm,
             body_media=FORM, produces=HTML, status=303, errors=ERRORS)
async def desk_misuse_submit(request: web.Request) -> web.Response:
    """Rule 14: mark an urgent ticket as filed while the service was up (a violation of rule 14 is recorded)."""
    sm, p, now = _ctx(request)
    ticket_id, form = request[PATH].ticket_id, request[BODY]
    try:
        await desk.mark_urgent_misuse(sm, p, ticket_id, note=form.note, now=now)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="misuse", status=400,
                                  kept={"misuse_note": form.note})
    return _back(ticket_id, "misuse")


@routes.post("/desk/tickets/{ticket_id}/violation", roles=DESK_ROLES, path=TICKET, body=ViolationForm,
             body_media=FORM, produces=HTML, status=303, errors=ERRORS)
async def desk_violation_submit(request: web.Request) -> web.Response:
    """Rule 19: record which rule of the terms the ticket violated (finance may then fine it)."""
    sm, p, now = _ctx(request)
    ticket_id, form = request[PATH].ticket_id, request[BODY]
    typed = form.rule.strip().translate(_DIGITS)
    try:
        rule = int(typed) if typed.isdigit() else 0
        await fines.record_violation(sm, p, ticket_id, rule=rule, note=form.note.strip(), now=now)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="violation", status=400,
                                  kept={"rule": form.rule, "violation_note": form.note})
    return _back(ticket_id, "violation")


@routes.post("/desk/tickets/{ticket_id}/close-incomplete", roles=DESK_ROLES, path=TICKET, body=CsrfForm,
             body_media=FORM, produces=HTML, status=303, errors=ERRORS)
async def desk_close_incomplete_submit(request: web.Request) -> web.Response:
    """Rule 13: close the ticket without an answer because its information is missing or wrong."""
    sm, p, now = _ctx(request)
    ticket_id = request[PATH].ticket_id
    try:
        await desk.close_without_answer(sm, p, ticket_id, reason="incomplete_information", now=now)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, error=refusal, error_form="close", status=400)
    return _back(ticket_id, "incomplete")
