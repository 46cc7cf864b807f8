"""Routes that declare who may call them and what they take: one declaration validates and documents.

Every route is declared with ``@routes.get(path, roles=...)`` (or ``public=True`` for the few pages anyone may
read: health, the status page, the login form). It also names the pydantic models of what it reads:
``body=Model`` (JSON by default; ``body_media`` for a form, ``body=bytes`` for a raw upload), ``query=Model``
and ``path=Model``, and optionally ``response=Model`` (or ``list[Model]``). The framework validates each before
the handler runs and hands the parsed models over as ``request[BODY]``, ``request[QUERY]`` and
``request[PATH]``; ``dashboards.web.openapi`` builds the OpenAPI document from the same declarations, so the
document cannot drift from what the routes accept. The auth middleware refuses a caller whose role is not
declared, and tests walk ``RouteTable.entries`` to check every customer-reachable route against another
tenant's ids.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from dashboards.web.body import MAX_BODY, read_body, read_model
from monitor.accounts import Role
from monitor.errors import InvalidInput, NotFound

__all__ = ["RouteTable", "RouteEntry", "Handler", "BODY", "QUERY", "PATH", "JSON", "FORM", "HTML"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = web.RequestKey("negahban_body", object)
QUERY = web.RequestKey("negahban_query", object)
PATH = web.RequestKey("negahban_path", object)
JSON, FORM, HTML = "application/json", "application/x-www-form-urlencoded", "text/html"


@dataclass(frozen=True, slots=True)
class RouteEntry:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]
    public: bool
    name: str
    body: Any = None  # a pydantic model, ``bytes`` (the raw body) or None
    query: type[BaseModel] | None = None
    path_model: type[BaseModel] | None = None
    response: Any = None  # a pydantic model, ``list[Model]`` or None (documented without a schema)
    body_media: str = JSON
    produces: str = JSON
    status: tuple[int, ...] = (200,)
    max_body: int = MAX_BODY
    paginated: bool = False
    # Statuses this route answers besides the common ones: status -> description, or (description, media).
    errors: Mapping[int, Any] = field(default_factory=dict)
    summary: str = ""


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]), err["msg"]


def parse_path(model: type[BaseModel], match_info: Mapping[str, str]) -> BaseModel:
    """An id in the path that cannot name a row (not a number, out of range) is answered as a missing row;
    any other bad path value (a month of 13) as invalid input naming it."""
    try:
        return model.model_validate(dict(match_info))
    except ValidationError as exc:
        name, msg = _first_error(exc)
        if name.endswith("_id"):
            raise NotFound(f"{name} {match_info.get(name)!r}") from None
        raise InvalidInput(name, msg) from None


def parse_query(model: type[BaseModel], query: Mapping[str, str]) -> BaseModel:
    try:
        return model.model_validate(dict(query))
    except ValidationError as exc:
        raise InvalidInput(*_first_error(exc)) from None


async def _form(request: web.Request, model: type[BaseModel]) -> BaseModel:
    form = await request.post()
    # A field typed as a list takes every value of its name (a group of checkboxes); the others the last.
    many = {name for name, f in model.model_fields.items() if getattr(f.annotation, "__origin__", None) is list}
    values: dict[str, object] = {k: v for k, v in form.items() if isinstance(v, str)}
    values |= {k: [v for v in form.getall(k) if isinstance(v, str)] for k in many if k in form}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(*_first_error(exc)) from None


async def parse_body(request: web.Request, e: RouteEntry):
    if e.body is bytes:
        return await read_body(request, e.max_body)
    if e.body_media == FORM:
        return await _form(request, e.body)
    return await read_model(request, e.body, e.max_body)


def _validating(e: RouteEntry) -> Handler:
    """The handler aiohttp calls: path, query and body are parsed (and refused) before ``e.handler`` runs."""

    @functools.wraps(e.handler)
    async def handler(request: web.Request) -> web.StreamResponse:
        if e.path_model is not None:
            request[PATH] = parse_path(e.path_model, request.match_info)
        if e.query is not None:
            request[QUERY] = parse_query(e.query, request.query)
        if e.body is not None:
            request[BODY] = await parse_body(request, e)
        return await e.handler(request)

    handler.__negahban_route__ = (e.roles, e.public)  # read by the auth middleware
    return handler


class RouteTable:
    def __init__(self) -> None:
        self.entries: list[RouteEntry] = []

    def route(self, method: str, template: str, *, roles: Iterable[Role] = (), public: bool = False,
              path: type[BaseModel] | None = None, status: int | tuple[int, ...] = 200, **spec):
        roles = frozenset(roles)
        if not roles and not public:
            raise ValueError(f"{method} {template}: declare roles=... or public=True")
        statuses = (status,) if isinstance(status, int) else tuple(status)

        def deco(handler: Handler) -> Handler:
            self.entries.append(RouteEntry(method, template, handler, roles, public, handler.__qualname__,
                                           path_model=path, status=statuses, **spec))
            handler.__negahban_route__ = (roles, public)
            return handler

        return deco

    def get(self, template: str, **kw):
        return self.route("GET", template, **kw)

    def post(self, template: str, **kw):
        return self.route("POST", template, **kw)

    def put(self, template: str, **kw):
        return self.route("PUT", template, **kw)

    def delete(self, template: str, **kw):
        return self.route("DELETE", template, **kw)

    def register(self, app: web.Application) -> None:
        for e in self.entries:
            name = e.name.replace(".", "_").replace("<", "").replace(">", "")
            app.router.add_route(e.method, e.path, _validating(e), name=name)
