"""Finance's ledger in the browser: ``/ledger`` lists the entries (filtered by customer and Jalali month) with
the totals per customer, the fines still owed with a form to mark each paid, and a form to charge agreed
out-of-scope work or a package on a ticket (rules 7-8).

The page only reads and asks: it reads through :func:`tickets.ledger.browse.browse_ledger` and
``owed_fines``; "mark paid" calls :func:`tickets.fines.mark_fine_paid` (the service of
``POST /api/v1/fines/{id}/paid``), the charge form :func:`tickets.ledger.items.record_priced_item` after the
API's own body model (:class:`dashboards.web.api_ledger.ItemIn`), so an amount the API refuses (0, negative,
2^63, a fraction) is refused here too, in Persian, with what was typed kept. A form that succeeds answers 303
back to the page with its filters and ``?done=<what>``.

The visits awaiting approval (rule 11) are listed with their cause and the charge approving would post;
"approve" calls :func:`tickets.ledger.visits.approve_visit` (billed to the customer only when their server
caused it; approving twice, or ten times at once, posts one charge: the charge's idempotency key), "reject"
:func:`tickets.ledger.visits.reject_visit` with the reason typed. A visit whose cause is still undetermined is
not approved here: technicians decide the cause first.

Recording a datacenter visit is not offered here: the service allows technicians, the NOC and admins
(``tickets.ledger.visits.RECORDERS``), not finance.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

import jdatetime
from aiohttp import web
from pydantic import Field, ValidationError

from dashboards.web.api_ledger import ItemIn
from dashboards.web.deps import DEPS
from dashboards.web.html import TEHRAN, see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params, ids
from dashboards.web.routing import BODY, FORM, HTML, JSON, PATH, QUERY, RouteTable
from dashboards.web.templating import N_, render
from monitor.errors import InvalidInput, NotFound
from tickets import fines
from tickets.ledger.browse import browse_ledger, ledger_customers, owed_fines
from tickets.ledger.items import record_priced_item
from tickets.ledger.models import Cause, ItemKind
from tickets.ledger.money import MAX_ID, MAX_RIALS
from tickets.ledger.statements import STATEMENT_ROLES
from tickets.ledger.visits import APPROVERS, approve_visit, pending_visits, reject_visit

__all__ = ["routes", "LEDGER_ROLES", "parse_amount"]

routes = RouteTable()
LEDGER_ROLES = STATEMENT_ROLES  # finance and admins
PAGE_SIZE = 50
DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
SEPARATORS = (",", "٬", "_", " ", "\u200c")
MONTH = re.compile(r"(\d{4})\s*[/-]\s*(\d{1,2})")

KIND_WORDS = {"visit": N_("Datacenter visit"), "reinstall": N_("Module reinstall"),
              "out_of_scope": N_("Out-of-scope work"), "package": N_("Package"), "fine": N_("Fine"),
              "payment": N_("Payment"), "reversal": N_("Reversal")}
NOTICES = {"paid": N_("The fine was marked paid; the payment is in the ledger."),
           "item": N_("The charge was recorded in the ledger."),
           "approved": N_("The visit was approved; if the customer's server caused it, it is billed to them."),
           "rejected": N_("The visit was rejected; it is not billed.")}
CAUSE_WORDS = {Cause.CUSTOMER_SERVER: N_("The customer's server"), Cause.COMPANY_NETWORK: N_("The company's network"),
               Cause.UNDETERMINED: N_("Not determined yet")}
REASON_MISSING = N_("Write why the visit is rejected.")
REASON_LONG = N_("The reason is too long.")
CAUSE_UNDECIDED = N_("The cause of this visit is not determined yet: technicians decide it before approval.")
VISIT_REJECTED = N_("This visit was rejected; it cannot be approved.")

BAD_MONTH = N_("Write the month as a Jalali year and month, for example 1405/09.")
BAD_CUSTOMER = N_("Choose a customer from the list.")
BAD_PAGE = N_("The page number is not valid.")
AMOUNT_NOT_NUMBER = N_("Write the amount as a whole number of rials in digits (no decimals, no letters).")
AMOUNT_RANGE = N_("The amount must be at least 1 rial and at most 1,000,000,000,000,000 rials.")
TICKET_BAD = N_("Write the number of an existing ticket.")
KIND_BAD = N_("Choose out-of-scope work or a package.")
IN_SCOPE = N_("This ticket is inside the support scope: its work is not charged (rule 7).")
DESCRIPTION_LONG = N_("The description is too long.")
REFUSED = N_("The ledger refused this charge.")


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def _whole(text: str) -> int | None:
    """``text`` as a whole number (Persian or Arabic-Indic digits and thousands separators allowed, a leading
    minus kept so that the range check names it), or None when it is not one."""
    raw = (text or "").strip().translate(DIGITS)
    for sep in SEPARATORS:
        raw = raw.replace(sep, "")
    sign = -1 if raw[:1] in ("-", "−") else 1
    raw = raw.lstrip("-−")
    return sign * int(raw) if raw.isascii() and raw.isdigit() else None


def parse_amount(text: str) -> int:
    """A typed amount in rials, refused as ``InvalidInput("amount_rials", <message id>)``."""
    value = _whole(text)
    if value is None:
        raise InvalidInput("amount_rials", AMOUNT_NOT_NUMBER)
    if not 1 <= value <= MAX_RIALS:
        raise InvalidInput("amount_rials", AMOUNT_RANGE)
    return value


class Filters(Params):
    customer: str = Field("", max_length=40, description="a customer id, or empty for all")
    month: str = Field("", max_length=40, description="a Jalali month, e.g. 1405/09, or empty for all")
    page: str = Field("", max_length=20, description="page number, from 1")


def _filters(raw: Filters) -> tuple[dict[str, Any], str, dict[str, str]]:
    """The parsed filters (``customer_id``, ``month``, ``page``), a refusal message id ('' if none), and
    the filters as typed (shown again in the form)."""
    typed = {"customer": raw.customer.strip(), "month": raw.month.strip()}
    out: dict[str, Any] = {"customer_id": None, "month": None, "page": 1}
    if typed["customer"]:
        cid = _whole(typed["customer"])
        if cid is None or not 1 <= cid <= MAX_ID:
            return out, BAD_CUSTOMER, typed
        out["customer_id"] = cid
    if typed["month"]:
        m = MONTH.fullmatch(typed["month"].translate(DIGITS))
        if m is None or not (1300 <= int(m[1]) <= 1600 and 1 <= int(m[2]) <= 12):
            return out, BAD_MONTH, typed
        out["month"] = (int(m[1]), int(m[2]))
    if raw.page.strip():
        page = _whole(raw.page)
        if page is None or not 1 <= page <= 1_000_000:
            return out, BAD_PAGE, typed
        out["page"] = page
    return out, "", typed


def _this_month(now) -> tuple[int, int]:
    d = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    return d.year, d.month


def _query(customer_id: int | None, month: tuple[int, int] | None) -> dict[str, str]:
    q = {}
    if customer_id is not None:
        q["customer"] = str(customer_id)
    if month is not None:
        q["month"] = f"{month[0]}/{month[1]:02d}"
    return q


async def _page(request: web.Request, raw: Filters, *, form: str = "", error: str = "",
                typed: dict[str, str] | None = None, status: int = 200) -> web.Response:
    sm, p, now = _ctx(request)
    parsed, bad_filter, typed_filters = _filters(raw)
    customers = await ledger_customers(sm, p)
    visits = await pending_visits(sm, p) if p.role in APPROVERS else []
    view = owed = None
    if not bad_filter:
        try:
            view = await browse_ledger(sm, p, customer_id=parsed["customer_id"], month=parsed["month"],
                                       limit=PAGE_SIZE, offset=(parsed["page"] - 1) * PAGE_SIZE)
        except NotFound:
            bad_filter = BAD_CUSTOMER
    if bad_filter:
        status = 400
    else:
        owed = await owed_fines(sm, p, now=now, customer_id=parsed["customer_id"])
    kept = _query(parsed["customer_id"], parsed["month"]) if not bad_filter else {}
    names = dict(customers) | (view.names if view else {})  # a fine is posted, so its customer is listed
    return render(request, "ledger.html", {
        "view": view, "owed": owed or [], "customers": customers, "names": names, "kind_words": KIND_WORDS,
        "filters": typed_filters, "bad_filter": bad_filter, "month_bad": bad_filter == BAD_MONTH, "kept": kept,
        "pages": max(1, math.ceil(view.count / PAGE_SIZE)) if view else 1, "page": parsed["page"],
        "base_query": urlencode(kept) + "&" if kept else "",
        "notice": NOTICES.get(request.query.get("done", ""), ""),
        "form": form, "error": error, "typed": typed or {}, "item_kinds": [k.value for k in ItemKind],
        "max_rials": MAX_RIALS, "visits": visits, "cause_words": CAUSE_WORDS,
        "statement_month": parsed["month"] or _this_month(now),
    }, status=status, title=N_("Ledger"))


@routes.get("/ledger", roles=LEDGER_ROLES, query=Filters, produces=HTML,
            errors={400: ("a filter over its length (JSON), or the page with the bad filter named in Persian",
                          (JSON, HTML))})
async def ledger_page(request: web.Request) -> web.Response:
    """The ledger's entries, newest first, filtered by ``customer`` (an id) and ``month`` (Jalali, e.g.
    1405/09), 50 a page; the totals per customer over every matching entry; the fines still owed."""
    return await _page(request, request[QUERY])


class BackForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    customer: str = Field("", max_length=40, description="the page's customer filter, kept")
    month: str = Field("", max_length=40, description="the page's month filter, kept")


class ItemForm(BackForm):
    ticket_id: str = Field("", max_length=40)
    kind: str = Field("", max_length=40, description="out_of_scope or package")
    amount_rials: str = Field("", max_length=100, description="whole rials; Persian digits and separators allowed")
    description: str = Field("", max_length=20_000)


def _back(form: BackForm, done: str) -> web.Response:
    """Back to the page with the filters it was posted from (re-parsed: only known values reach the URL)."""
    parsed, bad, _ = _filters(Filters(customer=form.customer, month=form.month))
    q = {} if bad else _query(parsed["customer_id"], parsed["month"])
    return see_other("/ledger?" + urlencode(q | {"done": done}))


# A field over its length is refused by the form model in the shape of every error; a refused value is the
# page again with the reason in Persian and the form as typed.
FORM_ERRORS = {400: ("a field over its length (JSON), or the page again with the reason in Persian",
                     (JSON, HTML)),
               404: "no such fine"}


@routes.post("/ledger/fines/{fine_id}/paid", roles=fines.FINANCE_ROLES, path=ids("fine_id"), body=BackForm,
             body_media=FORM, produces=HTML, status=303, errors=FORM_ERRORS)
async def fine_paid_submit(request: web.Request) -> web.Response:
    """Mark the fine paid (the payment of what is owed is posted; rule 19's suspension lifts), then back."""
    sm, p, now = _ctx(request)
    await fines.mark_fine_paid(sm, p, request[PATH].fine_id, now=now)
    return _back(request[BODY], "paid")


_ITEM_FIELDS = {"ticket_id": TICKET_BAD, "kind": KIND_BAD, "amount_rials": AMOUNT_RANGE,
                "description": DESCRIPTION_LONG}


def _item_in(form: ItemForm) -> ItemIn:
    """The form through the API's body model: the same bounds, refused as ``InvalidInput(field, message id)``."""
    ticket_id = _whole(form.ticket_id)
    if ticket_id is None:
        raise InvalidInput("ticket_id", TICKET_BAD)
    try:
        return ItemIn.model_validate({"ticket_id": ticket_id, "kind": form.kind.strip(),
                                      "amount_rials": parse_amount(form.amount_rials),
                                      "description": form.description.strip()})
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise InvalidInput(field, _ITEM_FIELDS.get(field, REFUSED)) from None


def _why(exc: InvalidInput) -> str:
    """The Persian message id of a refusal (the service's reason is English, for logs and the API)."""
    if exc.reason in _ITEM_FIELDS.values() or exc.reason == AMOUNT_NOT_NUMBER:
        return exc.reason
    if exc.field == "kind" and "in scope" in exc.reason:
        return IN_SCOPE
    return _ITEM_FIELDS.get(exc.field, REFUSED)


@routes.post("/ledger/items", roles=LEDGER_ROLES, body=ItemForm, body_media=FORM, produces=HTML, status=303,
             errors=FORM_ERRORS)
async def item_submit(request: web.Request) -> web.Response:
    """Charge agreed out-of-scope work or a package on a ticket; a refused amount, ticket or kind is the page
    again with the reason in Persian and the form as typed."""
    sm, p, now = _ctx(request)
    form = request[BODY]
    try:
        body = _item_in(form)
        await record_priced_item(sm, p, now=now, **body.model_dump())
    except InvalidInput as exc:
        typed = {"ticket_id": form.ticket_id, "kind": form.kind, "amount_rials": form.amount_rials,
                 "description": form.description, "field": exc.field}
        return await _page(request, Filters(customer=form.customer, month=form.month), form="item",
                           error=_why(exc), typed=typed, status=400)
    return _back(form, "item")


# --- datacenter visits (rule 11) ---------------------------------------------------------------------------

class RejectForm(BackForm):
    reason: str = Field("", max_length=20_000, description="why the visit is not billed")


VISIT_ERRORS = {400: ("a field over its length (JSON), or the page again with the reason in Persian",
                      (JSON, HTML)),
                404: "no such visit"}


async def _visit_refused(request: web.Request, form: BackForm, visit_id: int, message: str,
                         reason: str = "") -> web.Response:
    return await _page(request, Filters(customer=form.customer, month=form.month), form=f"visit-{visit_id}",
                       error=message, typed={"reason": reason}, status=400)


@routes.post("/ledger/visits/{visit_id}/approve", roles=APPROVERS, path=ids("visit_id"), body=BackForm,
             body_media=FORM, produces=HTML, status=303, errors=VISIT_ERRORS)
async def visit_approve_submit(request: web.Request) -> web.Response:
    """Approve the visit: billed to its customer when their server caused it (rule 11), once however often
    the form is sent; a visit whose cause is undetermined, or that was rejected, is refused in Persian."""
    sm, p, now = _ctx(request)
    visit_id = request[PATH].visit_id
    try:
        await approve_visit(sm, p, visit_id, now=now, decided_only=True)
    except InvalidInput as exc:
        why = CAUSE_UNDECIDED if exc.field == "cause" else VISIT_REJECTED
        return await _visit_refused(request, request[BODY], visit_id, why)
    return _back(request[BODY], "approved")


@routes.post("/ledger/visits/{visit_id}/reject", roles=APPROVERS, path=ids("visit_id"), body=RejectForm,
             body_media=FORM, produces=HTML, status=303, errors=VISIT_ERRORS)
async def visit_reject_submit(request: web.Request) -> web.Response:
    """Reject the visit with the reason typed: it is not billed (a charge already posted is reversed)."""
    sm, p, now = _ctx(request)
    form, visit_id = request[BODY], request[PATH].visit_id
    try:
        await reject_visit(sm, p, visit_id, form.reason, now=now)
    except InvalidInput as exc:
        why = REASON_MISSING if "says why" in exc.reason else REASON_LONG
        return await _visit_refused(request, form, visit_id, why, form.reason)
    return _back(form, "rejected")
