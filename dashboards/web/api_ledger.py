"""Ledger routes: technicians record datacenter visits, NOC leads approve them, finance reads the ledger,
records and imports payments and stores statements; a customer reads only their own monthly statement (in
toman, Persian digits, Jalali dates). The rules live in ``tickets.ledger``; these handlers only translate."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, Strict
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
    page_links,
    page_of,
    paged,
)
from dashboards.web.routing import BODY, PATH, QUERY, RouteTable
from dashboards.web.types import AwareMoment, Rials, RowId
from monitor.accounts import ALL_ROLES, STAFF, Role
from monitor.errors import InvalidInput, NotFound
from tickets.ledger.browse import customer_entries as read_customer_entries
from tickets.ledger.errors import PaymentFileError
from tickets.ledger.format import statement_csv, statement_fa
from tickets.ledger.installs import CATALOGUE_ROLES, INSTALLER_ROLES, add_module, record_install
from tickets.ledger.items import ITEM_ROLES, record_priced_item
from tickets.ledger.models import DatacenterVisit, LedgerEntry, Module, VisitTechnician
from tickets.ledger.money import MAX_RIALS
from tickets.ledger.payments import FINANCE_ROLES, import_payments_csv, record_payment, reverse_entry
from tickets.ledger.statements import STATEMENT_ROLES, generate_statement, read_statement
from tickets.ledger.visits import (
    APPROVERS,
    RECORDERS,
    TARIFF_ROLES,
    approve_visit,
    record_visit,
    reject_visit,
    set_cause,
    set_tariff,
    visit_json,
)

__all__ = ["routes"]

routes = RouteTable()
BASE = "/api/v1/ledger"
MONTH = "{year}/{month}"  # Jalali year and month; anything else is answered as missing
VISIT = ids("visit_id")
CUSTOMER = ids("customer_id")


class MonthPath(Params):
    customer_id: PathId
    year: JalaliYear
    month: JalaliMonth


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VisitIn(_Body):
    datacenter_id: RowId
    technician_ids: list[RowId]
    departed_at: AwareMoment
    returned_at: AwareMoment
    incident_id: RowId | None = None
    ticket_id: RowId | None = None
    customer_id: RowId | None = None
    cause: str = "undetermined"
    notes: str = ""


class CauseIn(_Body):
    cause: str
    note: str = ""


class RejectIn(_Body):
    reason: str = Field(min_length=1, max_length=2000, description="why the visit is not billed")


class TariffIn(_Body):
    datacenter_id: RowId
    per_visit_rials: Rials
    per_technician_rials: Annotated[int, Strict(), Field(ge=0, le=MAX_RIALS)] = 0
    effective_from: AwareMoment


class ModuleIn(_Body):
    name: str = Field(min_length=1, max_length=100)  # the column's length
    reinstall_price_rials: Rials


class InstallIn(_Body):
    customer_id: RowId
    module_id: RowId
    ticket_id: RowId | None = None


class ItemIn(_Body):
    ticket_id: RowId
    kind: str
    amount_rials: Rials
    description: str = ""
    package_id: RowId | None = None


class PaymentIn(_Body):
    customer_id: RowId
    amount_rials: Rials
    reference: str
    fine_id: RowId | None = None
    note: str = ""


class ReverseIn(_Body):
    reason: str


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def entry_json(e: LedgerEntry) -> dict:
    return {"id": e.id, "customer_id": e.customer_id, "kind": e.kind, "amount_rials": e.amount_rials,
            "posted_at": e.posted_at.isoformat(), "ticket_id": e.ticket_id, "visit_id": e.visit_id,
            "incident_id": e.incident_id, "install_id": e.install_id, "item_id": e.item_id, "fine_id": e.fine_id,
            "due_at": e.due_at.isoformat() if e.due_at else None, "reference": e.reference,
            "reverses_id": e.reverses_id, "description": e.description}


async def _visit_out(sm, visit_id: int) -> dict:
    async with sm() as s:
        visit = await s.get(DatacenterVisit, visit_id)
        if visit is None:
            raise NotFound(f"visit {visit_id}")
        techs = (await s.execute(select(VisitTechnician.user_id).where(VisitTechnician.visit_id == visit_id)
                                 .order_by(VisitTechnician.user_id))).scalars().all()
        return visit_json(visit, list(techs))


@routes.post(f"{BASE}/visits", roles=RECORDERS, body=VisitIn, status=201)
async def create_visit(request: web.Request) -> web.Response:
    """Record a datacenter visit (who went, when, why)."""
    sm, p, now = _ctx(request)
    visit = await record_visit(sm, p, now=now, **request[BODY].model_dump())
    return json_response(await _visit_out(sm, visit.id), status=201)


@routes.get(f"{BASE}/visits", roles=STAFF, query=PageQuery, paginated=True)
async def list_visits(request: web.Request) -> web.Response:
    """Datacenter visits, latest first."""
    q = request[QUERY]
    stmt = select(DatacenterVisit).order_by(DatacenterVisit.departed_at.desc(), DatacenterVisit.id.desc())
    async with request.app[DEPS].sessionmaker() as s:
        rows = (await s.execute(paged(stmt, q))).scalars().all()
    return page_of(request, list(rows), q, visit_json)


@routes.get(f"{BASE}/visits/{{visit_id}}", roles=STAFF, path=VISIT)
async def get_visit(request: web.Request) -> web.Response:
    """One visit with its technicians."""
    return json_response(await _visit_out(request.app[DEPS].sessionmaker, request[PATH].visit_id))


@routes.post(f"{BASE}/visits/{{visit_id}}/approve", roles=APPROVERS, path=VISIT)
async def approve(request: web.Request) -> web.Response:
    """Approve a visit (its charge is posted if the customer caused it)."""
    sm, p, now = _ctx(request)
    visit = await approve_visit(sm, p, request[PATH].visit_id, now=now)
    return json_response(await _visit_out(sm, visit.id))


@routes.post(f"{BASE}/visits/{{visit_id}}/reject", roles=APPROVERS, path=VISIT, body=RejectIn)
async def reject(request: web.Request) -> web.Response:
    """Reject a visit with a reason: it is not billed (a charge already posted is reversed)."""
    sm, p, now = _ctx(request)
    visit = await reject_visit(sm, p, request[PATH].visit_id, request[BODY].reason, now=now)
    return json_response(await _visit_out(sm, visit.id))


@routes.post(f"{BASE}/visits/{{visit_id}}/cause", roles=RECORDERS, path=VISIT, body=CauseIn)
async def change_cause(request: web.Request) -> web.Response:
    """Change the visit's cause."""
    sm, p, now = _ctx(request)
    body = request[BODY]
    visit = await set_cause(sm, p, request[PATH].visit_id, body.cause, note=body.note, now=now)
    return json_response(await _visit_out(sm, visit.id))


@routes.post(f"{BASE}/tariffs", roles=TARIFF_ROLES, body=TariffIn, status=201)
async def create_tariff(request: web.Request) -> web.Response:
    """Set a datacenter's visit tariff from a moment on."""
    sm, p, _ = _ctx(request)
    t = await set_tariff(sm, p, **request[BODY].model_dump())
    return json_response({"id": t.id, "datacenter_id": t.datacenter_id, "per_visit_rials": t.per_visit_rials,
                          "per_technician_rials": t.per_technician_rials,
                          "effective_from": t.effective_from.isoformat()}, status=201)


def _module_json(m: Module) -> dict:
    return {"id": m.id, "name": m.name, "reinstall_price_rials": m.reinstall_price_rials}


@routes.get(f"{BASE}/modules", roles=STAFF, query=PageQuery, paginated=True)
async def list_modules(request: web.Request) -> web.Response:
    """The catalogue of installable modules."""
    q = request[QUERY]
    async with request.app[DEPS].sessionmaker() as s:
        rows = (await s.execute(paged(select(Module).order_by(Module.name, Module.id), q))).scalars().all()
    return page_of(request, list(rows), q, _module_json)


@routes.post(f"{BASE}/modules", roles=CATALOGUE_ROLES, body=ModuleIn, status=201)
async def create_module(request: web.Request) -> web.Response:
    """Add a module to the catalogue."""
    sm, p, _ = _ctx(request)
    m = await add_module(sm, p, **request[BODY].model_dump())
    return json_response({"id": m.id, "name": m.name, "reinstall_price_rials": m.reinstall_price_rials}, 201)


@routes.post(f"{BASE}/installs", roles=INSTALLER_ROLES, body=InstallIn, status=201)
async def create_install(request: web.Request) -> web.Response:
    """Record a module install (a reinstall is charged)."""
    sm, p, now = _ctx(request)
    install, entry = await record_install(sm, p, now=now, **request[BODY].model_dump())
    return json_response({"id": install.id, "sequence": install.sequence, "price_rials": install.price_rials,
                          "entry": entry_json(entry) if entry else None}, status=201)


@routes.post(f"{BASE}/items", roles=ITEM_ROLES, body=ItemIn, status=201)
async def create_item(request: web.Request) -> web.Response:
    """Charge a priced item on a ticket."""
    sm, p, now = _ctx(request)
    item, entry = await record_priced_item(sm, p, now=now, **request[BODY].model_dump())
    return json_response({"id": item.id, "entry": entry_json(entry)}, status=201)


@routes.post(f"{BASE}/payments", roles=FINANCE_ROLES, body=PaymentIn, status=(200, 201))
async def create_payment(request: web.Request) -> web.Response:
    """Record a payment (201; a replay of the same reference answers 200 with created: false)."""
    sm, p, now = _ctx(request)
    entry, created = await record_payment(sm, p, now=now, **request[BODY].model_dump())
    return json_response({"created": created, "entry": entry_json(entry)}, status=201 if created else 200)


@routes.post(f"{BASE}/payments/import", roles=FINANCE_ROLES, body=bytes, body_media="text/csv")
async def import_payments(request: web.Request) -> web.Response:
    """Import the bank's payment file (CSV, UTF-8): all rows or none."""
    sm, p, now = _ctx(request)
    try:
        result = await import_payments_csv(sm, p, request[BODY].decode("utf-8"), now=now)
    except UnicodeDecodeError:
        raise InvalidInput("<body>", "the CSV is not UTF-8") from None
    except PaymentFileError as exc:
        first = exc.errors[0] if exc.errors else None
        return json_response({"error": "invalid payment file", "field": first.field if first else "<body>",
                              "reason": f"line {first.line}: {first.reason}" if first else "no rows",
                              "imported": 0, "rows": [
            {"line": e.line, "field": e.field, "reason": e.reason} for e in exc.errors]}, status=400)
    return json_response({"imported": result.imported, "already_imported": result.already_imported,
                          "total_rials": result.total_rials})


@routes.post(f"{BASE}/entries/{{entry_id}}/reverse", roles=FINANCE_ROLES, path=ids("entry_id"), body=ReverseIn,
             status=201)
async def reverse(request: web.Request) -> web.Response:
    """Reverse a ledger entry (a new entry of the opposite sign)."""
    sm, p, now = _ctx(request)
    return json_response(entry_json(await reverse_entry(sm, p, request[PATH].entry_id,
                                                        reason=request[BODY].reason, now=now)), status=201)


@routes.get(f"{BASE}/customers/{{customer_id}}/entries", roles=STATEMENT_ROLES, path=CUSTOMER, query=PageQuery,
            paginated=True)
async def customer_entries(request: web.Request) -> web.Response:
    """A customer's balance and ledger entries, oldest first (``entries`` is the page)."""
    cid, q = request[PATH].customer_id, request[QUERY]
    async with request.app[DEPS].sessionmaker() as s:
        rows, owed = await read_customer_entries(s, cid, limit=q.limit + 1, offset=q.offset)  # one more: next page?
    rows, links = page_links(request, rows, q)
    resp = json_response({"customer_id": cid, "balance_rials": owed, "entries": [entry_json(e) for e in rows]})
    resp.headers.update(links)
    return resp


def _month(request: web.Request) -> tuple[int, int, int]:
    m = request[PATH]
    return m.customer_id, m.year, m.month


def _view_json(view) -> dict:
    return {"customer_id": view.customer_id, "jalali_year": view.jalali_year, "jalali_month": view.jalali_month,
            "period_start": view.period_start.isoformat(), "period_end": view.period_end.isoformat(),
            "opening_rials": view.opening_rials, "charges_rials": view.charges_rials,
            "credits_rials": view.credits_rials, "closing_rials": view.closing_rials,
            "lines": [entry_line_json(ln) for ln in view.lines]}


def entry_line_json(ln) -> dict:
    return {"entry_id": ln.entry_id, "posted_at": ln.posted_at.isoformat(), "kind": ln.kind,
            "amount_rials": ln.amount_rials, "ticket_id": ln.ticket_id, "description": ln.description}


@routes.get(f"{BASE}/customers/{{customer_id}}/statements/{MONTH}", roles=ALL_ROLES, path=MonthPath)
async def statement(request: web.Request) -> web.Response:
    """Staff get rials; a customer gets their own statement as shown in the portal (and nobody else's)."""
    sm, p, _ = _ctx(request)
    view = await read_statement(sm, p, *_month(request))
    if p.role is Role.CUSTOMER:
        return json_response(statement_fa(view))
    return json_response(_view_json(view))


@routes.get(f"{BASE}/customers/{{customer_id}}/statements/{MONTH}/csv", roles=STATEMENT_ROLES, path=MonthPath,
            produces="text/csv")
async def statement_as_csv(request: web.Request) -> web.Response:
    """The month's statement as CSV."""
    sm, p, _ = _ctx(request)
    cid, year, month = _month(request)
    view = await read_statement(sm, p, cid, year, month)
    return web.Response(text=statement_csv(view), content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="statement-{cid}-{year}-{month:02d}.csv"'})


@routes.post(f"{BASE}/customers/{{customer_id}}/statements/{MONTH}", roles=STATEMENT_ROLES, path=MonthPath,
             status=201)
async def store_statement(request: web.Request) -> web.Response:
    """Generate and store the month's statement."""
    sm, p, now = _ctx(request)
    row = await generate_statement(sm, p, *_month(request), now=now)
    return json_response({"id": row.id, "opening_rials": row.opening_rials, "charges_rials": row.charges_rials,
                          "credits_rials": row.credits_rials, "closing_rials": row.closing_rials,
                          "entry_count": row.entry_count, "generated_at": row.generated_at.isoformat()}, 201)
