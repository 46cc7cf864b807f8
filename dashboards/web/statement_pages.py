"""A customer's monthly statement (a Jalali month) in the browser: the page, its CSV and its PDF.

Finance and admins read any customer's at ``/ledger/statements/{customer}/{year}/{month}`` (amounts in
rials, with the ledger's descriptions); a customer reads their own at ``/portal/statements/{customer}/{year}/
{month}`` (amounts in toman as everywhere in the portal, no internal descriptions). Both read through
:func:`tickets.ledger.statements.read_statement`, whose scope answers another customer's statement as missing
(404), so a customer who edits the number in the address learns nothing.

The CSV is UTF-8 with a byte-order mark (Excel then reads the Persian columns right), integer rials and Jalali
dates (:func:`tickets.ledger.format.statement_download_csv`). The PDF is the page rendered without a reader
(styles inlined) by Chromium's print-to-PDF (:mod:`dashboards.pdf`), so Persian shapes as in the browser.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from markupsafe import Markup

from dashboards.errors import RendererBusy
from dashboards.web.deps import DEPS
from dashboards.web.fa import MONTHS_FA
from dashboards.web.html import fa_digits
from dashboards.web.middleware import PRINCIPAL, json_error
from dashboards.web.params import JalaliMonth, JalaliYear, Params, PathId
from dashboards.web.routing import HTML, PATH, RouteTable
from dashboards.web.security import csp_nonce
from dashboards.web.templating import N_, render, render_string
from monitor.accounts import Role
from monitor.models import Customer
from tickets.ledger.format import statement_download_csv, toman_fa
from tickets.ledger.statements import STATEMENT_ROLES, StatementView, read_statement

__all__ = ["routes", "statement_html"]

routes = RouteTable()
CSS = Path(__file__).parent / "static" / "app.css"
PDF_CSS = """
@page { size: A4; margin: 14mm; }
body { font-family: "Vazirmatn", "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", sans-serif; background: #fff; }
.statement table { font-size: 12px; }
"""
PORTAL_ROLES = frozenset({Role.CUSTOMER})
KIND_WORDS = {"visit": N_("Datacenter visit"), "reinstall": N_("Module reinstall"),
              "out_of_scope": N_("Out-of-scope work"), "package": N_("Package"), "fine": N_("Fine"),
              "payment": N_("Payment"), "reversal": N_("Reversal")}


class MonthPath(Params):
    customer_id: PathId
    year: JalaliYear
    month: JalaliMonth


async def _read(request: web.Request) -> tuple[StatementView, str]:
    deps, path = request.app[DEPS], request[PATH]
    view = await read_statement(deps.sessionmaker, request[PRINCIPAL], path.customer_id, path.year, path.month)
    async with deps.sessionmaker() as s:
        customer = await s.get(Customer, path.customer_id)
    return view, customer.display_name or customer.name


def _neighbours(jy: int, jm: int) -> tuple[tuple[int, int], tuple[int, int]]:
    prev = (jy - 1, 12) if jm == 1 else (jy, jm - 1)
    nxt = (jy + 1, 1) if jm == 12 else (jy, jm + 1)
    return prev, nxt


def _context(view: StatementView, customer: str, base: str, *, staff: bool, nonce: str = "",
             standalone: bool = False) -> dict:
    """What ``statement.html`` draws; ``base`` is the address prefix of this audience's statement pages."""
    prev, nxt = _neighbours(view.jalali_year, view.jalali_month)
    here = f"{base}/{view.customer_id}/{view.jalali_year}/{view.jalali_month}"
    return {
        "v": view, "customer": customer, "last_day": view.period_end - timedelta(seconds=1), "staff": staff, "kind_words": KIND_WORDS,
        "month_name": f"{MONTHS_FA[view.jalali_month - 1]} {fa_digits(view.jalali_year)}",
        # Customers read toman everywhere in the portal; finance reads rials (the ledger's unit).
        "money": None if staff else toman_fa,
        "here": here, "prev": f"{base}/{view.customer_id}/{prev[0]}/{prev[1]}",
        "next": f"{base}/{view.customer_id}/{nxt[0]}/{nxt[1]}",
        "nonce": nonce, "standalone": standalone,
        "css": Markup(CSS.read_text(encoding="utf-8") + PDF_CSS) if standalone else "",
    }


def statement_html(view: StatementView, customer: str, base: str, *, staff: bool) -> str:
    """The statement as one self-contained page (styles inlined, no navigation) for Chromium's PDF."""
    return render_string("statement.html", _context(view, customer, base, staff=staff, standalone=True) | {
        "lang": "fa", "dir": "rtl", "user": None, "role": None, "is_staff": False, "csrf": None, "nav": [],
        "path": "", "title": "", "languages": ()})


async def _page(request: web.Request, base: str, *, staff: bool) -> web.Response:
    view, customer = await _read(request)
    return render(request, "statement.html", _context(view, customer, base, staff=staff,
                                                      nonce=csp_nonce(request)),
                  title=N_("Statement"))


def _filename(view: StatementView, ext: str) -> str:
    return f"statement-{view.customer_id}-{view.jalali_year}-{view.jalali_month:02d}.{ext}"


async def _csv(request: web.Request, *, staff: bool) -> web.Response:
    view, customer = await _read(request)
    body = statement_download_csv(view, customer=customer, customer_facing=not staff)
    return web.Response(body=body.encode("utf-8"), content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{_filename(view, "csv")}"'})


async def _pdf(request: web.Request, base: str, *, staff: bool) -> web.Response:
    view, customer = await _read(request)
    try:
        pdf = await request.app[DEPS].pdf.render(statement_html(view, customer, base, staff=staff))
    except RendererBusy as exc:
        resp = json_error(503, "busy", reason=str(exc))
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{_filename(view, "pdf")}"'})


LEDGER = "/ledger/statements"
PORTAL = "/portal/statements"
MONTH = "{customer_id}/{year}/{month}"
ERRORS = {404: "no such customer (or, for a customer, not their own)"}
PDF_ERRORS = ERRORS | {503: "the PDF renderer is busy; see Retry-After"}


@routes.get(f"{LEDGER}/{MONTH}", roles=STATEMENT_ROLES, path=MonthPath, produces=HTML, errors=ERRORS)
async def ledger_statement(request: web.Request) -> web.Response:
    """Any customer's statement of a Jalali month, in rials, with links to the CSV and the PDF."""
    return await _page(request, LEDGER, staff=True)


@routes.get(f"{LEDGER}/{MONTH}/csv", roles=STATEMENT_ROLES, path=MonthPath, produces="text/csv", errors=ERRORS)
async def ledger_statement_csv(request: web.Request) -> web.Response:
    """The statement as CSV (UTF-8 with BOM, integer rials, Jalali dates)."""
    return await _csv(request, staff=True)


@routes.get(f"{LEDGER}/{MONTH}/pdf", roles=STATEMENT_ROLES, path=MonthPath, produces="application/pdf",
            errors=PDF_ERRORS)
async def ledger_statement_pdf(request: web.Request) -> web.Response:
    """The statement as a PDF."""
    return await _pdf(request, LEDGER, staff=True)


@routes.get(f"{PORTAL}/{MONTH}", roles=PORTAL_ROLES, path=MonthPath, produces=HTML, errors=ERRORS)
async def portal_statement(request: web.Request) -> web.Response:
    """The customer's own statement of a Jalali month (another customer's is missing: 404)."""
    return await _page(request, PORTAL, staff=False)


@routes.get(f"{PORTAL}/{MONTH}/csv", roles=PORTAL_ROLES, path=MonthPath, produces="text/csv", errors=ERRORS)
async def portal_statement_csv(request: web.Request) -> web.Response:
    """The customer's own statement as CSV."""
    return await _csv(request, staff=False)


@routes.get(f"{PORTAL}/{MONTH}/pdf", roles=PORTAL_ROLES, path=MonthPath, produces="application/pdf",
            errors=PDF_ERRORS)
async def portal_statement_pdf(request: web.Request) -> web.Response:
    """The customer's own statement as a PDF."""
    return await _pdf(request, PORTAL, staff=False)
