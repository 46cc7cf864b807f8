"""The NOC wall screen's content: a summary strip, the problems first as tiles, every other monitor folded
into counts per group, and, when the reader searches or filters, the matching monitors as tiles.

``build_wall`` is pure (rows, live states, open incidents and ``now`` in; a :class:`Wall` out), so the page,
its live fragment and the tests share one decision. ``open_incidents`` reads what the tiles link to.

Why fold the UP monitors: at 10,000 monitors a tile each is 10,000 boxes nobody reads from across a room and
a page of a few megabytes; the room needs the few that fail, and a count per datacenter that says the rest
are fine (each count links to the search that lists them).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from dashboards.noc import NocQuery, NocRow
from incidents.history import usernames
from incidents.models import Incident, Status
from monitor.models import Monitor

__all__ = ["Wall", "Tile", "GroupCount", "WallIncident", "build_wall", "open_incidents", "paused_count",
           "PROBLEMS", "SUMMARY"]

# Problems, worst first: an UNREACHABLE child sits behind a failing parent, so it follows the DOWN ones.
PROBLEMS = {"DOWN": 0, "UNREACHABLE": 1, "DEGRADED": 2}
# The summary strip, in reading order. SUSPECT: confirmed UP, but its latest check failed (not confirmed yet).
SUMMARY = ("DOWN", "UNREACHABLE", "DEGRADED", "SUSPECT", "UP", "MAINTENANCE", "UNKNOWN")
URGENCIES = ("urgent", "important", "normal")
TILE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class WallIncident:
    id: int
    title: str
    severity: str
    status: str
    opened_at: datetime
    monitor_id: int | None
    service_id: int | None
    acknowledged_by: str = ""
    assigned_to: str = ""


@dataclass(frozen=True, slots=True)
class Tile:
    id: int
    name: str
    kind: str
    target: str
    state: str
    since: datetime | None
    age_s: float | None
    customer: str
    service: str
    datacenter: str
    reason: str = ""
    message: str = ""
    latency_s: float | None = None
    suspect: bool = False
    incident: WallIncident | None = None


@dataclass(frozen=True, slots=True)
class GroupCount:
    key: str
    total: int
    up: int
    problems: int
    other: int


@dataclass(slots=True)
class Wall:
    counts: dict[str, int]
    urgency: dict[str, int]
    incidents: list[WallIncident]
    problems: list[Tile] = field(default_factory=list)
    more_problems: int = 0
    groups: list[GroupCount] = field(default_factory=list)
    results: list[Tile] | None = None  # search mode: the matching monitors, one page of them
    total: int = 0
    page: int = 1
    pages: int = 1


def _tile(row: NocRow, item: Any, changed_at: Mapping[int, datetime], incident: WallIncident | None,
          now: datetime) -> Tile:
    state, since = row.state, row.since
    result = getattr(item, "result", None)
    if item is not None and str(item.state) != row.state:
        # A live flip the cached inventory has not seen yet: since when the feed saw it.
        state, since = str(item.state), changed_at.get(row.id)
    suspect = state == "UP" and result is not None and str(result.outcome) != "up"
    if state not in PROBLEMS and not suspect:
        incident = None
    return Tile(row.id, row.name, row.kind, row.target, state, since,
                (now - since).total_seconds() if since else None, row.customer, row.service, row.datacenter,
                getattr(result, "reason", "") if result is not None and str(result.outcome) != "up" else "",
                (getattr(result, "message", "") or "")[:160] if result is not None else "",
                getattr(result, "latency_s", None) if result is not None else None, suspect, incident)


def _matches(row: NocRow, needle: str) -> bool:
    return any(needle in v.lower() for v in (row.name, row.target, row.service, row.customer, row.datacenter,
                                             row.switch))


def _live_state(row: NocRow, item: Any) -> tuple[str, bool]:
    """The monitor's state now and whether it is SUSPECT (UP, but its latest check failed)."""
    if item is None:
        return row.state, False
    state = str(item.state)
    result = getattr(item, "result", None)
    return state, state == "UP" and result is not None and str(result.outcome) != "up"


def build_wall(rows: list[NocRow], live: Mapping[int, Any], incidents: list[WallIncident], q: NocQuery,
               now: datetime, *, changed_at: Mapping[int, datetime] | None = None,
               service_ids: Mapping[int, int] | None = None, tile_limit: int = TILE_LIMIT) -> Wall:
    """Pure. ``rows`` is the stored inventory (not overlaid), ``live`` the runner's latest states.

    One pass over the rows counts every monitor; a tile is made only for what is drawn (the problems, or
    the matches of a search): at 10,000 monitors that is the difference between 60 ms and a few."""
    by_monitor = {i.monitor_id: i for i in reversed(incidents) if i.monitor_id}
    by_service = {i.service_id: i for i in reversed(incidents) if i.service_id}
    svc, changed = service_ids or {}, changed_at or {}
    needle = q.q.strip().lower()
    searching = bool(needle or q.state)
    key = q.group if q.group in ("datacenter", "switch", "customer") else None
    counts: collections.Counter = collections.Counter()
    groups: dict[str, list[int]] = {}
    drawn: list[Tile] = []
    for row in rows:
        item = live.get(row.id)
        state, suspect = _live_state(row, item)
        counts["SUSPECT" if suspect else state] += 1
        g = groups.setdefault(getattr(row, key) if key else "", [0, 0, 0, 0])
        g[0] += 1
        g[1 if state == "UP" else 2 if state in PROBLEMS else 3] += 1
        if searching:
            if (q.state and state != q.state) or (needle and not _matches(row, needle)):
                continue
        elif state not in PROBLEMS:
            continue
        incident = by_monitor.get(row.id) or by_service.get(svc.get(row.id))
        drawn.append(_tile(row, item, changed, incident, now))
    wall = Wall({s: counts.get(s, 0) for s in SUMMARY},
                {u: sum(1 for i in incidents if i.severity == u) for u in URGENCIES}, incidents)
    if searching:
        _search(wall, drawn, q)
        return wall
    # Newest flip first within each state: what just broke is what the room is asking about.
    drawn.sort(key=lambda t: (PROBLEMS[t.state], -(t.since.timestamp() if t.since else now.timestamp() + 1),
                              t.name))
    wall.problems, wall.more_problems = drawn[:tile_limit], max(0, len(drawn) - tile_limit)
    # Groups with problems first, then by name.
    wall.groups = [GroupCount(k, *v) for k, v in sorted(groups.items(), key=lambda kv: (-kv[1][2], kv[0]))]
    return wall


def _search(wall: Wall, found: list[Tile], q: NocQuery) -> None:
    found.sort(key=lambda t: (PROBLEMS.get(t.state, 3 if t.state != "UP" else 4), t.name))
    per_page = max(1, min(q.per_page, 1000))
    wall.total = len(found)
    wall.pages = max(1, -(-len(found) // per_page))
    wall.page = max(1, min(q.page, wall.pages))
    wall.results = found[(wall.page - 1) * per_page: wall.page * per_page]


async def open_incidents(sessionmaker: async_sessionmaker, limit: int = 500) -> list[WallIncident]:
    """The open incidents, newest first, with who acknowledged and who has them by name."""
    async with sessionmaker() as s:
        rows = list((await s.execute(select(Incident).where(Incident.status != Status.RESOLVED)
                                     .order_by(Incident.opened_at.desc(), Incident.id.desc())
                                     .limit(limit))).scalars())
        names = await usernames(s, [i.acknowledged_by for i in rows] + [i.assigned_to for i in rows])
    return [WallIncident(i.id, i.title, i.severity, i.status, i.opened_at, i.monitor_id, i.service_id,
                         names.get(i.acknowledged_by, ""), names.get(i.assigned_to, "")) for i in rows]


async def paused_count(sessionmaker: async_sessionmaker) -> int:
    """Monitors switched off (paused): the screen does not list them, it says how many there are."""
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(Monitor).where(Monitor.enabled.is_(False)))
                ).scalar_one()
