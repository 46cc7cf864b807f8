"""The NOC screen: the wall page and its live fragment, the paginated monitor list, and the live state-change
stream (SSE)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from dashboards.noc import GROUPS, NocIndex, NocQuery, StateFeed, query_rows
from dashboards.noc_wall import build_wall, open_incidents, paused_count
from dashboards.web.body import json_response
from dashboards.web.deps import DEPS, WebDeps
from dashboards.web.fa import PRIORITY_FA, STATE_FA
from dashboards.web.html import TEHRAN
from dashboards.web.incident_pages import STATUS_WORDS
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import PageQuery, Params, page_of, sliced
from dashboards.web.routing import HTML, QUERY, RouteTable
from dashboards.web.templating import render
from incidents.models import NotificationChannel
from monitor.accounts import STAFF
from monitor.models import State
from tickets.desk import queue as desk_queue

__all__ = ["routes", "noc_index", "state_feed", "close_streams", "STREAMS"]

log = logging.getLogger("negahban.web.noc")
routes = RouteTable()
HEARTBEAT_S = 15.0
# The open event streams, ended at shutdown: otherwise the server would wait for each screen to go away.
STREAMS = web.AppKey("negahban_noc_streams", set)


async def close_streams(app: web.Application) -> None:
    """``on_shutdown`` hook: end every open event stream so the server can stop at once."""
    for task in list(app.get(STREAMS, ())):
        task.cancel()


def _latest(deps: WebDeps):
    runner = deps.services.get("runner")
    return (lambda: runner.latest) if runner is not None else dict


def noc_index(deps: WebDeps) -> NocIndex:
    if "noc_index" not in deps.services:
        deps.services["noc_index"] = NocIndex(deps.sessionmaker, deps.clock, _latest(deps))
    return deps.services["noc_index"]


def state_feed(deps: WebDeps) -> StateFeed:
    if "noc_feed" not in deps.services:
        deps.services["noc_feed"] = StateFeed(_latest(deps), now=deps.clock.now)
    return deps.services["noc_feed"]


class NocMonitorsQuery(Params):
    q: str = Field("", description="search name, target, customer, datacenter, switch (first 200 characters)")
    state: Literal[("", *State.__members__)] = ""  # type: ignore[valid-type]
    group: Literal[GROUPS] = "datacenter"  # type: ignore[valid-type]
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(200, ge=1, le=1000)


@routes.get("/api/v1/noc/monitors", roles=STAFF, query=NocMonitorsQuery)
async def noc_monitors(request: web.Request) -> web.Response:
    """The NOC's monitor list: searched, filtered, grouped and paginated (page, per_page)."""
    q = request[QUERY]
    rows = await noc_index(request.app[DEPS]).rows()
    query = NocQuery(q=q.q[:200], state=q.state, group=q.group, page=q.page, per_page=q.per_page)
    return json_response(query_rows(rows, query).json())


@routes.get("/api/v1/noc/events", roles=STAFF, produces="text/event-stream")
async def noc_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``state`` events with the monitors whose state changed, heartbeats between."""
    feed = state_feed(request.app[DEPS])
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    last = request.headers.get("Last-Event-ID", "")
    # A reconnecting browser resumes after the last change it saw; a new one starts from now.
    seq = int(last) if last.isdigit() else feed.seq
    await resp.write(b": connected\n\n")
    streams = request.app[STREAMS]
    task = asyncio.current_task()
    streams.add(task)
    try:
        while True:
            changes = await feed.changes_after(seq, HEARTBEAT_S)
            if not changes:
                await resp.write(b": heartbeat\n\n")
                continue
            seq = changes[-1]["seq"]
            payload = json.dumps(changes, separators=(",", ":"))
            await resp.write(f"id: {seq}\nevent: state\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, RuntimeError):  # the screen was closed
        return resp
    except asyncio.CancelledError:  # shutdown (close_streams) or the client went away
        return resp
    finally:
        streams.discard(task)


def _noc_ticket(t, now) -> dict:
    return {"id": t.id, "subject": t.subject, "priority": t.priority, "band": t.sla_band, "status": t.status,
            "customer_id": t.customer_id,
            "first_response_due": t.first_response_due.astimezone(TEHRAN).isoformat(),
            "first_response_due_label": t.first_response_due.astimezone(TEHRAN).strftime("%m-%d %H:%M"),
            "answered": t.first_response_at is not None,
            "overdue": t.first_response_at is None and t.first_response_due < now}


@routes.get("/api/v1/noc/tickets", roles=STAFF, query=PageQuery, paginated=True)
async def noc_tickets(request: web.Request) -> web.Response:
    """The desk's queue as the NOC sees it: awaiting a first response first, by first-response due time."""
    deps, q = request.app[DEPS], request[QUERY]
    now = deps.clock.now()
    tickets = await desk_queue(deps.sessionmaker, request[PRINCIPAL])
    return page_of(request, sliced(list(tickets), q), q, lambda t: _noc_ticket(t, now))


async def _disabled_channels(deps: WebDeps) -> list:
    """Channels a permanent delivery failure switched off: nobody hears through them until someone fixes
    the key or address (and the setting re-enables them), so the screen says so in red."""
    async with deps.sessionmaker() as session:
        return list((await session.execute(select(NotificationChannel).where(NotificationChannel.enabled.is_(False))
                                           .order_by(NotificationChannel.name))).scalars().all())


class NocPageQuery(Params):
    q: str = Field("", description="search name, target, customer, datacenter, switch (first 200 characters)")
    state: Literal[("", *State.__members__)] = ""  # type: ignore[valid-type]
    group: Literal[GROUPS] = "datacenter"  # type: ignore[valid-type]
    page: int = Field(1, ge=1, le=1_000_000)


async def _wall_context(request: web.Request) -> dict:
    deps, q = request.app[DEPS], request[QUERY]
    index = noc_index(deps)
    rows = await index.rows(overlay=False)
    query = NocQuery(q=q.q[:200], state=q.state, group=q.group, page=q.page, per_page=200)
    live = _latest(deps)()
    wall = build_wall(rows, live, await open_incidents(deps.sessionmaker), query, deps.clock.now(),
                      changed_at=state_feed(deps).changed_at, service_ids=index.service_of)
    keep = urlencode({k: v for k, v in (("q", query.q), ("state", query.state), ("group", query.group)) if v
                      and not (k == "group" and v == "datacenter")})
    return {"wall": wall, "query": query, "base_query": keep + "&" if keep else "", "states": list(State.__members__),
            "groups": GROUPS, "state_fa": STATE_FA, "priority_fa": PRIORITY_FA, "status_words": STATUS_WORDS,
            "paused": await paused_count(deps.sessionmaker), "wall_query": keep}


@routes.get("/noc", roles=STAFF, query=NocPageQuery, produces=HTML)
async def noc_page(request: web.Request) -> web.Response:
    """The NOC wall screen: the summary strip, problems first, every other monitor counted per group; works
    without JavaScript (the search is a form), kept live by the event stream where JavaScript runs."""
    ctx = await _wall_context(request)
    ctx["disabled"] = await _disabled_channels(request.app[DEPS])
    return render(request, "noc.html", ctx, title="NOC")


@routes.get("/noc/wall", roles=STAFF, query=NocPageQuery, produces=HTML)
async def noc_wall(request: web.Request) -> web.Response:
    """The wall's live part alone (summary, incidents, tiles, groups), for the screen to swap in after a
    state change arrives on the event stream."""
    return render(request, "noc_wall.html", await _wall_context(request))
