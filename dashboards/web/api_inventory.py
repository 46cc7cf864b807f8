"""Inventory and health routes: who am I, services, monitors with their live state."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from dashboards.web.body import int_param, json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.routing import RouteTable
from monitor.accounts import ALL_ROLES, STAFF, scope
from monitor.errors import NotFound
from monitor.models import Customer, Monitor, MonitorState, Service

__all__ = ["routes"]

routes = RouteTable()
log = logging.getLogger("negahban.web")
# A readiness probe must answer well inside the balancer's own timeout.
READY_DB_TIMEOUT_S = 2.0


@routes.get("/healthz", public=True)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _database_answers(sm, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s), sm() as s:
            await s.execute(text("SELECT 1"))
        return True
    except (TimeoutError, OSError, SQLAlchemyError) as exc:
        log.warning("readyz_database_down error=%s", type(exc).__name__)
        return False


@routes.get("/readyz", public=True)
async def readyz(request: web.Request) -> web.Response:
    """Ready when the service has started and the database answers: a load balancer stops sending work to
    an instance whose database is gone."""
    deps = request.app[DEPS]
    started = deps.ready.get("ready", False)
    database = started and await _database_answers(deps.sessionmaker, READY_DB_TIMEOUT_S)
    return json_response({"ready": database, "started": started, "database": database},
                         status=200 if database else 503)


@routes.get("/api/v1/me", roles=ALL_ROLES)
async def me(request: web.Request) -> web.Response:
    p = request[PRINCIPAL]
    return json_response({"user_id": p.user_id, "username": p.username, "role": p.role, "customer_id": p.customer_id})


@routes.get("/api/v1/customers", roles=STAFF)
async def list_customers(request: web.Request) -> web.Response:
    async with request.app[DEPS].sessionmaker() as s:
        rows = (await s.execute(select(Customer).order_by(Customer.name))).scalars().all()
    return json_response([{"id": c.id, "name": c.name, "display_name": c.display_name, "verified": c.verified}
                  for c in rows])


def _service(s: Service) -> dict:
    return {"id": s.id, "name": s.name, "display_name": s.display_name, "customer_id": s.customer_id,
            "public_status": s.public_status}


@routes.get("/api/v1/services", roles=ALL_ROLES)
async def list_services(request: web.Request) -> web.Response:
    stmt = scope(select(Service).order_by(Service.name), request[PRINCIPAL], Service.customer_id)
    async with request.app[DEPS].sessionmaker() as s:
        return json_response([_service(x) for x in (await s.execute(stmt)).scalars().all()])


@routes.get("/api/v1/services/{service_id}", roles=ALL_ROLES)
async def get_service(request: web.Request) -> web.Response:
    sid = int_param(request, "service_id")
    stmt = scope(select(Service).where(Service.id == sid), request[PRINCIPAL], Service.customer_id)
    async with request.app[DEPS].sessionmaker() as s:
        row = (await s.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"service {sid}")
    return json_response(_service(row))


def _monitors_stmt(request: web.Request):
    stmt = (select(Monitor, MonitorState.state, MonitorState.since)
            .outerjoin(MonitorState, MonitorState.monitor_id == Monitor.id)
            .outerjoin(Service, Monitor.service_id == Service.id).order_by(Monitor.name))
    p = request[PRINCIPAL]
    if not p.is_staff:
        # A customer sees only monitors of their own services (never company infrastructure).
        stmt = stmt.where(Monitor.service_id.is_not(None))
    return scope(stmt, p, Service.customer_id)


def _monitor(m: Monitor, state, since) -> dict:
    return {"id": m.id, "name": m.name, "kind": m.kind, "target": m.target, "interval_s": m.interval_s,
            "service_id": m.service_id, "enabled": m.enabled, "state": state or "UNKNOWN",
            "since": since.isoformat() if since else None}


@routes.get("/api/v1/monitors", roles=ALL_ROLES)
async def list_monitors(request: web.Request) -> web.Response:
    async with request.app[DEPS].sessionmaker() as s:
        rows = (await s.execute(_monitors_stmt(request))).all()
    return json_response([_monitor(*r) for r in rows])


@routes.get("/api/v1/monitors/{monitor_id}", roles=ALL_ROLES)
async def get_monitor(request: web.Request) -> web.Response:
    mid = int_param(request, "monitor_id")
    async with request.app[DEPS].sessionmaker() as s:
        row = (await s.execute(_monitors_stmt(request).where(Monitor.id == mid))).first()
    if row is None:
        raise NotFound(f"monitor {mid}")
    return json_response(_monitor(*row))
