"""Routes that declare who may call them.

Every route is declared with ``@routes.get(path, roles=...)`` (or ``public=True`` for the few pages anyone may
read: health, metrics, the status page). The auth middleware refuses a caller whose role is not declared, and
tests walk ``RouteTable.entries`` to check every customer-reachable route against another tenant's ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from monitor.accounts import Role

__all__ = ["RouteTable", "RouteEntry", "Handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RouteEntry:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]
    public: bool
    name: str


class RouteTable:
    def __init__(self) -> None:
        self.entries: list[RouteEntry] = []

    def route(self, method: str, path: str, *, roles: Iterable[Role] = (), public: bool = False):
        roles = frozenset(roles)
        if not roles and not public:
            raise ValueError(f"{method} {path}: declare roles=... or public=True")

        def deco(handler: Handler) -> Handler:
            self.entries.append(RouteEntry(method, path, handler, roles, public, handler.__qualname__))
            handler.__negahban_route__ = (roles, public)  # read by the auth middleware
            return handler

        return deco

    def get(self, path: str, **kw):
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw):
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw):
        return self.route("DELETE", path, **kw)

    def register(self, app: web.Application) -> None:
        for e in self.entries:
            app.router.add_route(e.method, e.path, e.handler, name=e.name.replace(".", "_").replace("<", "")
                                 .replace(">", ""))
