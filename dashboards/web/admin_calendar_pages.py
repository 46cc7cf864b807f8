"""The office calendar in the admin's browser: ``/admin/calendar`` lists the coming year's official holidays,
closures and removed holidays (Jalali dates, Persian digits), with a form to close the office on a day or a
range of days for a reason, a button to withdraw a closure, and one to open the office on a seeded holiday
(or restore it).

The page only reads and asks: :func:`tickets.calendar_admin.upcoming` and ``add_closure``,
``remove_seeded_date``, ``withdraw_change``, each of which recomputes the open tickets' due times. Dates are
typed as Jalali dates ("1405/09/08", Persian digits allowed). A refusal (an end before the start, a day in the
past, no reason) is the page again (400) with the desk's Persian message, the field marked and the form as
typed; nothing is written.
"""

from __future__ import annotations

import re
from datetime import date

import jdatetime
from aiohttp import web
from pydantic import Field

from dashboards.web.deps import DEPS
from dashboards.web.html import TEHRAN, fa_digits, see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params
from dashboards.web.routing import BODY, FORM, HTML, JSON, RouteTable
from dashboards.web.templating import N_, render
from monitor.accounts import Role
from monitor.errors import InvalidInput
from tickets import calendar_admin
from tickets.calendar import CLOSURE, REMOVED
from tickets.errors import Refusal
from tickets.sla import SlaTargets

__all__ = ["routes", "CALENDAR_ROLES", "parse_jalali_day"]

routes = RouteTable()
CALENDAR_ROLES = frozenset({Role.ADMIN})
DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
JALALI_DAY = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})")
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

KIND_WORDS = {calendar_admin.HOLIDAY: N_("Official holiday"), CLOSURE: N_("Closure"),
              REMOVED: N_("Holiday the office works")}
NOTICES = {"closed": N_("The closure was added; due times of open tickets were recomputed."),
           "withdrawn": N_("The change was withdrawn; due times of open tickets were recomputed."),
           "opened": N_("The office works on this holiday; due times of open tickets were recomputed.")}
BAD_DAY = N_("Write the date as a Jalali date, for example 1405/09/10.")
ERRORS = {400: ("a field over its length (JSON), or the page again with the reason in Persian and the form "
                "as typed", (JSON, HTML))}


def parse_jalali_day(text: str, field: str) -> date | None:
    """A Jalali date ("1405/09/08", Persian digits allowed) as a Gregorian date; '' is None; anything else is
    refused naming ``field``."""
    raw = (text or "").strip().translate(DIGITS)
    if not raw:
        return None
    m = JALALI_DAY.fullmatch(raw)
    if m is None or not 1300 <= int(m.group(1)) <= 1600:
        raise InvalidInput(field, BAD_DAY)
    try:
        return jdatetime.date(*(int(x) for x in m.groups())).togregorian()
    except ValueError:
        raise InvalidInput(field, BAD_DAY) from None


def _iso_day(text: str, field: str) -> date:
    """A day the page itself put in a button (ISO), refused naming ``field`` when it is not one."""
    try:
        if ISO_DAY.fullmatch(text or ""):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidInput(field, "not a day (YYYY-MM-DD)")


def _targets(request: web.Request) -> SlaTargets:
    """The first-response targets the service runs with (as the API's routes take them)."""
    return request.app[DEPS].services.get("sla_targets") or SlaTargets()


def _jalali(day: date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")


class ClosureForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    day: str = Field("", max_length=40, description="the first closed day, a Jalali date")
    until: str = Field("", max_length=40, description="the last closed day, a Jalali date (empty: one day)")
    name: str = Field("", max_length=2000, description="the reason of the closure")


class DayForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    day: str = Field("", max_length=10, description="the day, YYYY-MM-DD (the page's own button)")
    kind: str = Field("", max_length=10, description="closure or removed (withdrawing a change)")


async def _page(request: web.Request, *, error: str = "", error_id: str = "", typed: dict | None = None,
                status: int = 200) -> web.Response:
    deps = request.app[DEPS]
    today = deps.clock.now().astimezone(TEHRAN).date()
    lines = await calendar_admin.upcoming(deps.sessionmaker, today)
    return render(request, "admin_calendar.html", {
        "lines": [{"line": ln, "jalali": _jalali(ln.day), "iso": ln.day.isoformat()} for ln in lines],
        "kind_words": KIND_WORDS, "today": _jalali(today),
        "notice": NOTICES.get(request.query.get("done", ""), ""),
        "error": error, "error_id": error_id, "typed": typed or {}, "example": fa_digits(_jalali(today)),
    }, status=status, title=N_("Office calendar"))


@routes.get("/admin/calendar", roles=CALENDAR_ROLES, produces=HTML)
async def admin_calendar_page(request: web.Request) -> web.Response:
    """The coming year's holidays, closures and removed holidays, and the form to add a closure."""
    return await _page(request)


@routes.post("/admin/calendar/closures", roles=CALENDAR_ROLES, body=ClosureForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def admin_closure_submit(request: web.Request) -> web.Response:
    """Close the office from ``day`` to ``until`` for the reason ``name``; a refusal is the page again."""
    deps, form = request.app[DEPS], request[BODY]
    typed = form.model_dump(exclude={"csrf"})
    try:
        first = parse_jalali_day(form.day, "day")
        if first is None:
            raise InvalidInput("day", BAD_DAY)
        last = parse_jalali_day(form.until, "until")
        await calendar_admin.add_closure(deps.sessionmaker, request[PRINCIPAL], first, until=last,
                                         name=form.name, now=deps.clock.now(), targets=_targets(request))
    except InvalidInput as bad:
        return await _page(request, error_id=BAD_DAY, typed=typed | {"field": bad.field}, status=400)
    except Refusal as refusal:
        return await _page(request, error=refusal.message, typed=typed | {"field": refusal.field}, status=400)
    return see_other("/admin/calendar?done=closed")


@routes.post("/admin/calendar/withdraw", roles=CALENDAR_ROLES, body=DayForm, body_media=FORM, produces=HTML,
             status=303)
async def admin_calendar_withdraw(request: web.Request) -> web.Response:
    """Withdraw a closure, or restore a holiday the office was to work; withdrawing twice is harmless."""
    deps, form = request.app[DEPS], request[BODY]
    if form.kind not in (CLOSURE, REMOVED):
        raise InvalidInput("kind", "closure or removed")
    await calendar_admin.withdraw_change(deps.sessionmaker, request[PRINCIPAL], _iso_day(form.day, "day"),
                                         form.kind, now=deps.clock.now(), targets=_targets(request))
    return see_other("/admin/calendar?done=withdrawn")


@routes.post("/admin/calendar/removals", roles=CALENDAR_ROLES, body=DayForm, body_media=FORM, produces=HTML,
             status=303, errors=ERRORS)
async def admin_calendar_open_holiday(request: web.Request) -> web.Response:
    """Open the office on a seeded holiday (it becomes a working day)."""
    deps, form = request.app[DEPS], request[BODY]
    try:
        await calendar_admin.remove_seeded_date(deps.sessionmaker, request[PRINCIPAL],
                                                _iso_day(form.day, "day"), now=deps.clock.now(),
                                                targets=_targets(request))
    except Refusal as refusal:
        return await _page(request, error=refusal.message, status=400)
    return see_other("/admin/calendar?done=opened")
