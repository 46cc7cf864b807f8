"""Authentication, role checks and error translation for every request."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from aiohttp import web

from dashboards.errors import CsrfRejected
from dashboards.web.body import BodyTooLarge
from dashboards.web.deps import DEPS, SESSION_LOOKUP
from monitor.accounts import Principal, principal_for_token
from monitor.errors import AccessDenied, InvalidInput, NegahbanError, NotFound

__all__ = ["auth_middleware", "error_middleware", "PRINCIPAL", "json_error"]

log = logging.getLogger("negahban.web")
PRINCIPAL = web.RequestKey("principal", object)


def json_error(status: int, error: str, **extra) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


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
        return json_error(401, "authentication required")
    if principal.role not in roles:
        return json_error(403, "forbidden", reason=f"role {principal.role} may not call this route")
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler):
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
