"""Server-rendered HTML: one page layout, escaping, Persian digits and Jalali dates for what customers see."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

import jdatetime
from aiohttp import web

__all__ = ["page", "esc", "fa_digits", "fa_number", "jalali", "jalali_date", "TEHRAN", "csrf_field", "see_other"]

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


def csrf_field(token: str | None) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">' if token else ""


def _nav(user: str | None, csrf: str | None) -> str:
    if not user:
        return ""
    return (f'<nav class="top"><span class="who">{esc(user)}</span>'
            f'<form method="post" action="/logout" class="inline">{csrf_field(csrf)}'
            f'<button type="submit">خروج</button></form></nav>')


def page(title: str, body: str, *, user: str | None = None, csrf: str | None = None, lang: str = "fa",
         status: int = 200, head: str = "") -> web.Response:
    direction = "rtl" if lang == "fa" else "ltr"
    meta_csrf = f'<meta name="csrf-token" content="{esc(csrf)}">' if csrf else ""
    text = (f'<!doctype html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta_csrf}'
            f'<title>{esc(title)}</title><link rel="stylesheet" href="/static/app.css">{head}</head>'
            f'<body class="{direction}">{_nav(user, csrf)}<main>{body}</main></body></html>')
    # Security headers (CSP, framing, sniffing, referrer) are added to every response by web.security.
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})
