"""Rule 4 in the admin's browser: ``/admin/audit`` lists who read or exported whose data and every disclosure,
newest first, 50 a page, filtered by customer (its name) and kind, with Jalali times; its form records a
disclosure to a third party through :func:`tickets.audit.disclose`, which refuses one without the judicial
letter's reference. A refusal is the page again (400) with the Persian reason, the field marked and the form
as typed; nothing is written."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from dashboards.web.deps import DEPS
from dashboards.web.html import see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params
from dashboards.web.routing import BODY, FORM, HTML, JSON, QUERY, RouteTable
from dashboards.web.templating import N_, render
from monitor.accounts import Role, User
from monitor.errors import InvalidInput
from monitor.models import Customer
from tickets import audit
from tickets.errors import Refusal

__all__ = ["routes", "ACTION_WORDS"]

routes = RouteTable()
ADMIN_ROLES = frozenset({Role.ADMIN})
PAGE_SIZE = 50
ERRORS = {400: ("a bad filter or field, or the page again with the reason in Persian and the form as typed",
                (JSON, HTML))}
ACTION_WORDS = {audit.READ_TICKET: N_("Read a ticket"), audit.EXPORT_TICKETS: N_("Exported tickets"),
                audit.READ_REPORT: N_("Read a report"), audit.READ_STATEMENT: N_("Read a statement"),
                audit.DISCLOSURE: N_("Disclosure")}
REFUSALS = {
    "letter_reference_required": N_("A customer's data is disclosed only with a judicial authority's letter; "
                                    "write the letter's reference."),
    "recipient_required": N_("Name who receives the data."),
    "customer": N_("There is no customer with this name."),
}


class AuditQuery(Params):
    customer: str = Field("", max_length=200, description="a customer's name")
    kind: str = Field("", max_length=40, description="one of the audit actions")
    page: int = Field(1, ge=1, le=100_000)


class DisclosureForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    customer: str = Field("", max_length=200, description="the customer whose data is disclosed (its name)")
    recipient: str = Field("", max_length=200, description="who receives the data")
    letter_reference: str = Field("", max_length=200, description="the judicial letter's reference")
    subject: str = Field("", max_length=200, description="what is disclosed")


async def _customer_id(sm, name: str, field: str) -> int | None:
    name = (name or "").strip()
    if not name:
        return None
    async with sm() as session:
        cid = (await session.execute(select(Customer.id).where(Customer.name == name))).scalar_one_or_none()
    if cid is None:
        raise InvalidInput(field, f"no customer named {name!r}")
    return cid


async def _names(sm, entries) -> tuple[dict[int, str], dict[int, str]]:
    users = {e.user_id for e in entries if e.user_id is not None}
    customers = {e.customer_id for e in entries if e.customer_id is not None}
    async with sm() as session:
        u = dict((await session.execute(select(User.id, User.username).where(User.id.in_(users)))).all())
        c = dict((await session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(customers)))).all())
    return u, c


async def _page(request: web.Request, *, error: str = "", typed: dict | None = None,
                status: int = 200) -> web.Response:
    deps, q = request.app[DEPS], request[QUERY]
    try:
        customer_id = await _customer_id(deps.sessionmaker, q.customer, "filter_customer")
        entries = [] if q.kind and q.kind not in audit.ACTIONS else await audit.list_entries(
            deps.sessionmaker, request[PRINCIPAL], customer_id=customer_id, action=q.kind or None,
            limit=PAGE_SIZE + 1, offset=(q.page - 1) * PAGE_SIZE)
    except InvalidInput:  # an unknown customer in the filter: the page says so, with the filter as typed
        entries, error, status = [], error or REFUSALS["customer"], 400
        typed = (typed or {}) | {"field": "filter_customer"}
    more, entries = len(entries) > PAGE_SIZE, entries[:PAGE_SIZE]
    users, customers = await _names(deps.sessionmaker, entries)
    base = "".join(f"{k}={v}&" for k, v in (("customer", q.customer), ("kind", q.kind)) if v)
    return render(request, "admin_audit.html", {
        "entries": entries, "users": users, "customers": customers, "action_words": ACTION_WORDS,
        "filters": {"customer": q.customer, "kind": q.kind}, "page": q.page, "more": more, "base": base,
        "error": error, "typed": typed or {}, "notice": request.query.get("done") == "disclosed",
    }, status=status, title=N_("Audit log"))


@routes.get("/admin/audit", roles=ADMIN_ROLES, query=AuditQuery, produces=HTML, errors=ERRORS)
async def admin_audit(request: web.Request) -> web.Response:
    """The audit log, newest first, by customer and kind, one page of 50."""
    return await _page(request)


@routes.post("/admin/audit/disclosures", roles=ADMIN_ROLES, query=AuditQuery, body=DisclosureForm,
             body_media=FORM, produces=HTML, status=303, errors=ERRORS)
async def admin_disclosure(request: web.Request) -> web.Response:
    """Record a disclosure (rule 4): refused without the judicial letter's reference."""
    deps, form = request.app[DEPS], request[BODY]
    typed = form.model_dump(exclude={"csrf"})
    try:
        customer_id = await _customer_id(deps.sessionmaker, form.customer, "customer")
        if customer_id is None:
            raise InvalidInput("customer", "name the customer")
        await audit.disclose(deps.sessionmaker, request[PRINCIPAL], customer_id=customer_id,
                             recipient=form.recipient, letter_reference=form.letter_reference,
                             subject=form.subject, now=deps.clock.now())
    except Refusal as refusal:
        return await _page(request, error=REFUSALS.get(refusal.code, N_("The change was refused.")),
                           typed=typed | {"field": refusal.field}, status=400)
    except InvalidInput:
        return await _page(request, error=REFUSALS["customer"], typed=typed | {"field": "customer"}, status=400)
    return see_other("/admin/audit?done=disclosed")
