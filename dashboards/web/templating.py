"""Server-rendered pages: Jinja2 templates (autoescaped), one base layout, Persian by default, English for staff.

Every page is a template under ``dashboards/web/templates/`` that extends ``base.html`` and is rendered by
:func:`render`, which adds what every page needs: the user and role, the session's CSRF token, the language
and direction, the navigation of the role (only links to pages that exist), and the filters that turn numbers
and times into what a reader expects (``fa`` for Persian digits, ``jalali``, ``jalali_date``, ``rial``,
``percent``, ``duration``).

Language. Pages take their words from the gettext catalogs ``locale/fa.po`` and ``locale/en.po`` through
``_("...")`` (the message id is the English text); a staff user may choose English (``POST /lang``,
remembered in a cookie); customers always read Persian. Words that are data (a service's state, a priority,
a month, an incident's kind) come Persian from ``dashboards/web/fa.py``. ``tests/test_templates.py`` fails on a message missing from either catalog.

Errors. A browser that asks for a page (``Accept: text/html``, not an API path) gets the Persian error page
``error.html`` with the status; API callers keep the JSON error shape (:func:`wants_html`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel.messages.pofile import read_po

from dashboards.web.fa import duration_fa, percent
from dashboards.web.html import TEHRAN, fa_digits, jalali, jalali_date

__all__ = ["setup", "render", "wants_html", "error_page", "gettext", "catalog", "LANGUAGES", "LANG_COOKIE",
           "TEMPLATES", "LOCALE", "language_of", "NAV", "N_", "render_string", "message_ids"]

TEMPLATES = Path(__file__).parent / "templates"
LOCALE = Path(__file__).parent / "locale"
LANGUAGES = ("fa", "en")
LANG_COOKIE = "ngb_lang"
_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("negahban_lang", default="fa")
_KNOWN_PATHS = web.AppKey("negahban_known_paths", frozenset)

# Each role's navigation: (path, message id). A link is shown only when its page is registered, so a role
# never sees a link to a page that does not exist in this build.
def N_(message: str) -> str:
    """Mark a message id for the catalogs where it is translated later (at render time)."""
    return message


_SERVICES, _STATUS, _NOC, _DESK = N_("Services"), N_("Status"), N_("NOC"), N_("Ticket desk")
_LEDGER, _MAINT, _INCIDENTS = N_("Ledger"), N_("Maintenance"), N_("Incidents")
_MONITORS = N_("Monitors")
_SLA = N_("SLA report")
NAV: Mapping[str, tuple[tuple[str, str], ...]] = {
    "customer": (("/portal", N_("My services")), ("/portal/tickets", N_("My tickets")), ("/status", _STATUS)),
    "technician": (("/desk", _DESK), ("/desk/sla", _SLA), ("/noc", _NOC), ("/incidents", _INCIDENTS), ("/monitors", _MONITORS),
                   ("/portal", _SERVICES)),
    "finance": (("/ledger", _LEDGER), ("/portal", _SERVICES)),
    "noc": (("/noc", _NOC), ("/incidents", _INCIDENTS), ("/monitors", _MONITORS), ("/noc/maintenance", _MAINT), ("/desk", _DESK), ("/desk/sla", _SLA), ("/portal", _SERVICES),
            ("/status", _STATUS)),
    "admin": (("/noc", _NOC), ("/incidents", _INCIDENTS), ("/monitors", _MONITORS), ("/desk", _DESK), ("/desk/sla", _SLA), ("/ledger", _LEDGER), ("/noc/maintenance", _MAINT),
              ("/admin", N_("Admin")), ("/admin/users", N_("Users and roles")), ("/admin/calendar", N_("Office calendar")),
              ("/admin/channels", N_("Notification channels")), ("/admin/escalation", N_("Escalation policies")),
              ("/admin/audit", N_("Audit log")), ("/portal", _SERVICES),
              ("/status", _STATUS)),
}


@cache
def catalog(lang: str) -> Mapping[str, str]:
    """The translations of one language, read from its PO file (message id -> text)."""
    with (LOCALE / f"{lang}.po").open("rb") as fh:
        po = read_po(fh, locale=lang)
    return {m.id: m.string for m in po if m.id and isinstance(m.id, str) and m.string}


def gettext(message: str) -> str:
    """``message`` in the language of the page being rendered (the message id itself when untranslated)."""
    return catalog(_LANG.get()).get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


def _fa(value: Any) -> str:
    """Persian digits on a Persian page; the value as it is on an English one."""
    text = "" if value is None else str(value)
    return fa_digits(text) if _LANG.get() == "fa" else text


def _rial(amount: int | None) -> str:
    if amount is None:
        return "—"
    text = f"{int(amount):,}"
    if _LANG.get() != "fa":
        return text + " IRR"
    number = fa_digits(text.replace(",", "٬"))
    # A negative amount in a right-to-left line: the number is isolated left-to-right, so that its minus sign
    # stays in front of the digits instead of moving to their end.
    return ("\u2066" + number + "\u2069" if amount < 0 else number) + " ریال"


def _jalali(at: datetime | None) -> str:
    if at is None:
        return "—"
    return jalali(at) if _LANG.get() == "fa" else at.astimezone(TEHRAN).strftime("%Y-%m-%d %H:%M")


def _jalali_date(at: datetime | None) -> str:
    if at is None:
        return "—"
    return jalali_date(at) if _LANG.get() == "fa" else at.astimezone(TEHRAN).strftime("%Y-%m-%d")


def _duration(seconds: float) -> str:
    """``۲ ساعت و ۵ دقیقه`` on a Persian page, ``2 h 5 min`` on an English one."""
    if _LANG.get() == "fa":
        return duration_fa(seconds)
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v} {w}" for v, w in ((days, "d"), (hours, "h"), (minutes, "min")) if v]
    return " ".join(parts) if parts else f"{secs} s"


def _environment_setup(env: jinja2.Environment) -> None:
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(fa=_fa, rial=_rial, jalali=_jalali, jalali_date=_jalali_date, percent=percent,
                       duration=_duration)


def setup(app: web.Application) -> None:
    """Install the template environment on ``app`` (call after every route is registered)."""
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    _environment_setup(env)
    app[_KNOWN_PATHS] = frozenset(
        r.resource.canonical for r in app.router.routes() if r.method == "GET" and r.resource is not None)


def language_of(request: web.Request, role: str | None) -> str:
    """Customers and visitors read Persian; staff read the language they chose (Persian unless English)."""
    if role in (None, "customer"):
        return "fa"
    chosen = request.cookies.get(LANG_COOKIE, "fa")
    return chosen if chosen in LANGUAGES else "fa"


def _principal(request: web.Request):
    from dashboards.web.middleware import PRINCIPAL
    return request.get(PRINCIPAL)


def _nav(request: web.Request, role: str | None) -> list[tuple[str, str, bool]]:
    known = request.app.get(_KNOWN_PATHS, frozenset())
    here = request.path
    items = NAV.get(role or "", ())
    return [(path, gettext(label), here == path or here.startswith(path + "/"))
            for path, label in items if path in known]


def _company(request: web.Request):
    from dashboards.web.deps import DEPS, Company

    deps = request.app.get(DEPS)
    return deps.company if deps is not None else Company()


def render(request: web.Request, template: str, context: Mapping[str, Any] | None = None, *,
           status: int = 200, title: str = "") -> web.Response:
    """Render ``template`` for this request: the page context plus everything the base layout uses."""
    from dashboards.web.login import CSRF

    # A public page (login, status) is the same for everyone and may be cached: it names no user and carries
    # no session token, even when the reader has a session.
    declared = getattr(request.match_info.handler, "__negahban_route__", None)
    principal = None if declared is not None and declared[1] else _principal(request)
    role = str(principal.role) if principal is not None else None
    lang = language_of(request, role)
    token = _LANG.set(lang)
    try:
        ctx: dict[str, Any] = {
            "lang": lang, "dir": "rtl" if lang == "fa" else "ltr", "user": getattr(principal, "username", None),
            "role": role, "is_staff": bool(principal is not None and principal.is_staff), "csrf": request.get(CSRF) if principal is not None else None,
            "nav": _nav(request, role), "path": request.path, "title": title,
            "languages": LANGUAGES if role not in (None, "customer") else (),
            "company_name": _company(request).name,
        }
        ctx.update(context or {})
        response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    finally:
        _LANG.reset(token)
    response.charset = "utf-8"
    return response



def render_string(template: str, context: Mapping[str, Any], *, lang: str = "fa",
                  env: jinja2.Environment | None = None) -> str:
    """Render a template outside a request (mail bodies, tests) with the same filters and catalogs."""
    env = env or _standalone_env()
    token = _LANG.set(lang)
    try:
        return env.get_template(template).render(**context)
    finally:
        _LANG.reset(token)


@cache
def _standalone_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    _environment_setup(env)
    return env


_API_PREFIXES = ("/api/", "/metrics", "/probe", "/hb/", "/healthz", "/readyz")


def wants_html(request: web.Request) -> bool:
    """A browser asking for a page, not an API client: it accepts HTML and the path is not an API path."""
    if request.path.startswith(_API_PREFIXES):
        return False
    return "text/html" in request.headers.get("Accept", "")


# Persian words for each status a browser may be shown; the reason given to the API is never shown here.
_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("درخواست نادرست است", "آنچه فرستاده شد پذیرفته نشد. به صفحهٔ قبل برگردید و دوباره تلاش کنید."),
    401: ("ورود لازم است", "برای دیدن این صفحه وارد شوید."),
    403: ("دسترسی ندارید", "حساب شما اجازهٔ دیدن این صفحه یا انجام این کار را ندارد."),
    404: ("صفحه پیدا نشد", "صفحه‌ای که خواستید وجود ندارد یا به آن دسترسی ندارید."),
    405: ("این کار پذیرفته نیست", "این صفحه این نوع درخواست را نمی‌پذیرد."),
    413: ("حجم زیاد است", "آنچه فرستادید از اندازهٔ مجاز بزرگ‌تر است."),
    429: ("درخواست‌ها زیاد است", "چند دقیقهٔ دیگر دوباره تلاش کنید."),
    500: ("خطای سامانه", "مشکلی در سامانه پیش آمد و ثبت شد. کمی بعد دوباره تلاش کنید."),
}


def error_page(request: web.Request, status: int) -> web.Response:
    """The Persian HTML error page for a browser."""
    heading, text = _ERRORS.get(status, _ERRORS[500 if status >= 500 else 400])
    try:
        return render(request, "error.html", {"status": status, "heading": heading, "text": text}, status=status,
                      title=heading)
    except (KeyError, RuntimeError):  # an app without templates (some unit tests build bare apps)
        body = f"<!doctype html><html lang=fa dir=rtl><meta charset=utf-8><title>{heading}</title><h1>{heading}</h1>"
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def message_ids(root: Path = Path(__file__).parent) -> set[str]:
    """Every message id of the web package: ``_()``/``{% trans %}`` in its templates, and ``_``, ``gettext``
    and ``N_`` calls in its Python modules."""
    from babel.messages.extract import extract_from_dir

    ids: set[str] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(root), method_map=[("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2"),
                                   ("**.py", "python")],
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}}):
        ids.add(message if isinstance(message, str) else message[0])
    return ids
