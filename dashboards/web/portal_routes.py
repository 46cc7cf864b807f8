"""The customer portal, in Persian: the customer's own services with their uptime, response times, tickets,
and whether phone support is open now. Every read goes through ``scope``; the pages are the templates
``portal_home.html`` and ``portal_service.html`` (pieces in ``_portal.html``)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from markupsafe import Markup

from dashboards.availability import MonitorHistory, Span, load_histories, spans_uptime, total
from dashboards.portal import (
    ServiceView,
    customer_services,
    daily_uptime,
    last_days,
    latency_buckets,
    month_span,
    parse_month,
    service_for,
)
from dashboards.svg import line_chart, uptime_bar
from dashboards.web.deps import DEPS
from dashboards.web.fa import MONTHS_FA, PRIORITY_FA, STATE_FA, percent
from dashboards.web.html import fa_digits, jalali_date
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import ids
from dashboards.web.portal_sections import incident_rows, service_incidents, statement, suspension
from dashboards.web.routing import HTML, PATH, RouteTable
from dashboards.web.templating import N_, render
from monitor.accounts import ALL_ROLES
from tickets.calendar import load_calendar, phone_support_open
from tickets.desk import list_tickets

__all__ = ["routes", "bar_html", "phone_open", "TICKET_STATUS_WORDS", "portal_context"]

routes = RouteTable()
BAR_DAYS = 90
# A ticket's status in the customer's words (message ids; fa.po holds the Persian).
TICKET_STATUS_WORDS = {"open": N_("Open"), "answered": N_("Answered"),
                       "waiting_on_customer": N_("Waiting on your reply"), "closed": N_("Closed"),
                       "closed_without_answer": N_("Closed without answer")}


def bar_html(days) -> str:
    """The uptime bar of some days (an SVG whose text is escaped by :mod:`dashboards.svg`)."""
    return uptime_bar([(f"{jalali_date(d.span.start)}: {percent(d.ratio)}", d.ratio) for d in days])


async def phone_open(request: web.Request) -> bool:
    """Whether phone support is open now (rule 2's hours and the holiday calendar)."""
    deps = request.app[DEPS]
    now = deps.clock.now()
    async with deps.sessionmaker() as s:
        calendar = await load_calendar(s, now)
    return phone_support_open(now, calendar)


def portal_context() -> dict:
    """The Persian words every portal template reads."""
    return {"state_fa": STATE_FA, "priority_fa": PRIORITY_FA, "months_fa": MONTHS_FA,
            "ticket_status_words": TICKET_STATUS_WORDS}


def _card(svc: ServiceView, histories: list[MonitorHistory], days: list[Span], now) -> dict:
    jy, jm = parse_month(None, now)
    month = month_span(jy, jm)
    ids = set(svc.monitor_ids)
    mine = [h for h in histories if h.monitor_id in ids]
    bars = spans_uptime(mine, days, now)
    # This month lies inside the 90 days (the histories cover it); its days are cut from the bar's.
    this_month = total(month, [d for d in bars if d.span.start >= month.start])
    return {"svc": svc, "bar": Markup(bar_html(bars)), "month_uptime": percent(this_month.ratio, 3)}


@routes.get("/portal", roles=ALL_ROLES, produces=HTML)
async def portal_home(request: web.Request) -> web.Response:
    """The portal's home page: the customer's services, phone support and the month's statement."""
    deps, p = request.app[DEPS], request[PRINCIPAL]
    now = deps.clock.now()
    services = await customer_services(deps.sessionmaker, p)
    days = last_days(BAR_DAYS, now)
    # One read of every monitor's history for all the cards.
    histories = await load_histories(deps.sessionmaker, [m for s in services for m in s.monitor_ids],
                                     days[0].start, days[-1].end)
    jy, jm = parse_month(None, now)
    return render(request, "portal_home.html", portal_context() | {
        "cards": [_card(s, histories, days, now) for s in services], "jy": jy, "jm": jm,
        "phone_open": await phone_open(request), "is_customer": p.customer_id is not None,
        "statement": await statement(deps.sessionmaker, p, jy, jm), "customer_id": p.customer_id,
        "suspended": await suspension(deps.sessionmaker, p, now),
    })


async def _months(request: web.Request, svc: ServiceView, count: int = 3) -> list[dict]:
    deps = request.app[DEPS]
    now = deps.clock.now()
    jy, jm = parse_month(None, now)
    months = []
    for _ in range(count):
        months.append((jy, jm))
        jy, jm = (jy - 1, 12) if jm == 1 else (jy, jm - 1)
    spans = [month_span(y, m) for y, m in months]
    hist = await load_histories(deps.sessionmaker, svc.monitor_ids, spans[-1].start, spans[0].end)
    return [{"jy": y, "jm": m, "query": f"month={y}-{m:02d}", "uptime": percent(u.ratio, 3)}
            for (y, m), u in zip(months, spans_uptime(hist, spans, now), strict=True)]


async def _tickets(request: web.Request, svc: ServiceView) -> list:
    deps = request.app[DEPS]
    return [t for t in await list_tickets(deps.sessionmaker, request[PRINCIPAL], now=deps.clock.now())
            if t.service_id == svc.id][:20]


@routes.get("/portal/services/{service_id}", roles=ALL_ROLES, path=ids("service_id"), produces=HTML)
async def portal_service(request: web.Request) -> web.Response:
    """One service: uptime, monthly reports, response times, incidents and tickets."""
    deps, p = request.app[DEPS], request[PRINCIPAL]
    svc = await service_for(deps.sessionmaker, p, request[PATH].service_id)
    now = deps.clock.now()
    days = await daily_uptime(deps.sessionmaker, svc.monitor_ids, BAR_DAYS, now)
    latency = await latency_buckets(deps.sessionmaker, svc.monitor_ids, now - timedelta(hours=24), now, 96)

    def chart(label: str, unit: str) -> Markup:  # called by the template with words in the page's language
        return Markup(line_chart(latency, unit=unit, label=label, y_label=lambda v: fa_digits(f"{v:.0f}")))

    return render(request, "portal_service.html", portal_context() | {
        "svc": svc, "bar": Markup(bar_html(days)), "chart": chart, "months": await _months(request, svc),
        "incidents": incident_rows(await service_incidents(deps.sessionmaker, p, svc.id), now),
        "tickets": await _tickets(request, svc),
    })
