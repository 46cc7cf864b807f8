"""HTML helpers below the templates: escaping, Persian digits and Jalali dates for what customers see, and the
redirect after a form (pages themselves are templates, see :mod:`dashboards.web.templating`)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

import jdatetime
from aiohttp import web

__all__ = ["esc", "fa_digits", "fa_number", "jalali", "jalali_date", "TEHRAN", "see_other"]

TEHRAN = ZoneInfo("Asia/Tehran")
_FA = str.maketrans("0123456789.%", "۰۱۲۳۴۵۶۷۸۹٫٪")


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def fa_digits(value) -> str:
    return str(value).translate(_FA)


def fa_number(value: float, digits: int = 2) -> str:
    return fa_digits(f"{value:.{digits}f}")


def jalali(at: datetime | None) -> str:
    """Asia/Tehran wall time on the Jalali calendar, in Persian digits ("۱۴۰۵/۰۹/۰۵ ۱۴:۳۰")."""
    if at is None:
        return "—"
    return fa_digits(jdatetime.datetime.fromgregorian(datetime=at.astimezone(TEHRAN)).strftime("%Y/%m/%d %H:%M"))


def jalali_date(at: datetime) -> str:
    return fa_digits(jdatetime.date.fromgregorian(date=at.astimezone(TEHRAN).date()).strftime("%Y/%m/%d"))


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})
