"""The staff monitor pages: ``/monitors`` (every monitor with its state, filtered by state and kind, paged)
and ``/monitors/{id}`` (what it is and belongs to, its state and latest check, uptime over 24 h / 7 d / 30 d,
its last 50 flips, its open incident, its parents and, when it is checked from several locations, each
location's latest check). Read only: the facts are :func:`dashboards.monitor_view.monitor_page`'s.

A bad filter is a 400 page naming the field and the value (as on the desk), not the generic error page.
"""

from __future__ import annotations

import math
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web
from pydantic import Field

from dashboards.monitor_view import monitor_list, monitor_page
from dashboards.web.deps import DEPS
from dashboards.web.fa import STATE_FA
from dashboards.web.params import Params, ids
from dashboards.web.routing import HTML, PATH, RouteTable, parse_query
from dashboards.web.templating import N_, render
from incidents.lifecycle import OPERATORS
from monitor.errors import InvalidInput
from monitor.models import State
from probes import SPECS

__all__ = ["routes", "MonitorListQuery", "MONITOR_ROLES"]

routes = RouteTable()
MONITOR = ids("monitor_id")
MONITOR_ROLES = OPERATORS  # noc, technician, admin
PER_PAGE = 50
KINDS = tuple(sorted(SPECS))

UPTIME_WORDS = {"24h": N_("Last 24 hours"), "7d": N_("Last 7 days"), "30d": N_("Last 30 days")}
OUTCOME_WORDS = {"up": N_("Up"), "degraded": N_("Degraded"), "down": N_("Down")}
FILTER_FIELDS = {"state": N_("State filter"), "kind": N_("Kind filter"), "page": N_("Page")}


class MonitorListQuery(Params):
    state: Literal[("", *State.__members__)] = ""  # type: ignore[valid-type]
    kind: Literal[("", *KINDS)] = ""  # type: ignore[valid-type]
    page: int = Field(1, ge=1, le=1_000_000)


def _bad_filter(request: web.Request, bad: InvalidInput) -> web.Response:
    return render(request, "bad_filter.html", {
        "field": bad.field, "field_word": FILTER_FIELDS.get(bad.field, bad.field),
        "value": request.query.get(bad.field, ""), "back": "/monitors"}, status=400, title=N_("Bad filter"))


@routes.get("/monitors", roles=MONITOR_ROLES, produces=HTML, errors={400: ("a bad filter, named", HTML)})
async def monitors_page(request: web.Request) -> web.Response:
    """Every monitor by name with its state now; ``state`` and ``kind`` filter, ``page`` pages (50 a page)."""
    try:
        q = parse_query(MonitorListQuery, request.query)
    except InvalidInput as bad:
        return _bad_filter(request, bad)
    deps = request.app[DEPS]
    rows = await monitor_list(deps.sessionmaker, deps.services, state=q.state, kind=q.kind)
    pages = max(1, math.ceil(len(rows) / PER_PAGE))
    filters = {k: v for k, v in (("state", q.state), ("kind", q.kind)) if v}
    return render(request, "monitors.html", {
        "rows": rows[(q.page - 1) * PER_PAGE:q.page * PER_PAGE], "total": len(rows), "page": q.page,
        "pages": pages, "filters": filters, "base_query": urlencode(filters) + "&" if filters else "",
        "states": list(State.__members__), "kinds": KINDS, "state_fa": STATE_FA,
    }, title=N_("Monitors"))


@routes.get("/monitors/{monitor_id}", roles=MONITOR_ROLES, path=MONITOR, produces=HTML,
            errors={404: "no such monitor"})
async def monitor_detail_page(request: web.Request) -> web.Response:
    """One monitor: state, latest check, uptime, flips, open incident, parents, locations."""
    deps = request.app[DEPS]
    page = await monitor_page(deps.sessionmaker, deps.services, request[PATH].monitor_id, deps.clock.now())
    return render(request, "monitor.html", {
        "p": page, "m": page.monitor, "state_fa": STATE_FA, "uptime_words": UPTIME_WORDS,
        "outcome_words": OUTCOME_WORDS,
    }, title=page.monitor.name)
