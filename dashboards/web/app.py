"""The web application factory."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from dashboards.metrics_page import MetricsPage
from dashboards.web import (
    admin_audit_pages,
    admin_calendar_pages,
    admin_channel_pages,
    admin_pages,
    api_agents,
    api_incidents,
    api_inventory,
    api_ledger,
    api_status,
    api_tickets,
    api_workers,
    desk_pages,
    heartbeat_routes,
    incident_pages,
    ledger_pages,
    login,
    maintenance_pages,
    monitor_pages,
    noc_routes,
    openapi,
    portal_routes,
    portal_tickets,
    prefs_routes,
    probe_routes,
    report_routes,
    statement_pages,
    status_routes,
    subscribe_routes,
    templating,
)
from dashboards.web.body import MAX_BODY
from dashboards.web.deps import DEPS, SESSION_LOOKUP, WebDeps
from dashboards.web.middleware import auth_middleware, error_middleware
from dashboards.web.routing import RouteTable
from dashboards.web.security import add_security_headers
from monitor.accounts import Role

__all__ = ["build_app", "ROUTE_TABLES", "METRICS_PAGE"]

metrics_routes = RouteTable()
METRICS_PAGE = web.AppKey("negahban_metrics_page", MetricsPage)


# Rule 4 (confidentiality): the series name customers, services and monitors, so only a NOC or admin token
# (Prometheus' ``authorization: {credentials_file: ...}``) may read them.
METRICS_ROLES = frozenset({Role.ADMIN, Role.NOC})


@metrics_routes.get("/metrics", roles=METRICS_ROLES, produces="text/plain")
async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus metrics (text exposition format)."""
    # The role check above runs before this: the cached body is only ever handed to a NOC or admin token.
    chunks = await request.app[METRICS_PAGE].chunks()
    resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
    resp.content_length = sum(len(c) for c in chunks)
    await resp.prepare(request)
    for chunk in chunks:  # each write waits for the socket when its buffer is full, so a slow scraper yields
        await resp.write(chunk)
    await resp.write_eof()
    return resp


# Every area's routes; tests walk these to check roles and tenant isolation on every route.
ROUTE_TABLES: list[RouteTable] = [metrics_routes, api_agents.routes, api_inventory.routes, api_incidents.routes, api_tickets.routes,
                                  api_ledger.routes, api_status.routes, api_workers.routes, login.routes, noc_routes.routes,
                                  heartbeat_routes.routes, probe_routes.routes,
                                  portal_routes.routes, portal_tickets.routes, desk_pages.routes, report_routes.routes, status_routes.routes, subscribe_routes.routes, prefs_routes.routes,
                                  incident_pages.routes, ledger_pages.routes, statement_pages.routes,
                                  maintenance_pages.routes, monitor_pages.routes, admin_calendar_pages.routes,
                                  admin_pages.routes, admin_channel_pages.routes, admin_audit_pages.routes,
                                  openapi.routes]
STATIC = Path(__file__).parent / "static"


def build_app(deps: WebDeps) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY)
    app[DEPS] = deps
    app[METRICS_PAGE] = MetricsPage(deps.registry, deps.clock, deps.probe_exposition, deps.metrics_hub,
                                    ttl_s=deps.metrics_cache_seconds)
    app.on_response_prepare.append(add_security_headers)
    app[SESSION_LOOKUP] = login.session_principal
    app[noc_routes.STREAMS] = set()
    app[status_routes.STATUS_CACHE] = status_routes.status_cache(deps.clock)
    app[report_routes.PDF_CACHE] = report_routes.pdf_cache(deps.clock)
    app.on_shutdown.append(noc_routes.close_streams)
    for table in ROUTE_TABLES:
        table.register(app)
    app[openapi.OPENAPI] = openapi.build_document(ROUTE_TABLES)
    app.router.add_static("/static", STATIC, name="static")
    templating.setup(app)
    return app
