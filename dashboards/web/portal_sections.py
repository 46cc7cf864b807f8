"""Portal sections that read other packages: a service's incidents with durations (incidents) and the
customer's monthly statement (the ledger). Both go through those packages' scoped read functions."""

from __future__ import annotations

from datetime import datetime

from dashboards.web.fa import duration_fa
from dashboards.web.html import esc, jalali
from incidents.lifecycle import ServiceIncident, incidents_of_service
from monitor.accounts import Principal
from monitor.errors import NotFound
from tickets.ledger.format import statement_fa
from tickets.ledger.statements import read_statement

__all__ = ["service_incidents", "incidents_table", "statement_section", "kind_fa"]

INCIDENT_STATUS_FA = {"triggered": "در حال رسیدگی", "acknowledged": "در دست بررسی", "resolved": "برطرف شد"}
SEVERITY_FA = {"urgent": "قطعی", "important": "اختلال"}
# A shared outage is named for what the customer lived through, never for our device (rule 4).
SHARED_FA = {"urgent": "قطعی شبکه", "important": "اختلال شبکه"}


async def service_incidents(sm, principal: Principal, service_id: int, start: datetime | None = None,
                            end: datetime | None = None, limit: int = 500) -> list[ServiceIncident]:
    """Incidents that affected one service, the caller's to see, newest first; with a range, those
    overlapping it. Shared outages (a switch in front of the service) are included."""
    return await incidents_of_service(sm, principal, service_id, start=start, end=end, limit=limit)


def kind_fa(incident: ServiceIncident) -> str:
    names = SHARED_FA if incident.shared else SEVERITY_FA
    return names.get(incident.severity, "رخداد")


def _duration(incident, now: datetime) -> str:
    if incident.resolved_at is None:
        return duration_fa((now - incident.opened_at).total_seconds()) + " (ادامه دارد)"
    seconds = incident.duration_s if incident.duration_s is not None else \
        (incident.resolved_at - incident.opened_at).total_seconds()
    return duration_fa(seconds)


def incidents_table(incidents: list, now: datetime) -> str:
    if not incidents:
        return '<p class="muted">رخدادی ثبت نشده است.</p>'
    rows = "".join(f'<tr class="incident"><td>{kind_fa(i)}</td>'
                   f"<td>{jalali(i.opened_at)}</td><td>{jalali(i.resolved_at) if i.resolved_at else '—'}</td>"
                   f'<td class="duration">{_duration(i, now)}</td>'
                   f"<td>{INCIDENT_STATUS_FA.get(i.status, esc(i.status))}</td></tr>" for i in incidents)
    return (f'<table class="incidents"><thead><tr><th>نوع</th><th>شروع</th><th>پایان</th><th>مدت</th>'
            f'<th>وضعیت</th></tr></thead><tbody>{rows}</tbody></table>')


async def statement_section(sm, principal: Principal, jy: int, jm: int) -> str:
    """The customer's statement of one Jalali month (customers only; staff read statements elsewhere)."""
    if principal.customer_id is None:
        return ""
    try:
        view = statement_fa(await read_statement(sm, principal, principal.customer_id, jy, jm))
    except NotFound:
        return ""
    lines = "".join(f"<tr><td>{ln['date']}</td><td>{esc(ln['kind'])}</td><td>{ln['amount']}</td>"
                    f"<td>{ln['ticket'] or '—'}</td></tr>" for ln in view["lines"]) or \
        '<tr><td colspan="4" class="muted">در این ماه گردشی ثبت نشده است.</td></tr>'
    return (f'<section class="card statement"><h2>صورت‌حساب {view["month"]}</h2>'
            f'<p>مانده ابتدای ماه: {view["opening"]} · بدهکار: {view["charges"]} · بستانکار: {view["credits"]} · '
            f'<b>مانده پایان ماه: <span class="closing">{view["closing"]}</span></b></p>'
            f'<table><thead><tr><th>تاریخ</th><th>شرح</th><th>مبلغ</th><th>تیکت</th></tr></thead>'
            f'<tbody>{lines}</tbody></table></section>')
