"""The customer's ticket desk in the portal, in Persian: their tickets, a new-ticket form and a ticket's thread.

The pages only read and ask: every ticket is opened through :func:`tickets.intake.open_ticket` and every
message or closing through :mod:`tickets.desk`, the same services the JSON API calls. A refusal is shown on
the form in Persian with what was typed kept; its code and field names are never shown. Matching
knowledge-base articles are shown before a ticket is opened (rule 12): the "check" button shows them, and a
submit whose articles were not yet seen shows them first and asks again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from dashboards.portal import customer_services
from dashboards.web.deps import DEPS
from dashboards.web.fa import PRIORITY_FA
from dashboards.web.html import see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import PageQuery, ids
from dashboards.web.portal_routes import phone_open, portal_context
from dashboards.web.portal_sections import suspension
from dashboards.web.routing import FORM, HTML, PATH, RouteTable, parse_query
from dashboards.web.templating import N_, render
from monitor.accounts import Role
from monitor.errors import InvalidInput
from tickets import desk, intake, kb
from tickets.departments import FIELD_LABELS, DepartmentRule, load_departments
from tickets.errors import DuplicateTicket, Refusal, SupportSuspended
from tickets.models import CLOSED_STATUSES
from tickets.priority import no_incident_known
from tickets.sla import SlaTargets

__all__ = ["routes", "PRIORITY_FA", "PRIORITY_HELP"]

routes = RouteTable()
CUSTOMER = {Role.CUSTOMER}
TICKET = ids("ticket_id")
PAGE_SIZE = 50
# Rule 14, in the words of the support terms (message ids; fa.po holds the Persian).
PRIORITY_HELP = {
    "urgent": N_("The server or service is unreachable."),
    "important": N_("A problem that disrupts the service."),
    "normal": N_("Every financial and sales request, and anything other than the two above."),
}
MISSING = N_("Please complete these:")
COMPLETE = N_("The draft is complete; if the guides did not answer you, press “File ticket”.")
SEE_FIRST = N_("Before filing, read the related guides; if they do not solve the problem, press “File ticket” again.")
# Form fields of the draft other than the department's own (those come from its rule).
_BASE = ("department", "service_id", "subject", "body", "priority", "references_ticket_id", "shown_article_ids")
_INT_FIELDS = ("service_id", "references_ticket_id")
SUPPORT_ERRORS = {400: ("the form again with the refusal in Persian", HTML)}


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def _render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    return render(request, template, portal_context() | context, status=status)


async def _departments(sm) -> dict[str, DepartmentRule]:
    async with sm() as session:
        return await load_departments(session)


def _label(rule: DepartmentRule | None, name: str) -> str:
    return (rule.labels.get(name) if rule else None) or FIELD_LABELS.get(name) or name


# --- the list ---------------------------------------------------------------------------------------------

@routes.get("/portal/tickets", roles=CUSTOMER, produces=HTML)
async def tickets_page(request: web.Request) -> web.Response:
    """The customer's tickets: status, department, first-response due time, newest first, ``limit`` (default
    50) a page, read from the database a page at a time."""
    sm, p, now = _ctx(request)
    try:
        q = parse_query(PageQuery, {"limit": str(PAGE_SIZE)} | dict(request.query))
    except InvalidInput as bad:
        return render(request, "bad_filter.html", {
            "field": bad.field, "field_word": {"page": N_("Page"), "limit": N_("Rows per page")}.get(
                bad.field, bad.field), "value": request.query.get(bad.field, ""), "back": "/portal/tickets"},
            status=400, title=N_("Bad filter"))
    total = await desk.count_tickets(sm, p)
    rows = await desk.list_tickets(sm, p, now=now, limit=q.limit, offset=q.offset)
    rules = await _departments(sm)
    return _render(request, "portal_tickets.html", {
        "tickets": rows, "departments": {k: r.name_fa for k, r in rules.items()},
        "page": q.page, "pages": max(1, math.ceil(total / q.limit)), "total": total,
        "base_query": f"limit={q.limit}&" if q.limit != PAGE_SIZE else "",
        "phone_open": await phone_open(request), "suspended": await suspension(sm, p, now)})


# --- the new-ticket form ----------------------------------------------------------------------------------

def _draft_of(form: Mapping[str, Any], rule: DepartmentRule | None) -> dict[str, Any]:
    """The intake draft from the form's text: ids as numbers when they are numbers (else the text, which
    intake refuses naming the field), the department's own fields, the articles already shown."""
    names = list(_BASE) + [n for n in (rule.required_fields if rule else ()) if n not in _BASE]
    draft: dict[str, Any] = {}
    for name in names:
        value = form.get(name)
        if not isinstance(value, str):
            continue
        value = value.strip()
        if name in _INT_FIELDS:
            if value == "":
                continue
            draft[name] = int(value) if value.isascii() and value.isdigit() and len(value) < 19 else value
        elif name == "shown_article_ids":
            draft[name] = sorted({int(v) for v in value.split(",") if v.isascii() and v.isdigit()
                                  and len(v) < 19})
        elif value != "" or name in ("subject", "body"):
            draft[name] = value
    return draft


def _refusal(refusal: Refusal, rule: DepartmentRule | None) -> dict[str, Any]:
    """A refusal as the customer reads it: its Persian message (a field it names by the field's label), and
    where to go next; never its code."""
    text = refusal.message
    if refusal.code == "invalid_field" and refusal.field:
        text = f"{_label(rule, refusal.field)}: {text}"
    dup = refusal.extra.get("duplicate_of") if isinstance(refusal, DuplicateTicket) else None
    return {"text": text, "duplicate_of": int(dup) if dup else None,
            "suspended": isinstance(refusal, SupportSuspended)}


async def _form_page(request: web.Request, draft: dict, *, refusals: list[Refusal] = (), articles: list = (),
                     note: str = "", missing: list[str] = (), status: int = 200) -> web.Response:
    """The form with what was typed; ``note`` is a message id (``missing``: the labels it lists)."""
    sm, p, _now = _ctx(request)
    rules = await _departments(sm)
    dept = draft.get("department") if draft.get("department") in rules else next(iter(rules))
    rule = rules[dept]
    bad = {r.field for r in refusals} | {m for r in refusals for m in r.extra.get("missing", ())}
    fields = [{"name": name, "label": _label(rule, name), "value": draft.get(name, ""), "bad": name in bad,
               "ltr": name == "server_address"}
              for name in rule.required_fields if name not in ("service_id", "description", "subject", "body")]
    body_label = _label(rule, "description") if "description" in rule.required_fields else FIELD_LABELS["body"]
    shown = sorted(set(draft.get("shown_article_ids") or []) | {a.article.id for a in articles})
    return _render(request, "portal_ticket_new.html", {
        "draft": draft, "bad": bad, "rule": rule, "dept": dept,
        "departments": [(k, r.name_fa) for k, r in rules.items()],
        "service_options": [(str(x.id), x.title) for x in await customer_services(sm, p)], "labels": FIELD_LABELS, "fields": fields,
        "body_label": body_label, "body_bad": bool(bad & {"body", "description"}),
        "chosen_priority": draft.get("priority") or "normal", "priority_help": PRIORITY_HELP,
        "shown": ",".join(map(str, shown)), "articles": list(articles),
        "errors": [_refusal(r, rule) for r in refusals], "note": note, "missing": "، ".join(missing),
        "suspended": await suspension(sm, p, _now),
    }, status=status)


@routes.get("/portal/tickets/new", roles=CUSTOMER, produces=HTML)
async def new_ticket_form(request: web.Request) -> web.Response:
    """The new-ticket form (``?department=`` picks the department whose fields are asked; ``?references=``
    a closed ticket this one follows)."""
    draft: dict[str, Any] = {"department": request.query.get("department", "")}
    ref = request.query.get("references", "")
    if ref.isascii() and ref.isdigit() and len(ref) < 19:
        draft["references_ticket_id"] = int(ref)
    return await _form_page(request, draft)


@routes.post("/portal/tickets/new", roles=CUSTOMER, body_media=FORM, produces=HTML, status=303,
             errors=SUPPORT_ERRORS)
async def new_ticket_submit(request: web.Request) -> web.StreamResponse:
    """Check the draft (``action=check``: articles and problems) or open the ticket through intake; a
    refusal is the form again with the message and everything typed."""
    sm, p, now = _ctx(request)
    form = await request.post()
    rules = await _departments(sm)
    draft = _draft_of(form, rules.get(str(form.get("department") or "")))
    async with sm() as session:
        articles = await kb.suggest(session, draft)
    unseen = [a for a in articles if a.article.id not in set(draft.get("shown_article_ids") or [])]
    if form.get("action") == "check":
        try:
            report = await intake.check_draft(sm, p, draft, now=now)
        except Refusal as refusal:
            return await _form_page(request, draft, refusals=[refusal], status=400)
        problems = [Refusal(x["error"], x["field"], x["message"], extra={"missing": []}) for x in report["problems"]]
        rule = rules.get(draft.get("department") or "")
        missing = [_label(rule, m) for m in report["missing"]]
        note = MISSING if missing else ("" if problems else COMPLETE)
        return await _form_page(request, draft, refusals=problems, articles=articles, note=note, missing=missing)
    if unseen:  # rule 12: the articles are seen before the ticket is opened
        return await _form_page(request, draft, articles=articles, note=SEE_FIRST)
    has_incident = request.app[DEPS].services.get("has_open_incident") or no_incident_known
    targets = request.app[DEPS].services.get("sla_targets") or SlaTargets()
    try:
        ticket = await intake.open_ticket(sm, p, draft, now=now, targets=targets, has_open_incident=has_incident)
    except Refusal as refusal:
        return await _form_page(request, draft, refusals=[refusal], articles=articles, status=400)
    return see_other(f"/portal/tickets/{ticket.id}")


# --- one ticket -------------------------------------------------------------------------------------------

async def _ticket_page(request: web.Request, ticket_id: int, *, reply: str = "", refusal: Refusal | None = None,
                       status: int = 200) -> web.Response:
    sm, p, now = _ctx(request)
    # Another customer's ticket raises NotFound: answered 404 like a ticket that does not exist.
    ticket, messages = await desk.get_ticket(sm, p, ticket_id, now=now)
    rules = await _departments(sm)
    return _render(request, "portal_ticket.html", {
        "t": ticket, "messages": messages, "closed": ticket.status in CLOSED_STATUSES,
        "department": rules[ticket.department].name_fa if ticket.department in rules else "—",
        "reply": reply, "error": refusal.message if refusal else ""}, status=status)


@routes.get("/portal/tickets/{ticket_id}", roles=CUSTOMER, path=TICKET, produces=HTML, errors=SUPPORT_ERRORS)
async def ticket_page(request: web.Request) -> web.Response:
    """One of the customer's tickets: the thread, a reply form and closing (another's is 404)."""
    return await _ticket_page(request, request[PATH].ticket_id)


@routes.post("/portal/tickets/{ticket_id}/reply", roles=CUSTOMER, path=TICKET, body_media=FORM, produces=HTML,
             status=303, errors=SUPPORT_ERRORS)
async def ticket_reply(request: web.Request) -> web.StreamResponse:
    """Write on the thread; a refusal (not Persian, closed) is the page again with the text kept."""
    sm, p, now = _ctx(request)
    ticket_id = request[PATH].ticket_id
    body = (await request.post()).get("body")
    body = body if isinstance(body, str) else ""
    try:
        await desk.add_message(sm, p, ticket_id, body, now=now)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, reply=body, refusal=refusal, status=400)
    return see_other(f"/portal/tickets/{ticket_id}")


@routes.post("/portal/tickets/{ticket_id}/close", roles=CUSTOMER, path=TICKET, produces=HTML, status=303,
             errors=SUPPORT_ERRORS)
async def ticket_close(request: web.Request) -> web.StreamResponse:
    """Close the customer's own ticket."""
    sm, p, now = _ctx(request)
    await desk.close(sm, p, request[PATH].ticket_id, now=now)
    return see_other(f"/portal/tickets/{request[PATH].ticket_id}")
