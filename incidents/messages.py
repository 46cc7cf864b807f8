"""What notices say. Customers read Persian with Jalali dates and Persian digits (Asia/Tehran); the NOC
reads short English lines."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import jdatetime

from incidents.models import Incident

__all__ = ["TEHRAN", "persian_digits", "jalali", "persian_duration", "noc_notice", "customer_notice",
           "customer_sms", "noc_sms", "notice_data"]

# The terms fix Tehran at +03:30 (no DST since 2022).
TEHRAN = timezone(timedelta(hours=3, minutes=30), "Asia/Tehran")
_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_SEVERITY_FA = {"urgent": "ضروری", "important": "مهم"}


def persian_digits(text: str) -> str:
    return text.translate(_DIGITS)


def jalali(at: datetime) -> str:
    """``1405/09/05 14:30`` in Persian digits, Tehran time."""
    local = jdatetime.datetime.fromgregorian(datetime=at.astimezone(TEHRAN))
    return persian_digits(local.strftime("%Y/%m/%d %H:%M"))


def persian_duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    parts = ([f"{hours} ساعت"] if hours else []) + ([f"{minutes} دقیقه"] if minutes else [])
    return persian_digits(" و ".join(parts))


def noc_notice(kind: str, incident: Incident, extra: str = "") -> tuple[str, str]:
    subject = f"[{incident.severity.upper()}] #{incident.id} {kind}: {incident.title}"
    lines = [f"incident #{incident.id} {kind}", f"title: {incident.title}", f"severity: {incident.severity}",
             f"opened_at: {incident.opened_at.isoformat()}"]
    if incident.resolved_at:
        lines.append(f"resolved_at: {incident.resolved_at.isoformat()} duration_s: {incident.duration_s:.0f}")
    if incident.locations:
        lines.append(f"locations: {', '.join(incident.locations)}")
    if extra:
        lines.append(extra)
    return subject, "\n".join(lines)


def customer_notice(kind: str, incident: Incident, services: list[str]) -> tuple[str, str]:
    """The one notice a customer gets when an incident opens, and the one when it is resolved."""
    number = persian_digits(str(incident.id))
    what = "، ".join(services) if services else "سرویس شما"
    # A subject line names a few services; the body names them all (a switch may carry dozens).
    short = what if len(services) <= 3 else \
        f"{'، '.join(services[:2])} و {persian_digits(str(len(services) - 2))} سرویس دیگر"
    if kind == "resolved":
        subject = f"رفع اختلال — رخداد {number}"
        body = (f"مشتری گرامی، اختلال {what} در {jalali(incident.resolved_at)} برطرف شد. "
                f"مدت اختلال: {persian_duration(incident.duration_s or 0)}.")
    else:
        subject = f"اختلال در {short} — رخداد {number}"
        body = (f"مشتری گرامی، از {jalali(incident.opened_at)} اختلالی ({_SEVERITY_FA[incident.severity]}) "
                f"در {what} شناسایی شد. کارشناسان ما در حال رسیدگی هستند و نیازی به ثبت تیکت نیست.")
    return subject, body


def _clock(at: datetime) -> str:
    return persian_digits(at.astimezone(TEHRAN).strftime("%H:%M"))


def customer_sms(kind: str, incident: Incident, services: list[str]) -> str:
    """The compact Persian form of a customer notice, for one SMS part (70 UCS-2 characters) where the
    service names allow: what, since when (Tehran time), and the incident's number."""
    number = persian_digits(str(incident.id))
    what = services[0] if len(services) == 1 else \
        (f"{persian_digits(str(len(services)))} سرویس" if services else "سرویس شما")
    if kind == "resolved":
        return f"اختلال {what} برطرف شد ({persian_duration(incident.duration_s or 0)}). رخداد {number}"
    return f"اختلال {_SEVERITY_FA[incident.severity]} در {what} از {_clock(incident.opened_at)}. رخداد {number}"


def noc_sms(kind: str, incident: Incident) -> str:
    """The compact form of a NOC notice (ASCII, so one 160-character part)."""
    return f"#{incident.id} {kind} {incident.severity}: {incident.title}"


def notice_data(kind: str, incident: Incident, customer_title: str | None = None) -> dict[str, Any]:
    """The JSON a webhook receives. A customer's webhook gets ``customer_title`` (the Persian subject of its
    notice) as the title and no ``source``: the incident's own title names internal monitors."""
    data = {
        "event": kind, "incident_id": incident.id, "severity": incident.severity, "status": incident.status,
        "title": incident.title, "source": incident.source, "opened_at": incident.opened_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "duration_s": incident.duration_s, "previous_incident_id": incident.previous_incident_id,
    }
    if customer_title is not None:
        data["title"] = customer_title
        del data["source"]
    return data
