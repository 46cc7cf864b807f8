"""Incident routes: the Alertmanager receiver, and incidents for the NOC (and, scoped, for customers).

Thin: parse, call ``incidents``, answer. The rules live in ``incidents.alertmanager`` and
``incidents.lifecycle``. Collaborators come from ``WebDeps.services``: ``alertmanager`` (an
``AlertmanagerConfig``) and ``incidents_changed`` (a callable that wakes the next stages).
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from pydantic import BaseModel, Field

from dashboards.web.body import int_param, json_response, read_body, read_model
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.routing import RouteTable
from dashboards.web.types import RowId
from incidents.alertmanager import AlertmanagerConfig, receive
from incidents.lifecycle import (
    OPERATORS,
    acknowledge,
    add_note,
    assign,
    get_incident,
    list_incidents,
    resolve,
)
from incidents.models import Incident
from monitor.accounts import ALL_ROLES, Role

__all__ = ["routes", "incident_json"]

routes = RouteTable()

# A group of 1,000 alerts with long annotations is about 1 MB; Alertmanager gives up on a refused group.
ALERTMANAGER_MAX_BODY = 16 * 1024 * 1024

# Alertmanager authenticates with a bearer token of a NOC (or admin) service account (http_config).
RECEIVER_ROLES = frozenset({Role.ADMIN, Role.NOC})


def _changed(request: web.Request) -> None:
    wake = request.app[DEPS].services.get("incidents_changed")
    if wake is not None:
        wake()


@routes.post("/api/v1/alertmanager", roles=RECEIVER_ROLES)
async def alertmanager_webhook(request: web.Request) -> web.Response:
    raw = await read_body(request, ALERTMANAGER_MAX_BODY)
    deps = request.app[DEPS]
    config = deps.services.get("alertmanager") or AlertmanagerConfig()
    result = await receive(deps.sessionmaker, raw, deps.clock.now(), config,
                           deps.services.get("worker_failures"))
    _changed(request)
    return json_response(asdict(result))


def incident_json(i: Incident) -> dict:
    return {
        "id": i.id, "title": i.title, "severity": i.severity, "status": i.status, "source": i.source,
        "service_id": i.service_id, "customer_id": i.customer_id, "opened_at": i.opened_at,
        "acknowledged_at": i.acknowledged_at, "acknowledged_by": i.acknowledged_by, "assigned_to": i.assigned_to,
        "resolved_at": i.resolved_at, "duration_s": i.duration_s, "flap_count": i.flap_count,
        "previous_incident_id": i.previous_incident_id,
    }


@routes.get("/api/v1/incidents", roles=ALL_ROLES)
async def incidents_list(request: web.Request) -> web.Response:
    open_only = request.query.get("all") not in ("1", "true")
    rows = await list_incidents(request.app[DEPS].sessionmaker, request[PRINCIPAL], open_only=open_only)
    return json_response([incident_json(i) for i in rows])


@routes.get("/api/v1/incidents/{incident_id}", roles=ALL_ROLES)
async def incident_detail(request: web.Request) -> web.Response:
    view = await get_incident(request.app[DEPS].sessionmaker, request[PRINCIPAL],
                              int_param(request, "incident_id"))
    return json_response({
        **incident_json(view.incident),
        "timeline": [{"at": e.at, "kind": e.kind, "text": e.text, "user_id": e.user_id} for e in view.events],
        "affected": [{"monitor_id": a.monitor_id, "server_id": a.server_id, "service_id": a.service_id,
                      "customer_id": a.customer_id} for a in view.affected],
    })


@routes.post("/api/v1/incidents/{incident_id}/acknowledge", roles=OPERATORS)
async def incident_acknowledge(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    i = await acknowledge(deps.sessionmaker, request[PRINCIPAL], int_param(request, "incident_id"),
                          deps.clock.now())
    return json_response(incident_json(i))


class AssignBody(BaseModel):
    user_id: RowId


class NoteBody(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


@routes.post("/api/v1/incidents/{incident_id}/assign", roles=OPERATORS)
async def incident_assign(request: web.Request) -> web.Response:
    deps, body = request.app[DEPS], await read_model(request, AssignBody)
    i = await assign(deps.sessionmaker, request[PRINCIPAL], int_param(request, "incident_id"), body.user_id,
                     deps.clock.now())
    return json_response(incident_json(i))


@routes.post("/api/v1/incidents/{incident_id}/notes", roles=OPERATORS)
async def incident_note(request: web.Request) -> web.Response:
    deps, body = request.app[DEPS], await read_model(request, NoteBody)
    await add_note(deps.sessionmaker, request[PRINCIPAL], int_param(request, "incident_id"), body.text,
                   deps.clock.now())
    return json_response({"ok": True}, status=201)


@routes.post("/api/v1/incidents/{incident_id}/resolve", roles=OPERATORS)
async def incident_resolve(request: web.Request) -> web.Response:
    deps, body = request.app[DEPS], await read_model(request, NoteBody)
    i = await resolve(deps.sessionmaker, request[PRINCIPAL], int_param(request, "incident_id"),
                      deps.clock.now(), body.text)
    _changed(request)
    return json_response(incident_json(i))
