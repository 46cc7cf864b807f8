"""Public updates on incidents, as JSON: NOC staff post them (in Persian), the incident's readers list them.

Thin: parse, call ``incidents.statuspage.updates``, answer. Posting an update also queues its notices to the
status page's subscribers (in the same transaction, in ``incidents``).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import ids
from dashboards.web.routing import BODY, PATH, RouteTable
from dashboards.web.types import Text
from incidents.lifecycle import get_incident
from incidents.statuspage.models import PublicUpdate
from incidents.statuspage.updates import MAX_UPDATE_CHARS, PUBLISHERS, STATUS_FA, post_update, updates_for
from monitor.accounts import ALL_ROLES

__all__ = ["routes", "update_json"]

routes = RouteTable()
INCIDENT = ids("incident_id")


class UpdateBody(BaseModel):
    text: Text(MAX_UPDATE_CHARS, 1) = Field(description="what customers read, in Persian")
    status: Text(40) | None = Field(None, description="در حال بررسی / شناسایی شد / در حال پایش / برطرف شد "
                                                      "(or investigating / identified / monitoring / resolved)")


class UpdateOut(BaseModel):
    id: int
    incident_id: int
    at: datetime
    status: str | None
    status_fa: str | None
    text: str


def update_json(u: PublicUpdate) -> dict:
    word = next((fa for key, fa in STATUS_FA.items() if key.value == u.status), None)
    return {"id": u.id, "incident_id": u.incident_id, "at": u.at, "status": u.status, "status_fa": word,
            "text": u.text}


@routes.post("/api/v1/incidents/{incident_id}/updates", roles=PUBLISHERS, path=INCIDENT, body=UpdateBody,
             response=UpdateOut, status=201)
async def incident_update_post(request: web.Request) -> web.Response:
    """Publish an update on the incident to the status page and its subscribers (Persian text only)."""
    deps, body = request.app[DEPS], request[BODY]
    update = await post_update(deps.sessionmaker, request[PRINCIPAL], request[PATH].incident_id, body.text,
                               body.status, deps.clock.now())
    wake = deps.services.get("incidents_changed")
    if wake is not None:
        wake()
    return json_response(update_json(update), status=201)


@routes.get("/api/v1/incidents/{incident_id}/updates", roles=ALL_ROLES, path=INCIDENT, response=list[UpdateOut])
async def incident_updates_list(request: web.Request) -> web.Response:
    """The incident's public updates, newest first (a customer: only on incidents it may see)."""
    sm = request.app[DEPS].sessionmaker
    await get_incident(sm, request[PRINCIPAL], request[PATH].incident_id)
    return json_response([update_json(u) for u in await updates_for(sm, request[PATH].incident_id)])
