"""Shared outages: when the incident of one monitor (a network device's, a server's host check) cut off others.

An incident whose root is another monitor affects a monitor through its server (a server behind the failing
device, listed when the incident opened) or directly (the monitor's own UNREACHABLE flip was absorbed into
it). Such a monitor is *cut off* while the incident's root was confirmed DOWN or UNREACHABLE inside the
incident's life: exactly when the topology makes a child UNREACHABLE (``monitor.topology.CONFIRMED_DOWN``),
so a device that was only DEGRADED cuts nobody off. Alertmanager incidents name no monitor and cut nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.models import Incident, IncidentAffected, Source
from monitor.maintenance import Interval, merge
from monitor.models import Flip, Monitor
from monitor.topology import CONFIRMED_DOWN

__all__ = ["cut_off_intervals"]

_DOWN = {s.value for s in CONFIRMED_DOWN}


async def cut_off_intervals(session: AsyncSession, monitor_ids: Sequence[int], start: datetime, end: datetime,
                            ) -> dict[int, list[Interval]]:
    """Per monitor, the merged spans of [start, end) during which another monitor's incident cut it off
    (an incident still open runs to ``end``); monitors never cut off are left out."""
    if not monitor_ids or end <= start:
        return {}
    on_server = await _monitors_by_server(session, monitor_ids)
    hits = await _incidents_listing(session, monitor_ids, list(on_server), start, end)
    targets: dict[int, set[int]] = {}
    for inc, row in hits:
        victims = on_server.get(row.server_id, []) if row.key.startswith("server:") else [row.monitor_id]
        targets.setdefault(inc.id, set()).update(m for m in victims if m != inc.monitor_id)
    incidents = {inc.id: inc for inc, _ in hits}
    down = await _down_spans(session, {i.monitor_id for i in incidents.values()}, start, end)
    out: dict[int, list[Interval]] = {}
    for iid, victims in targets.items():
        inc = incidents[iid]
        life = (max(start, inc.opened_at), min(end, inc.resolved_at or end))
        spans = [(max(s, life[0]), min(e, life[1])) for s, e in down.get(inc.monitor_id, [])]
        spans = [(s, e) for s, e in spans if s < e]
        for m in victims:
            out.setdefault(m, []).extend(spans)
    return {m: merge(spans) for m, spans in out.items() if spans}


async def _monitors_by_server(session: AsyncSession, monitor_ids: Sequence[int]) -> dict[int, list[int]]:
    rows = await session.execute(select(Monitor.server_id, Monitor.id)
                                 .where(Monitor.id.in_(monitor_ids), Monitor.server_id.is_not(None)))
    out: dict[int, list[int]] = {}
    for server_id, mid in rows:
        out.setdefault(server_id, []).append(mid)
    return out


async def _incidents_listing(session: AsyncSession, monitor_ids: Sequence[int], server_ids: list[int],
                             start: datetime, end: datetime) -> list[tuple[Incident, IncidentAffected]]:
    """Monitor incidents overlapping [start, end) that list one of the monitors or (as a server behind a
    device) one of their servers."""
    listed = IncidentAffected.monitor_id.in_(monitor_ids)
    if server_ids:
        listed = or_(listed, and_(IncidentAffected.key.like("server:%"),
                                  IncidentAffected.server_id.in_(server_ids)))
    stmt = (select(Incident, IncidentAffected).join(IncidentAffected, IncidentAffected.incident_id == Incident.id)
            .where(Incident.source == Source.MONITOR.value, Incident.monitor_id.is_not(None),
                   Incident.opened_at < end, or_(Incident.resolved_at.is_(None), Incident.resolved_at > start),
                   listed))
    return [(inc, row) for inc, row in (await session.execute(stmt)).all()]


async def _down_spans(session: AsyncSession, roots: set[int], start: datetime, end: datetime,
                      ) -> dict[int, list[Interval]]:
    """Per root monitor, the spans of [start, end) its flips put it in DOWN or UNREACHABLE."""
    if not roots:
        return {}
    last_before = (select(Flip.monitor_id, func.max(Flip.id).label("fid"))
                   .where(Flip.monitor_id.in_(roots), Flip.at < start).group_by(Flip.monitor_id).subquery())
    initial = dict((await session.execute(select(Flip.monitor_id, Flip.new_state)
                                          .join(last_before, Flip.id == last_before.c.fid))).all())
    rows = (await session.execute(select(Flip.monitor_id, Flip.at, Flip.new_state)
                                  .where(Flip.monitor_id.in_(roots), Flip.at >= start, Flip.at < end)
                                  .order_by(Flip.at, Flip.id))).all()
    flips: dict[int, list[tuple[datetime, str]]] = {m: [] for m in roots}
    for mid, at, state in rows:
        flips[mid].append((at, state))
    return {m: _spans(initial.get(m) in _DOWN, flips[m], start, end) for m in roots}


def _spans(down_at_start: bool, flips: list[tuple[datetime, str]], start: datetime, end: datetime,
           ) -> list[Interval]:
    out, since = [], start if down_at_start else None
    for at, state in flips:
        if state in _DOWN and since is None:
            since = at
        elif state not in _DOWN and since is not None:
            out.append((since, at))
            since = None
    return out + ([(since, end)] if since is not None else [])
