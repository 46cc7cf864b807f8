"""Inventory and health routes: who am I, services, monitors with their live state."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import PageQuery, ids, page_of, paged
from dashboards.web.routing import PATH, QUERY, RouteTable
from monitor.accounts import ALL_ROLES, STAFF, scope
from monitor.errors import NotFound
from monitor.models import Customer, Monitor, MonitorState, Service

__all__ = ["routes"]

routes = RouteTable()
log = logging.getLogger("negahban.web")
# A readiness probe must answer well inside the balancer's own timeout.
READY_DB_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    started: bool
    database: bool


class Me(BaseModel):
    user_id: int
    username: str
    role: str
    customer_id: int | None


class CustomerOut(BaseModel):
    id: int
    name: str
    display_name: str | None
    verified: bool


class ServiceOut(BaseModel):
    id: int
    name: str
    display_name: str | None
    customer_id: int
    public_status: bool


class MonitorOut(BaseModel):
    id: int
    name: str
    kind: str
    target: str
    interval_s: float
    service_id: int | None
    enabled: bool
    state: str
    since: datetime | None


@routes.get("/healthz", public=True, response=Health)
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def _database_answers(sm, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s), sm() as s:
            await s.execute(text("SELECT 1"))
        return True
    except (TimeoutError, OSError, SQLAlchemyError) as exc:
        log.warning("readyz_database_down error=%s", type(exc).__name__)
        return False


@routes.get("/readyz", public=True, response=Readiness, status=(200, 503))
async def readyz(request: web.Request) -> web.Response:
    """Ready when the service has started and the database answers: a load balancer stops sending work to
    an instance whose database is gone."""
    deps = request.app[DEPS]
    started = deps.ready.get("ready", False)
    database = started and await _database_answers(deps.sessionmaker, READY_DB_TIMEOUT_S)
    return json_response({"ready": database, "started": started, "database": database},
                         status=200 if database else 503)


@routes.get("/api/v1/me", roles=ALL_ROLES, response=Me)
async def me(request: web.Request) -> web.Response:
    """The caller: user, role and (for a customer) the customer."""
    p = request[PRINCIPAL]
    return json_response({"user_id": p.user_id, "username": p.username, "role": p.role, "customer_id": p.customer_id})


@routes.get("/api/v1/customers", roles=STAFF, query=PageQuery, response=list[CustomerOut], paginated=True)
async def list_customers(request: web.Request) -> web.Response:
    """Customers by name."""
    q = request[QUERY]
    async with request.app[DEPS].sessionmaker() as s:
        rows = (await s.execute(paged(select(Customer).order_by(Customer.name, Customer.id), q))).scalars().all()
    return page_of(request, list(rows), q, lambda c: {"id": c.id, "name": c.name, "display_name": c.display_name,
                                                      "verified": c.verified})


def _service(s: Service) -> dict:
    return {"id": s.id, "name": s.name, "display_name": s.display_name, "customer_id": s.customer_id,
            "public_status": s.public_status}


@routes.get("/api/v1/services", roles=ALL_ROLES, query=PageQuery, response=list[ServiceOut], paginated=True)
async def list_services(request: web.Request) -> web.Response:
    """Services by name (a customer's own only)."""
    q = request[QUERY]
    stmt = scope(select(Service).order_by(Service.name, Service.id), request[PRINCIPAL], Service.customer_id)
    async with request.app[DEPS].sessionmaker() as s:
        return page_of(request, list((await s.execute(paged(stmt, q))).scalars().all()), q, _service)


@routes.get("/api/v1/services/{service_id}", roles=ALL_ROLES, path=ids("service_id"), response=ServiceOut)
async def get_service(request: web.Request) -> web.Response:
    """One service."""
    sid = request[PATH].service_id
    stmt = scope(select(Service).where(Service.id == sid), request[PRINCIPAL], Service.customer_id)
    async with request.app[DEPS].sessionmaker() as s:
        row = (await s.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"service {sid}")
    return json_response(_service(row))


def _monitors_stmt(request: web.Request):
    stmt = (select(Monitor, MonitorState.state, MonitorState.since)
            .outerjoin(MonitorState, MonitorState.monitor_id == Monitor.id)
            .outerjoin(Service, Monitor.service_id == Service.id).order_by(Monitor.name, Monitor.id))
    p = request[PRINCIPAL]
    if not p.is_staff:
        # A customer sees only monitors of their own services (never company infrastructure).
        stmt = stmt.where(Monitor.service_id.is_not(None))
    return scope(stmt, p, Service.customer_id)


def _monitor(m: Monitor, state, since) -> dict:
    return {"id": m.id, "name": m.name, "kind": m.kind, "target": m.target, "interval_s": m.interval_s,
            "service_id": m.service_id, "enabled": m.enabled, "state": state or "UNKNOWN",
            "since": since.isoformat() if since else None}


@routes.get("/api/v1/monitors", roles=ALL_ROLES, query=PageQuery, response=list[MonitorOut], paginated=True)
async def list_monitors(request: web.Request) -> web.Response:
    """Monitors with their live state (a customer's own services' only)."""
    q = request[QUERY]
    async with request.app[DEPS].sessionmaker() as s:
        rows = (await s.execute(paged(_monitors_stmt(request), q))).all()
    return page_of(request, list(rows), q, lambda r: _monitor(*r))


@routes.get("/api/v1/monitors/{monitor_id}", roles=ALL_ROLES, path=ids("monitor_id"), response=MonitorOut)
async def get_monitor(request: web.Request) -> web.Response:
    """One monitor with its live state."""
    mid = request[PATH].monitor_id
    async with request.app[DEPS].sessionmaker() as s:
        row = (await s.execute(_monitors_stmt(request).where(Monitor.id == mid))).first()
    if row is None:
        raise NotFound(f"monitor {mid}")
    return json_response(_monitor(*row))
