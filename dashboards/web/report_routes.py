"""The monthly (or yearly) uptime report of one service: a printable page and the same page as a PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from markupsafe import Markup
from pydantic import Field

from dashboards.availability import Span, SpanUptime, load_histories, spans_uptime, total
from dashboards.errors import RendererBusy
from dashboards.latency import daily_latency_ms
from dashboards.portal import (
    ServiceView,
    jalali_months,
    month_span,
    parse_month,
    service_for,
    tehran_days,
)
from dashboards.svg import line_chart, uptime_bar
from dashboards.web.cache import RenderCache
from dashboards.web.deps import DEPS
from dashboards.web.fa import MONTHS_FA, percent
from dashboards.web.html import fa_digits, jalali_date
from dashboards.web.middleware import PRINCIPAL, json_error
from dashboards.web.params import Params, ids
from dashboards.web.portal_sections import incident_rows, service_incidents
from dashboards.web.routing import HTML, PATH, QUERY, RouteTable
from dashboards.web.security import csp_nonce
from dashboards.web.templating import render, render_string
from monitor.accounts import ALL_ROLES
from monitor.errors import InvalidInput
from monitor.models import Customer

__all__ = ["routes", "Report", "build_report", "report_html", "report_context", "PDF_CACHE", "pdf_cache"]

routes = RouteTable()
CSS = Path(__file__).parent / "static" / "app.css"
REPORT_CSS = """
@page { size: A4; margin: 14mm; }
body { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "Nazli", "DejaVu Sans", sans-serif; background: #fff; }
.report h1 { font-size: 20px; margin: 0 0 4px; } .report .figures { display: flex; gap: 24px; }
.report .figures div { border: 1px solid #e4e7ec; border-radius: 8px; padding: 8px 12px; }
.report .figures b { display: block; font-size: 18px; }
.report table { font-size: 12px; }
"""


@dataclass(slots=True)
class Report:
    svc: ServiceView
    customer: str
    title: str
    total: SpanUptime
    parts: list[SpanUptime]
    part_names: list[str]
    latency: list[float | None]
    incidents: list
    generated_at: datetime


def _period(month: str | None, year: str | None, now: datetime) -> tuple[str, Span, list[Span], list[str]]:
    """The title, the whole span, its parts (months of a year, days of a month) and the parts' names."""
    if year:
        if not year.isdigit() or not 1300 <= int(year) <= 1500:
            raise InvalidInput("year", "expected a Jalali year like 1405")
        jy = int(year)
        parts = jalali_months(jy)
        return (f"سال {fa_digits(jy)}", Span(parts[0].start, parts[-1].end), parts,
                [f"{MONTHS_FA[m]} {fa_digits(jy)}" for m in range(12)])
    jy, jm = parse_month(month, now)
    whole = month_span(jy, jm)
    parts = tehran_days(whole.start, max(1, round((whole.end - whole.start) / timedelta(days=1))))
    return f"{MONTHS_FA[jm - 1]} {fa_digits(jy)}", whole, parts, [jalali_date(p.start) for p in parts]


async def build_report(sm, principal, service_id: int, *, month: str | None, year: str | None,
                       now: datetime) -> Report:
    svc = await service_for(sm, principal, service_id)
    title, whole, parts, names = _period(month, year, now)
    async with sm() as s:
        customer = await s.get(Customer, svc.customer_id)
    latency = await daily_latency_ms(sm, svc.monitor_ids, whole.start, min(whole.end, max(now, whole.start)))
    figures = spans_uptime(await load_histories(sm, svc.monitor_ids, whole.start, whole.end), parts, now)
    incidents = await service_incidents(sm, principal, svc.id, whole.start, whole.end)
    return Report(svc, customer.display_name or customer.name, title, total(whole, figures), figures, names,
                  latency, incidents, now)


def report_context(r: Report, query: str = "", nonce: str = "") -> dict:
    """What ``portal_report.html`` draws: the report, its bar and chart, and its inlined styles.

    ``nonce`` lets the inline style through the page's Content-Security-Policy."""
    def chart(label: str) -> Markup:  # called by the template with the label in the page's language
        return Markup(line_chart(r.latency, unit="ms", label=label, y_label=lambda v: fa_digits(f"{v:.0f}")))

    return {
        "r": r, "parts": list(zip(r.part_names, r.parts, strict=True)),
        "bar": Markup(uptime_bar([(f"{n}: {percent(u.ratio)}", u.ratio)
                                  for n, u in zip(r.part_names, r.parts, strict=True)])),
        "has_latency": any(v is not None for v in r.latency), "chart": chart,
        "incidents": incident_rows(r.incidents, r.generated_at), "query": query, "nonce": nonce,
        # Our own stylesheet, inlined so that the page stands alone for Chromium's PDF.
        "css": Markup(CSS.read_text(encoding="utf-8") + REPORT_CSS),
    }


def report_html(r: Report, query: str = "", nonce: str = "") -> str:
    """The report as one self-contained page (styles inlined) for Chromium's PDF: the template of the page,
    without a reader (no navigation, no session token)."""
    return render_string("portal_report.html", report_context(r, query, nonce) | {
        "lang": "fa", "dir": "rtl", "user": None, "role": None, "is_staff": False, "csrf": None, "nav": [],
        "path": "", "title": "", "languages": ()})


class ReportQuery(Params):
    month: str | None = Field(None, max_length=7, description="Jalali month, e.g. 1405-09 (default: this month)")
    year: str | None = Field(None, max_length=4, description="a Jalali year instead, e.g. 1405")


SERVICE = ids("service_id")


async def _report(request: web.Request) -> Report:
    deps, q = request.app[DEPS], request[QUERY]
    return await build_report(deps.sessionmaker, request[PRINCIPAL], request[PATH].service_id, month=q.month,
                              year=q.year, now=deps.clock.now())


@routes.get("/portal/services/{service_id}/report", roles=ALL_ROLES, path=SERVICE, query=ReportQuery,
            produces=HTML)
async def report_page(request: web.Request) -> web.Response:
    """The month's (or year's) uptime report of a service, printable."""
    return render(request, "portal_report.html",
                  report_context(await _report(request), request.query_string, csp_nonce(request)))


# A finished period's report never changes: its PDF is rendered once per service, period and audience.
PDF_CACHE = web.AppKey("report_pdf_cache", RenderCache)


def pdf_cache(clock) -> RenderCache:
    return RenderCache(clock.monotonic, ttl_s=None, max_entries=128)


async def _render_pdf(request: web.Request) -> bytes:
    report = await _report(request)
    return await request.app[DEPS].pdf.render(report_html(report))


async def _pdf(request: web.Request, svc: ServiceView) -> bytes:
    now, q = request.app[DEPS].clock.now(), request[QUERY]
    _, whole, _, _ = _period(q.month, q.year, now)
    if whole.end > now:  # the period is still running: its figures move
        return await _render_pdf(request)
    key = (svc.id, whole.start, whole.end, "fa", request[PRINCIPAL].is_staff)
    return await request.app[PDF_CACHE].get(key, lambda: _render_pdf(request))


@routes.get("/portal/services/{service_id}/report.pdf", roles=ALL_ROLES, path=SERVICE, query=ReportQuery,
            produces="application/pdf", errors={503: "the PDF renderer is busy; see Retry-After"})
async def report_pdf(request: web.Request) -> web.Response:
    """The same report as a PDF."""
    deps = request.app[DEPS]
    svc = await service_for(deps.sessionmaker, request[PRINCIPAL], request[PATH].service_id)
    try:
        pdf = await _pdf(request, svc)
    except RendererBusy as exc:
        resp = json_error(503, "busy", reason=str(exc))
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp
    return web.Response(body=pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="uptime-{svc.name}.pdf"'})
