"""The probe agents' API: a location's agent fetches what to probe and pushes what it saw.

The credential is the location's token (``Authorization: Bearer ...``, issued with ``negahban location
token NAME``), not a user's: these routes are public to the auth middleware and check the token themselves.
A wrong token and a missing one get the same 401.

* ``GET /api/v1/agent/assignments``: the location's monitors and canaries, with an ``ETag`` (the content's
  version); ``If-None-Match`` with the current version is answered ``304`` with no body.
* ``POST /api/v1/agent/results``: one batch, ``{"agent", "seq", "results": [...], "canaries": [...]}``. A repeat
  of a batch already taken (same agent and seq) is answered ``200`` with ``duplicate: true`` and writes
  nothing. The answer names the monitors the central vote wants re-checked now (accelerated confirmation).
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import unauthorized
from dashboards.web.params import PathId
from dashboards.web.routing import BODY, RouteTable
from dashboards.web.types import Text
from monitor.agents import AgentResult, CanaryResult, Ingest, assignments_for, location_for_token
from monitor.models import Location
from probes import Outcome

__all__ = ["routes", "MAX_RESULTS", "INGEST"]

routes = RouteTable()
MAX_RESULTS = 5000
INGEST = "agent_ingest"
AGENT_ERRORS = {401: "no valid location token", 503: "this node does not run the engine (NEGAHBAN_RUN_SCHEDULER)"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultIn(_Strict):
    monitor_id: PathId
    at: AwareDatetime = Field(description="when the check started, with its UTC offset")
    outcome: Literal["up", "degraded", "down"]
    reason: Text(40) = "ok"
    message: Text(4000) = ""
    latency_s: Annotated[float, Field(ge=0, le=3600)] = 0.0


class CanaryIn(_Strict):
    index: Annotated[int, Field(ge=0, le=100)]
    at: AwareDatetime
    outcome: Literal["up", "degraded", "down"]
    reason: Text(40) = "ok"
    message: Text(4000) = ""
    latency_s: Annotated[float, Field(ge=0, le=3600)] = 0.0


class BatchIn(_Strict):
    agent: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")] = Field(
        description="the agent's id, stable across its restarts (its buffer keeps it)")
    seq: Annotated[int, Field(ge=0, le=2**62)] = Field(description="the batch's sequence number, per agent")
    results: list[ResultIn] = Field([], max_length=MAX_RESULTS)
    canaries: list[CanaryIn] = Field([], max_length=1000)
    buffered: Annotated[int, Field(ge=0, le=2**62)] | None = Field(
        None, description="results still waiting in the agent's buffer after this batch")


class BatchOut(BaseModel):
    duplicate: bool = Field(description="this batch was taken before; nothing was written again")
    accepted: int
    late: int = Field(description="results older than their monitor's confirmation window: counted, not voted")
    ignored: int = Field(description="results for monitors this location does not check")
    rechecks: list[int] = Field(description="monitor ids to check again now")


class AssignmentOut(BaseModel):
    version: str
    location: str
    monitors: list[dict]
    canaries: list[dict]


async def _location(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    async with request.app[DEPS].sessionmaker() as s:
        return await location_for_token(s, header[7:].strip())


def _no_engine() -> web.Response:
    return web.json_response({"error": "unavailable", "field": None, "reason": AGENT_ERRORS[503]}, status=503)


@routes.get("/api/v1/agent/assignments", public=True, response=AssignmentOut, status=(200, 304),
            errors=AGENT_ERRORS)
async def agent_assignments(request: web.Request) -> web.StreamResponse:
    """The monitors and canaries of the token's location; 304 when ``If-None-Match`` holds the version."""
    location = await _location(request)
    if location is None:
        return unauthorized("send the location's token (Authorization: Bearer ...)")
    deps = request.app[DEPS]
    scheduler = deps.services.get("scheduler")
    if scheduler is None:
        return _no_engine()
    async with deps.sessionmaker() as s:
        canaries = (await s.execute(Location.__table__.select().where(Location.name == location))).one().canaries
    ingest: Ingest | None = deps.services.get(INGEST)
    body = (ingest.assignments.get(location, canaries, scheduler.catalog) if ingest is not None
            else assignments_for(location, canaries, scheduler.catalog))
    etag = f'"{body["version"]}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    response = json_response(body)
    response.headers["ETag"] = etag
    return response


@routes.post("/api/v1/agent/results", public=True, body=BatchIn, response=BatchOut, max_body=4 * 1024 * 1024,
             errors=AGENT_ERRORS)
async def agent_results(request: web.Request) -> web.Response:
    """Take one batch of results from the token's location (exactly once per agent and seq)."""
    location = await _location(request)
    if location is None:
        return unauthorized("send the location's token (Authorization: Bearer ...)")
    ingest: Ingest | None = request.app[DEPS].services.get(INGEST)
    if ingest is None:
        return _no_engine()
    b: BatchIn = request[BODY]
    out = await ingest.batch(
        location, b.agent, b.seq,
        [AgentResult(r.monitor_id, r.at, Outcome(r.outcome), r.reason, r.message, r.latency_s) for r in b.results],
        [CanaryResult(c.index, c.at, Outcome(c.outcome), c.reason, c.message, c.latency_s) for c in b.canaries],
        b.buffered)
    return json_response({"duplicate": out.duplicate, "accepted": out.accepted, "late": out.late,
                          "ignored": out.ignored, "rechecks": out.rechecks})

