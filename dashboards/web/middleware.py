"""Authentication, role checks and error translation for every request."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from aiohttp import web

from dashboards.errors import CsrfRejected
from dashboards.web.body import BodyTooLarge
from dashboards.web.deps import DEPS, SESSION_LOOKUP
from dashboards.web.templating import error_page, wants_html
from monitor.accounts import Principal, principal_for_token
from monitor.errors import AccessDenied, InvalidInput, NegahbanError, NotFound

__all__ = ["auth_middleware", "error_middleware", "PRINCIPAL", "json_error", "unauthorized"]

log = logging.getLogger("negahban.web")
PRINCIPAL = web.RequestKey("principal", object)


def json_error(status: int, error: str, *, field: str | None = None, reason: str = "", **extra) -> web.Response:
    """Every error has one shape: ``{"error", "field", "reason"}`` (``field`` null when no one input is at
    fault), plus whatever a route adds (a desk refusal gives the draft back)."""
    return web.json_response({"error": error, "field": field, "reason": reason or error, **extra}, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def unauthorized(reason: str) -> web.Response:
    response = json_error(401, "authentication required", field="Authorization", reason=reason)
    response.headers["WWW-Authenticate"] = 'Bearer realm="negahban"'
    return response


async def _principal(request: web.Request) -> Principal | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        async with request.app[DEPS].sessionmaker() as session:
            return await principal_for_token(session, header[7:].strip())
    session_lookup = request.app.get(SESSION_LOOKUP)
    if session_lookup is not None:
        return await session_lookup(request)
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler):
    declared = getattr(request.match_info.handler, "__negahban_route__", None)
    if declared is None:
        # aiohttp's own handlers (404/405, static files) pass through unchanged.
        return await handler(request)
    roles, public = declared
    try:
        principal = await _principal(request)
    except CsrfRejected:
        if not public:
            raise
        # A public form (the login form) posted by a browser that still has a session: anonymous here.
        principal = None
    request[PRINCIPAL] = principal
    if public:
        return await handler(request)
    if principal is None:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            # A browser is sent to the login form and brought back afterwards.
            return web.Response(status=303, headers={"Location": "/login?next=" + quote(request.path_qs)})
        return unauthorized("send a bearer token (Authorization: Bearer ...) or log in")
    if principal.role not in roles:
        if wants_html(request):
            return error_page(request, 403)
        return json_error(403, "forbidden", reason=f"role {principal.role} may not call this route")
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Errors in one shape: JSON for API callers, the Persian error page for a browser asking for a page."""
    response = await _errors_as_json(request, handler)
    if response.status >= 400 and wants_html(request) and response.content_type == "application/json":
        page = error_page(request, response.status)
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page
    return response


async def _errors_as_json(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFound as exc:
        return json_error(404, "not found", reason=str(exc))
    except AccessDenied as exc:
        # Another tenant's row is answered as missing: its existence is not disclosed.
        return json_error(404, "not found", reason=str(exc))
    except CsrfRejected as exc:
        return json_error(403, "forbidden", reason=str(exc))
    except BodyTooLarge as exc:
        return json_error(413, "payload too large", field=exc.field, reason=exc.reason)
    except InvalidInput as exc:
        return json_error(400, "invalid input", field=exc.field, reason=exc.reason)
    except NegahbanError as exc:
        return json_error(400, "invalid request", reason=str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect raised by a handler
            raise
        return _http_error(request, exc)
    except Exception:
        log.exception("unhandled_error method=%s path=%s", request.method, request.path)
        return json_error(500, "internal error", reason="the server failed; the error was logged")


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no such route, method not allowed, body over the limit) in the same JSON shape."""
    if exc.status == 413:  # aiohttp's form reader over client_max_size: the words of ``BodyTooLarge``
        limit = request.app._client_max_size  # noqa: SLF001 - aiohttp keeps the limit only there
        return json_error(413, "payload too large", field="<body>", reason=f"larger than {limit} bytes")
    reason = f"{exc.reason}: {request.method} {request.path}" if exc.status in (404, 405) else exc.reason
    response = json_error(exc.status, exc.reason.lower(), reason=reason)
    for name in ("Allow", "Retry-After"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response
