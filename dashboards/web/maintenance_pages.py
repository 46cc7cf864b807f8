"""NOC planning in the browser: ``/noc/maintenance`` lists the maintenance windows (current, upcoming, past,
with Jalali times in Tehran) and has a form to plan a one-off or recurring window for a monitor, server,
network device or customer.

The page only reads and asks: :func:`monitor.maintenance.list_windows` and ``create_window`` (which checks
the times, the RRULE, the time zone and that the scope exists, refusing with the field named). Times are typed
as Jalali date and time in Tehran ("1405/09/10 02:00", Persian digits allowed). There is no cancel or edit
form: ``monitor.maintenance`` has no service for it yet.
"""

from __future__ import annotations

import re
from datetime import datetime

import jdatetime
from aiohttp import web
from pydantic import Field

from dashboards.web.deps import DEPS
from dashboards.web.html import TEHRAN, see_other
from dashboards.web.params import Params
from dashboards.web.routing import BODY, FORM, HTML, JSON, RouteTable
from dashboards.web.templating import N_, render
from monitor.accounts import Role
from monitor.errors import InvalidInput
from monitor.maintenance import SCOPES, create_window, list_windows

__all__ = ["routes", "MAINTENANCE_ROLES", "parse_jalali"]

routes = RouteTable()
MAINTENANCE_ROLES = frozenset({Role.NOC, Role.ADMIN})
DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
MOMENT = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?")
MAX_DURATION_MIN = 7 * 24 * 60

SCOPE_WORDS = {"monitor": N_("Monitor"), "server": N_("Server"), "device": N_("Network device"),
               "customer": N_("Customer")}
WHEN_WORDS = {"current": N_("In progress"), "upcoming": N_("Upcoming"), "past": N_("Past")}
NOTICES = {"created": N_("The maintenance window was planned.")}

BAD_TIME = N_("Write the time as a Jalali date and time in Tehran, for example 1405/09/10 02:00.")
BAD_END = N_("A one-off window needs an end after its start.")
BAD_SCOPE = N_("Choose what the window covers.")
BAD_TARGET = N_("There is no such monitor, server, device or customer with this number.")
BAD_RRULE = N_("The repetition rule is not valid (for example FREQ=WEEKLY;BYDAY=FR).")
BAD_DURATION = N_("A recurring window needs its length in minutes (1 to 10,080).")
BAD_TITLE = N_("The title is too long: at most 200 characters.")
REFUSED = N_("The window was refused.")
_FIELD_WORDS = {"starts_at": BAD_TIME, "ends_at": BAD_END, "scope": BAD_SCOPE, "rrule": BAD_RRULE,
                "duration_s": BAD_DURATION, "title": BAD_TITLE, "target": BAD_TARGET,
                **{f"{k}_id": BAD_TARGET for k in SCOPES}}


def parse_jalali(text: str, field: str) -> datetime | None:
    """A Jalali date (and optional time) in Tehran as an aware moment; '' is None; anything else is refused
    naming ``field``."""
    raw = (text or "").strip().translate(DIGITS)
    if not raw:
        return None
    m = MOMENT.fullmatch(raw)
    if m is None:
        raise InvalidInput(field, BAD_TIME)
    y, mo, d, hh, mm = (int(x) if x else 0 for x in m.groups())
    if not 1300 <= y <= 1600:
        raise InvalidInput(field, BAD_TIME)
    try:
        g = jdatetime.datetime(y, mo, d, hh, mm).togregorian()
    except ValueError:
        raise InvalidInput(field, BAD_TIME) from None
    return g.replace(tzinfo=TEHRAN)


class WindowForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    title: str = Field("", max_length=2000, description="what the work is (the status page shows it)")
    scope: str = Field("", max_length=20, description="monitor, server, device or customer")
    target: str = Field("", max_length=40, description="the id of the monitor, server, device or customer")
    starts_at: str = Field("", max_length=40, description="Jalali date and time in Tehran")
    ends_at: str = Field("", max_length=40, description="Jalali date and time in Tehran (a series: its end)")
    rrule: str = Field("", max_length=200, description="RFC 5545 RRULE for a recurring window, else empty")
    duration_min: str = Field("", max_length=20, description="a recurring window's length in minutes")


async def _page(request: web.Request, *, error: str = "", typed: dict[str, str] | None = None,
                status: int = 200) -> web.Response:
    deps = request.app[DEPS]
    lines = await list_windows(deps.sessionmaker, deps.clock.now())
    groups = {w: [ln for ln in lines if ln.timing.when == w] for w in WHEN_WORDS}
    return render(request, "maintenance.html", {
        "groups": groups, "when_words": WHEN_WORDS, "scope_words": SCOPE_WORDS, "scopes": SCOPES,
        "notice": NOTICES.get(request.query.get("done", ""), ""), "error": error, "typed": typed or {},
    }, status=status, title=N_("Maintenance"))


@routes.get("/noc/maintenance", roles=MAINTENANCE_ROLES, produces=HTML)
async def maintenance_page(request: web.Request) -> web.Response:
    """The maintenance windows, current, upcoming and past, and the form to plan one."""
    return await _page(request)


def _whole(text: str, field: str) -> int:
    raw = (text or "").strip().translate(DIGITS)
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 2**63 - 1:
        raise InvalidInput(field, _FIELD_WORDS[field])
    return int(raw)


def _args(form: WindowForm) -> dict:
    if form.scope not in SCOPES:
        raise InvalidInput("scope", BAD_SCOPE)
    args: dict = {f"{form.scope}_id": _whole(form.target, "target"), "title": form.title.strip()}
    starts = parse_jalali(form.starts_at, "starts_at")
    if starts is None:
        raise InvalidInput("starts_at", BAD_TIME)
    args["starts_at"], args["ends_at"] = starts, parse_jalali(form.ends_at, "ends_at")
    if form.rrule.strip():
        minutes = _whole(form.duration_min, "duration_s")
        if minutes > MAX_DURATION_MIN:
            raise InvalidInput("duration_s", BAD_DURATION)
        args["rrule"], args["duration_s"] = form.rrule.strip(), minutes * 60
    return args


@routes.post("/noc/maintenance", roles=MAINTENANCE_ROLES, body=WindowForm, body_media=FORM, produces=HTML,
             status=303, errors={400: ("a field over its length (JSON), or the page again with the reason in "
                                       "Persian and the form as typed", (JSON, HTML))})
async def maintenance_submit(request: web.Request) -> web.Response:
    """Plan a window; a refused field is the page again with the reason in Persian and the form as typed."""
    deps, form = request.app[DEPS], request[BODY]
    try:
        await create_window(deps.sessionmaker, now=deps.clock.now(), **_args(form))
    except InvalidInput as exc:
        typed = form.model_dump(exclude={"csrf"}) | {"field": exc.field}
        why = exc.reason if exc.reason in _FIELD_WORDS.values() else _FIELD_WORDS.get(exc.field, REFUSED)
        return await _page(request, error=why, typed=typed, status=400)
    wake = deps.services.get("maintenance_changed")  # subscribers hear of it now, not at the next sweep
    if wake is not None:
        wake()
    return see_other("/noc/maintenance?done=created")
