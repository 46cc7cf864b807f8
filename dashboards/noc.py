"""The NOC screen's data: every monitor with its live state, searched, filtered, grouped and paginated on the
server, and a feed of state changes for server-sent events.

The inventory part (names, services, customers, datacenters, switches) is read from the database and kept
for ``ttl_s``; the state of each monitor is overlaid from the runner's in-memory latest results, so the first
screen at 10,000 monitors is one cached list and a filter in memory, not a query per request.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased

from monitor.clock import Clock
from monitor.models import Customer, Datacenter, Monitor, MonitorState, NetworkDevice, Server, Service, State

__all__ = ["NocRow", "NocIndex", "NocQuery", "NocPage", "query_rows", "StateFeed", "GROUPS"]

GROUPS = ("datacenter", "switch", "customer", "none")
# Worst first: what needs eyes is at the top of every group.
SEVERITY = {State.DOWN: 0, State.UNREACHABLE: 1, State.DEGRADED: 2, State.UNKNOWN: 3, State.MAINTENANCE: 4,
            State.UP: 5}


@dataclass(frozen=True, slots=True)
class NocRow:
    id: int
    name: str
    kind: str
    target: str
    service: str
    customer: str
    datacenter: str
    switch: str
    state: str
    since: datetime | None

    def json(self) -> dict:
        d = asdict(self)
        d["since"] = self.since.isoformat() if self.since else None
        return d


@dataclass(frozen=True, slots=True)
class NocQuery:
    q: str = ""
    state: str = ""
    group: str = "datacenter"
    page: int = 1
    per_page: int = 200


@dataclass(frozen=True, slots=True)
class NocPage:
    total: int
    page: int
    pages: int
    per_page: int
    counts: dict[str, int]
    groups: list[dict[str, Any]]

    def json(self) -> dict:
        return {"total": self.total, "page": self.page, "pages": self.pages, "per_page": self.per_page,
                "counts": self.counts, "groups": self.groups}


def _matches(row: NocRow, needle: str) -> bool:
    return any(needle in v.lower() for v in (row.name, row.target, row.service, row.customer, row.datacenter,
                                             row.switch))


def query_rows(rows: list[NocRow], q: NocQuery) -> NocPage:
    """Pure: filter by text and state, sort by group then worst state then name, cut one page, group it."""
    needle = q.q.strip().lower()
    found = [r for r in rows if (not needle or _matches(r, needle))]
    counts = collections.Counter(r.state for r in found)
    if q.state:
        found = [r for r in found if r.state == q.state]
    key = (lambda r: getattr(r, q.group)) if q.group in ("datacenter", "switch", "customer") else (lambda r: "")
    found.sort(key=lambda r: (key(r), SEVERITY.get(r.state, 3), r.name))
    per_page = max(1, min(q.per_page, 1000))
    pages = max(1, -(-len(found) // per_page))
    page = max(1, min(q.page, pages))
    groups: dict[str, list[dict]] = {}
    for r in found[(page - 1) * per_page: page * per_page]:
        groups.setdefault(key(r), []).append(r.json())
    return NocPage(len(found), page, pages, per_page, {s.value: counts.get(s.value, 0) for s in State},
                   [{"key": k, "items": v} for k, v in groups.items()])


class NocIndex:
    """The monitors' inventory, cached for ``ttl_s``, with live states from ``latest()``."""

    def __init__(self, sessionmaker: async_sessionmaker, clock: Clock,
                 latest: Callable[[], Mapping[int, Any]] = dict, ttl_s: float = 10.0) -> None:
        self._sm, self._clock, self._latest, self._ttl = sessionmaker, clock, latest, ttl_s
        self._rows: list[NocRow] = []
        self.service_of: dict[int, int] = {}  # monitor id -> service id (the wall links a tile to its incident)
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def rows(self, *, overlay: bool = True) -> list[NocRow]:
        """The inventory; with ``overlay`` each row carries the runner's live state instead of the stored one."""
        async with self._lock:
            mono = self._clock.monotonic()
            if self._loaded_at is None or mono - self._loaded_at >= self._ttl:
                self._rows = await self._load()
                self._loaded_at = mono
        latest = self._latest()
        if not latest or not overlay:
            return self._rows
        return [_overlay(r, latest.get(r.id)) for r in self._rows]

    def invalidate(self) -> None:
        self._loaded_at = None

    async def _load(self) -> list[NocRow]:
        switch, dev, dev_dc, dev_parent = (aliased(NetworkDevice), aliased(NetworkDevice), aliased(Datacenter),
                                           aliased(NetworkDevice))
        stmt = (select(Monitor.id, Monitor.service_id, Monitor.name, Monitor.kind, Monitor.target, Service.name, Customer.name,
                       Datacenter.name, dev_dc.name, switch.name, dev_parent.name, MonitorState.state,
                       MonitorState.since)
                .outerjoin(MonitorState, MonitorState.monitor_id == Monitor.id)
                .outerjoin(Service, Monitor.service_id == Service.id)
                .outerjoin(Customer, Service.customer_id == Customer.id)
                .outerjoin(Server, Monitor.server_id == Server.id)
                .outerjoin(Datacenter, Server.datacenter_id == Datacenter.id)
                .outerjoin(switch, Server.parent_device_id == switch.id)
                .outerjoin(dev, Monitor.device_id == dev.id)
                .outerjoin(dev_dc, dev.datacenter_id == dev_dc.id)
                .outerjoin(dev_parent, dev.parent_id == dev_parent.id)
                .where(Monitor.enabled.is_(True)))
        async with self._sm() as s:
            result = (await s.execute(stmt)).all()
        self.service_of = {r[0]: r[1] for r in result if r[1] is not None}
        return [NocRow(mid, name, kind, target, svc or "", cust or "", dc or ddc or "", sw or dp or "",
                       state or State.UNKNOWN.value, since)
                for mid, _sid, name, kind, target, svc, cust, dc, ddc, sw, dp, state, since in result]


def _overlay(row: NocRow, item) -> NocRow:
    if item is None or str(item.state) == row.state:
        return row
    return replace(row, state=str(item.state))


class StateFeed:
    """State changes of monitors, numbered, for the NOC screen's event stream.

    ``poke()`` compares the runner's latest states with what was last announced and records the differences;
    it reads every monitor, so the runner's ``on_flip`` gets ``nudge()``, which runs one ``poke()`` at most
    every ``coalesce_s`` however many flips arrive (a poke per flip made 10,000 new monitors' first flips
    cost 10,000 x 10,000 comparisons, and starved the loop for a minute: bench/README.md, incidents).
    Readers wait on ``changes_after(seq, timeout)``.
    """

    def __init__(self, latest: Callable[[], Mapping[int, Any]], keep: int = 10_000,
                 coalesce_s: float = 0.2, now: Callable[[], datetime] | None = None) -> None:
        self._latest, self._now = latest, now
        # When the feed saw each monitor's current state (``now`` given): the wall's "since" for a flip the
        # cached inventory has not read from the database yet.
        self.changed_at: dict[int, datetime] = {}
        self._known: dict[int, str] = {}
        self._changes: collections.deque[tuple[int, int, str]] = collections.deque(maxlen=keep)
        self.seq = 0
        self._event = asyncio.Event()
        self._coalesce_s = coalesce_s
        self._nudged: asyncio.TimerHandle | None = None

    def nudge(self) -> None:
        """Poke soon: once for every flip that arrives within ``coalesce_s``."""
        if self._nudged is None:
            self._nudged = asyncio.get_running_loop().call_later(self._coalesce_s, self._poke_nudged)

    def _poke_nudged(self) -> None:
        self._nudged = None
        self.poke()

    def poke(self) -> None:
        changed = False
        at = self._now() if self._now is not None else None
        for mid, item in list(self._latest().items()):
            state = str(item.state)
            if self._known.get(mid) != state:
                self._known[mid] = state
                self.seq += 1
                self._changes.append((self.seq, mid, state))
                if at is not None:
                    self.changed_at[mid] = at
                changed = True
        if changed:
            event, self._event = self._event, asyncio.Event()
            event.set()

    def _since(self, seq: int) -> list[dict]:
        return [{"seq": s, "id": mid, "state": st} for s, mid, st in self._changes if s > seq]

    async def changes_after(self, seq: int, timeout_s: float) -> list[dict]:
        """The changes numbered after ``seq``; waits up to ``timeout_s`` for one when there are none."""
        found = self._since(seq)
        if found:
            return found
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return []
        return self._since(seq)
