"""Incident routes: the Alertmanager receiver, and incidents for the NOC (and, scoped, for customers).

Thin: parse, call ``incidents``, answer. The rules live in ``incidents.alertmanager`` and
``incidents.lifecycle``. Collaborators come from ``WebDeps.services``: ``alertmanager`` (an
``AlertmanagerConfig``) and ``incidents_changed`` (a callable that wakes the next stages).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import PageQuery, ids, page_of, sliced
from dashboards.web.portal_sections import SEVERITY_FA, SHARED_FA
from dashboards.web.routing import BODY, PATH, QUERY, RouteTable
from dashboards.web.types import RowId
from incidents.alertmanager import AlertmanagerConfig, WebhookPayload, receive
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
from monitor.accounts import ALL_ROLES, Principal, Role

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


class ReceiveOut(BaseModel):
    opened: int
    updated: int
    resolved: int
    ignored: int
    own: int
    failed: int


@routes.post("/api/v1/alertmanager", roles=RECEIVER_ROLES, body=WebhookPayload, max_body=ALERTMANAGER_MAX_BODY,
             response=ReceiveOut)
async def alertmanager_webhook(request: web.Request) -> web.Response:
    """Alertmanager's webhook receiver (a group of alerts opens, updates or resolves incidents)."""
    deps = request.app[DEPS]
    config = deps.services.get("alertmanager") or AlertmanagerConfig()
    result = await receive(deps.sessionmaker, request[BODY], deps.clock.now(), config,
                           deps.services.get("worker_failures"))
    _changed(request)
    return json_response(asdict(result))


def customer_title(i: Incident, principal: Principal) -> str:
    """What a customer reads as an incident's title: what they lived through, never our monitor or device
    names nor reason codes (rule 4): "قطعی سرویس" for their own, "قطعی شبکه" for a shared outage."""
    severity = getattr(i.severity, "value", i.severity)
    if i.service_id is None or i.customer_id not in (None, principal.customer_id):  # a device's, shared
        return SHARED_FA.get(severity, SHARED_FA["important"])
    return f"{SEVERITY_FA.get(severity, SEVERITY_FA['important'])} سرویس"


def incident_json(i: Incident, principal: Principal | None = None) -> dict:
    staff = principal is None or principal.is_staff
    title = i.title if staff else customer_title(i, principal)
    return {
        "id": i.id, "title": title, "severity": i.severity, "status": i.status, "source": i.source,
        "service_id": i.service_id, "customer_id": i.customer_id, "opened_at": i.opened_at,
        "acknowledged_at": i.acknowledged_at, "acknowledged_by": i.acknowledged_by, "assigned_to": i.assigned_to,
        "resolved_at": i.resolved_at, "duration_s": i.duration_s, "flap_count": i.flap_count,
        "previous_incident_id": i.previous_incident_id,
        # Internal location names: staff only (customers never see where we watch from).
        "locations": list(i.locations or []) if staff else [],
    }


class IncidentOut(BaseModel):
    id: int
    title: str
    severity: str
    status: str
    source: str
    service_id: int | None
    customer_id: int | None
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    assigned_to: int | None
    resolved_at: datetime | None
    duration_s: float | None
    flap_count: int
    previous_incident_id: int | None
    locations: list[str] = Field([], description="the locations that saw the failure while the incident was "
                                 "open, in the order they did (staff only; empty for customers)")


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    text: str | None
    user_id: int | None


class AffectedOut(BaseModel):
    monitor_id: int | None
    server_id: int | None
    service_id: int | None
    customer_id: int | None


class IncidentDetail(IncidentOut):
    timeline: list[TimelineOut]
    affected: list[AffectedOut]


class IncidentsQuery(PageQuery):
    all: bool = Field(False, description="also resolved incidents (default: open ones only)")


INCIDENT = ids("incident_id")


@routes.get("/api/v1/incidents", roles=ALL_ROLES, query=IncidentsQuery, response=list[IncidentOut],
            paginated=True)
async def incidents_list(request: web.Request) -> web.Response:
    """Incidents, newest first (a customer's own only)."""
    q = request[QUERY]
    rows = await list_incidents(request.app[DEPS].sessionmaker, request[PRINCIPAL], open_only=not q.all)
    principal = request[PRINCIPAL]
    return page_of(request, sliced(list(rows), q), q, lambda i: incident_json(i, principal))


@routes.get("/api/v1/incidents/{incident_id}", roles=ALL_ROLES, path=INCIDENT, response=IncidentDetail)
async def incident_detail(request: web.Request) -> web.Response:
    """One incident with its timeline and what it affects."""
    view = await get_incident(request.app[DEPS].sessionmaker, request[PRINCIPAL], request[PATH].incident_id)
    return json_response({
        **incident_json(view.incident, request[PRINCIPAL]),
        "timeline": [{"at": e.at, "kind": e.kind, "text": e.text, "user_id": e.user_id} for e in view.events],
        "affected": [{"monitor_id": a.monitor_id, "server_id": a.server_id, "service_id": a.service_id,
                      "customer_id": a.customer_id} for a in view.affected],
    })


@routes.post("/api/v1/incidents/{incident_id}/acknowledge", roles=OPERATORS, path=INCIDENT,
             response=IncidentOut)
async def incident_acknowledge(request: web.Request) -> web.Response:
    """Acknowledge: someone is on it."""
    deps = request.app[DEPS]
    i = await acknowledge(deps.sessionmaker, request[PRINCIPAL], request[PATH].incident_id, deps.clock.now())
    return json_response(incident_json(i))


class AssignBody(BaseModel):
    user_id: RowId


class NoteBody(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


@routes.post("/api/v1/incidents/{incident_id}/assign", roles=OPERATORS, path=INCIDENT, body=AssignBody,
             response=IncidentOut)
async def incident_assign(request: web.Request) -> web.Response:
    """Assign the incident to a staff member."""
    deps, body = request.app[DEPS], request[BODY]
    i = await assign(deps.sessionmaker, request[PRINCIPAL], request[PATH].incident_id, body.user_id,
                     deps.clock.now())
    return json_response(incident_json(i))


class Ok(BaseModel):
    ok: bool


@routes.post("/api/v1/incidents/{incident_id}/notes", roles=OPERATORS, path=INCIDENT, body=NoteBody,
             response=Ok, status=201)
async def incident_note(request: web.Request) -> web.Response:
    """Add a note to the incident's timeline."""
    deps, body = request.app[DEPS], request[BODY]
    await add_note(deps.sessionmaker, request[PRINCIPAL], request[PATH].incident_id, body.text, deps.clock.now())
    return json_response({"ok": True}, status=201)


@routes.post("/api/v1/incidents/{incident_id}/resolve", roles=OPERATORS, path=INCIDENT, body=NoteBody,
             response=IncidentOut)
async def incident_resolve(request: web.Request) -> web.Response:
    """Resolve the incident, with a note saying why."""
    deps, body = request.app[DEPS], request[BODY]
    i = await resolve(deps.sessionmaker, request[PRINCIPAL], request[PATH].incident_id, deps.clock.now(),
                      body.text)
    _changed(request)
    return json_response(incident_json(i))
