"""Web login for staff and customers: the login form, the session cookie, CSRF checks and logout.

A session cookie is HttpOnly, SameSite=Lax and Secure (unless the settings turn Secure off for plain-HTTP
development). Every unsafe request authenticated by the cookie must carry the session's CSRF token, in the
form field ``csrf`` or the ``X-CSRF-Token`` header; the login form itself is protected by a double-submit
token in a short-lived cookie.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import Field

from dashboards.errors import CsrfRejected, LoginRefused, TooManyAttempts
from dashboards.web.deps import DEPS
from dashboards.web.html import fa_digits, see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params
from dashboards.web.routing import BODY, FORM, HTML, QUERY, RouteTable
from dashboards.web.sessions import csrf_matches, login, logout, lookup_session
from dashboards.web.templating import NAV, render
from monitor.accounts import ALL_ROLES, Principal
from monitor.errors import InvalidInput

__all__ = ["routes", "safe_next", "session_principal", "SESSION_COOKIE", "CSRF", "home_for"]

routes = RouteTable()
SESSION_COOKIE = "ngb_session"
LOGIN_CSRF_COOKIE = "ngb_login_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The current session's CSRF token, for pages to put in their forms.
CSRF = web.RequestKey("csrf", str)


def _client_ip(request: web.Request) -> str:
    return request.remote or ""


async def _given_csrf(request: web.Request) -> str | None:
    header = request.headers.get("X-CSRF-Token")
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return (await request.post()).get("csrf")
    return None


async def session_principal(request: web.Request) -> Principal | None:
    """The ``SESSION_LOOKUP`` hook: the principal of the session cookie, CSRF-checked on unsafe methods."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    deps = request.app[DEPS]
    found = await lookup_session(deps.sessionmaker, session_id, deps.clock.now())
    if found is None:
        return None
    principal, csrf = found
    if request.method in UNSAFE and not csrf_matches(csrf, await _given_csrf(request)):
        raise CsrfRejected(f"{request.method} {request.path} without this session's CSRF token")
    request[CSRF] = csrf
    return principal


def home_for(principal: Principal) -> str:
    """Where a role's day starts: the first page of its navigation (the desk for a technician, the ledger for
    finance, the NOC screen for the NOC and admins, the portal for a customer)."""
    items = NAV.get(principal.role.value)
    return items[0][0] if items else ("/noc" if principal.is_staff else "/portal")


def safe_next(value) -> str | None:
    """Return ``value`` if it is a path on this site, else None (the one check for every redirect target).

    Browsers drop tabs and newlines from a Location and read a backslash as a slash, so "/<TAB>/host" or
    "/<BACKSLASH>host" would leave the site: anything but printable ASCII, any backslash, a scheme or a host
    is refused, and so is a path with a percent-encoded slash, backslash or control character that a proxy
    might decode on the way.
    """
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return None
    if any(not 0x21 <= ord(ch) <= 0x7e for ch in value) or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return None
    if re.search(r"%(2f|5c|[01][0-9a-f]|7f)", parts.path, re.IGNORECASE):
        return None
    return value


def _login_page(request: web.Request, next_path: str, message: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", {"login_csrf": token, "next_path": next_path, "message": message},
                  status=status, title="ورود")
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=1800, httponly=True, samesite="Strict",
                    secure=request.app[DEPS].cookie_secure, path="/login")
    return resp


class NextQuery(Params):
    next: str | None = Field(None, description="where to go after logging in (a path on this site)")


class LoginForm(Params):
    username: str = Field("", max_length=200)
    password: str = Field("", max_length=1024)
    csrf: str = Field("", max_length=200, description="the token of the login form's cookie")
    next: str = Field("", max_length=2000)


LOGIN_ERRORS = {401: ("wrong username or password (the form again)", HTML),
                403: ("the form expired (the form again)", HTML),
                429: ("too many failed attempts; see Retry-After (the form again)", HTML)}


@routes.get("/", public=True, produces=HTML, status=303)
async def home(request: web.Request) -> web.Response:
    """To the caller's home page, or to the login form."""
    principal = request[PRINCIPAL]
    return see_other(home_for(principal) if principal is not None else "/login")


@routes.get("/login", public=True, query=NextQuery, produces=HTML)
async def login_form(request: web.Request) -> web.Response:
    """The login form."""
    return _login_page(request, safe_next(request[QUERY].next) or "")


@routes.post("/login", public=True, body=LoginForm, body_media=FORM, produces=HTML, status=303,
             errors=LOGIN_ERRORS)
async def login_submit(request: web.Request) -> web.StreamResponse:
    """Log in: a session cookie, then on to ``next`` or the caller's home page."""
    form = request[BODY]
    next_path = safe_next(form.next) or ""
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), form.csrf):
        return _login_page(request, next_path, "فرم منقضی شده است؛ دوباره تلاش کنید.", status=403)
    deps = request.app[DEPS]
    try:
        result = await login(deps.sessionmaker, form.username, form.password, _client_ip(request),
                             deps.clock.now(), passwords=deps.passwords)
    except TooManyAttempts as exc:
        msg = f"تلاش‌های ناموفق زیاد بود؛ {fa_digits(exc.retry_after_s)} ثانیه دیگر دوباره تلاش کنید."
        resp = _login_page(request, next_path, msg, status=429)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp
    except LoginRefused:
        return _login_page(request, next_path, "نام کاربری یا گذرواژه نادرست است.", status=401)
    resp = see_other(next_path or home_for(result.principal))
    resp.set_cookie(SESSION_COOKIE, result.session_id, httponly=True, samesite="Lax",
                    secure=deps.cookie_secure, path="/")
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return resp


@routes.post("/logout", roles=ALL_ROLES, produces=HTML, status=303)
async def logout_submit(request: web.Request) -> web.StreamResponse:
    """End the web session."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or request[PRINCIPAL] is None:
        raise InvalidInput("session", "no web session to end (API tokens are revoked, not logged out)")
    await logout(request.app[DEPS].sessionmaker, session_id)
    resp = see_other("/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


