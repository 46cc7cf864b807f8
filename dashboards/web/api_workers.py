"""The items background loops failed on, for the NOC: ``GET /api/v1/worker-failures``.

Three places hold them (see ``monitor.work``): a flip's ``error`` (the incident engine), an incident's
``desk_error`` (the desk's auto-ticketing) and ``worker_item_failures`` (every worker whose items have no error
column of their own). A notice that failed carries its ``last_error`` and has the outbox screens of its own.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select

from dashboards.web.deps import DEPS
from dashboards.web.params import PageQuery, page_of, sliced
from dashboards.web.routing import QUERY, RouteTable
from incidents.models import Incident
from monitor.accounts import STAFF
from monitor.models import Flip, WorkerItemFailure
from monitor.work import MAX_ITEM_ATTEMPTS

__all__ = ["routes"]

routes = RouteTable()


class WorkerFailureOut(BaseModel):
    worker: str = Field(description="the loop's worker label, as in negahban_worker_item_failures_total")
    item: str = Field(description="what failed, e.g. monitor:12, incident:7, flip:40, table:rollups_fine")
    attempts: int
    error: str
    last_failed_at: datetime | None
    set_aside: bool = Field(description="given up on: no loop tries it again until a person deals with it")


class WorkerFailuresQuery(PageQuery):
    set_aside: bool = Field(False, description="only the items given up on (default: also those being retried)")


async def _failures(sessionmaker) -> list[dict]:
    async with sessionmaker() as s:
        ledger = (await s.execute(select(WorkerItemFailure))).scalars().all()
        flips = (await s.execute(select(Flip).where(Flip.error.is_not(None)))).scalars().all()
        desk = (await s.execute(select(Incident).where(Incident.desk_error.is_not(None)))).scalars().all()
    rows = [{"worker": r.worker, "item": r.item, "attempts": r.attempts, "error": r.error,
             "last_failed_at": r.last_failed_at, "set_aside": r.gave_up_at is not None} for r in ledger]
    rows += [{"worker": "incident_engine", "item": f"flip:{f.id}", "attempts": f.attempts, "error": f.error,
              "last_failed_at": f.failed_at, "set_aside": f.processed_at is not None} for f in flips]
    rows += [{"worker": "auto_ticketing", "item": f"incident:{i.id}", "attempts": i.desk_attempts,
              "error": i.desk_error, "last_failed_at": None, "set_aside": i.desk_attempts >= MAX_ITEM_ATTEMPTS}
             for i in desk]
    return rows


@routes.get("/api/v1/worker-failures", roles=STAFF, query=WorkerFailuresQuery, response=list[WorkerFailureOut],
            paginated=True)
async def worker_failures(request: web.Request) -> web.Response:
    """Items the background loops failed on, the set-aside ones first, then by worker and item."""
    q = request[QUERY]
    rows = [r for r in await _failures(request.app[DEPS].sessionmaker) if r["set_aside"] or not q.set_aside]
    rows.sort(key=lambda r: (not r["set_aside"], r["worker"], r["item"]))
    return page_of(request, sliced(rows, q), q)
