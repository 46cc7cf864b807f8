"""The customer portal, in Persian: the customer's own services with their uptime, response times, tickets,
and whether phone support is open now. Every read goes through ``scope``."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

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
from dashboards.web.html import esc, fa_digits, jalali, jalali_date
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import ids
from dashboards.web.portal_sections import incidents_table, service_incidents, statement_section
from dashboards.web.routing import HTML, PATH, RouteTable
from dashboards.web.templating import legacy_page
from monitor.accounts import ALL_ROLES
from tickets.calendar import load_calendar, phone_support_open
from tickets.desk import list_tickets

__all__ = ["routes", "bar_html", "phone_line"]

routes = RouteTable()
BAR_DAYS = 90
TICKET_STATUS_FA = {"open": "باز", "answered": "پاسخ داده شده", "waiting_on_customer": "در انتظار مشتری",
                    "closed": "بسته", "closed_without_answer": "بسته بدون پاسخ"}


def bar_html(days) -> str:
    return uptime_bar([(f"{jalali_date(d.span.start)}: {percent(d.ratio)}", d.ratio) for d in days])


def _state(state: str) -> str:
    return f'<span class="st st-{esc(state)}">{STATE_FA.get(state, state)}</span>'


async def phone_line(request: web.Request) -> str:
    deps = request.app[DEPS]
    now = deps.clock.now()
    async with deps.sessionmaker() as s:
        calendar = await load_calendar(s, now)
    is_open = phone_support_open(now, calendar)
    text = "پشتیبانی تلفنی هم‌اکنون باز است." if is_open else \
        "پشتیبانی تلفنی هم‌اکنون بسته است؛ لطفاً تیکت ثبت کنید (شنبه تا چهارشنبه، ۹ تا ۱۷)."
    return f'<p class="phone {"open" if is_open else "closed"}" data-open="{str(is_open).lower()}">{text}</p>'


def _card(svc: ServiceView, histories: list[MonitorHistory], days: list[Span], now) -> str:
    jy, jm = parse_month(None, now)
    month = month_span(jy, jm)
    ids = set(svc.monitor_ids)
    mine = [h for h in histories if h.monitor_id in ids]
    bars = spans_uptime(mine, days, now)
    # This month lies inside the 90 days (the histories cover it); its days are cut from the bar's.
    this_month = total(month, [d for d in bars if d.span.start >= month.start])
    return (f'<article class="card service" data-service="{svc.id}"><h2><a href="/portal/services/{svc.id}">'
            f'{esc(svc.title)}</a> {_state(svc.state)}</h2>{bar_html(bars)}'
            f'<p class="muted">۹۰ روز گذشته · دسترس‌پذیری {MONTHS_FA[jm - 1]} {fa_digits(jy)}: '
            f'<b class="month-uptime">{percent(this_month.ratio, 3)}</b></p></article>')


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
    cards = "".join(_card(s, histories, days, now) for s in services) or \
        '<p class="muted">سرویسی ثبت نشده است.</p>'
    jy, jm = parse_month(None, now)
    statement = await statement_section(deps.sessionmaker, p, jy, jm)
    tickets = ('<p class="tickets-link"><a href="/portal/tickets">تیکت‌های من</a> · '
               '<a href="/portal/tickets/new">ثبت تیکت تازه</a></p>') if p.customer_id is not None else ""
    body = f"<h1>سرویس‌های من</h1>{await phone_line(request)}{tickets}{cards}{statement}"
    return legacy_page(request, "سرویس‌های من", body)


async def _months_table(request: web.Request, svc: ServiceView, count: int = 3) -> str:
    deps = request.app[DEPS]
    now = deps.clock.now()
    jy, jm = parse_month(None, now)
    months = []
    for _ in range(count):
        months.append((jy, jm))
        jy, jm = (jy - 1, 12) if jm == 1 else (jy, jm - 1)
    spans = [month_span(y, m) for y, m in months]
    hist = await load_histories(deps.sessionmaker, svc.monitor_ids, spans[-1].start, spans[0].end)
    rows = "".join(
        f'<tr><td>{MONTHS_FA[m - 1]} {fa_digits(y)}</td><td>{percent(u.ratio, 3)}</td>'
        f'<td><a href="/portal/services/{svc.id}/report?month={y}-{m:02d}">گزارش</a> · '
        f'<a href="/portal/services/{svc.id}/report.pdf?month={y}-{m:02d}">PDF</a></td></tr>'
        for (y, m), u in zip(months, spans_uptime(hist, spans, now), strict=True))
    return (f'<table class="months"><thead><tr><th>ماه</th><th>دسترس‌پذیری</th><th>گزارش ماهانه</th></tr>'
            f'</thead><tbody>{rows}</tbody></table>')


async def _tickets(request: web.Request, svc: ServiceView) -> str:
    deps = request.app[DEPS]
    tickets = [t for t in await list_tickets(deps.sessionmaker, request[PRINCIPAL], now=deps.clock.now())
               if t.service_id == svc.id][:20]
    if not tickets:
        return '<p class="muted">تیکتی برای این سرویس ثبت نشده است.</p>'
    rows = "".join(f"<tr><td>{fa_digits(t.id)}</td><td>{esc(t.subject)}</td>"
                   f"<td>{PRIORITY_FA.get(t.priority, '—')}</td>"
                   f"<td>{TICKET_STATUS_FA.get(t.status, '—')}</td><td>{jalali(t.opened_at)}</td></tr>"
                   for t in tickets)
    return (f'<table class="tickets"><thead><tr><th>شماره</th><th>موضوع</th><th>اولویت</th><th>وضعیت</th>'
            f'<th>زمان ثبت</th></tr></thead><tbody>{rows}</tbody></table>')


@routes.get("/portal/services/{service_id}", roles=ALL_ROLES, path=ids("service_id"), produces=HTML)
async def portal_service(request: web.Request) -> web.Response:
    """One service: uptime, monthly reports, response times, incidents and tickets."""
    deps, p = request.app[DEPS], request[PRINCIPAL]
    svc = await service_for(deps.sessionmaker, p, request[PATH].service_id)
    now = deps.clock.now()
    days = await daily_uptime(deps.sessionmaker, svc.monitor_ids, BAR_DAYS, now)
    latency = await latency_buckets(deps.sessionmaker, svc.monitor_ids, now - timedelta(hours=24), now, 96)
    sections = [
        f"<h1>{esc(svc.title)} {_state(svc.state)}</h1>",
        f'<section class="card"><h2>دسترس‌پذیری ۹۰ روز گذشته</h2>{bar_html(days)}</section>',
        f'<section class="card"><h2>دسترس‌پذیری ماهانه</h2>{await _months_table(request, svc)}'
        f'<p class="muted">زمان‌های نگهداری برنامه‌ریزی‌شده در محاسبه منظور نمی‌شوند.</p></section>',
        f'<section class="card"><h2>زمان پاسخ ۲۴ ساعت گذشته</h2>'
        f'{line_chart(latency, unit="ms", label="زمان پاسخ", y_label=lambda v: fa_digits(f"{v:.0f}"))}'
        f'</section>',
        f'<section class="card"><h2>رخدادها</h2>'
        f'{incidents_table(await service_incidents(deps.sessionmaker, p, svc.id), now)}</section>',
        f'<section class="card"><h2>تیکت‌ها</h2>{await _tickets(request, svc)}</section>',
    ]
    return legacy_page(request, svc.title, "".join(sections))
