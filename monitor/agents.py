"""The central side of the probe agents: a location's token, the assignments it fetches, the batches it pushes.

* A location's token is 192 random bits; only its SHA-256 is stored (``locations.token_sha256``), as for API
  and ping tokens. ``issue_location_token`` replaces it (the old one stops working at once).
* ``assignments_for`` is what an agent of one location probes: every enabled monitor that lists the location,
  with its spec, interval and timeout, plus the location's canaries. Its ``version`` is a digest of that
  content, so an agent that already holds it is answered ``304`` and costs one hash.
* ``Ingest.batch`` takes one batch. Delivery is at least once from the agent and exactly once here: the batch
  row's unique (location, agent, seq) is inserted in the same transaction as the batch's results, so a repeat
  fails its insert and writes nothing (no read-then-write race between two deliveries of the same batch). The
  results are then handed to the runner oldest first: each fills uptime; one that arrives older than its
  monitor's confirmation window (``monitor.locations.window_s``) is *late* and is never voted on, so an agent
  emptying a day's buffer never pages anyone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.catalog import MonitorConfig
from monitor.clock import Clock, utc
from monitor.errors import InvalidInput, NotFound
from monitor.evaluate import classify
from monitor.locations import window_s
from monitor.models import AgentBatch, Location, LocationResult, State
from monitor.runner import Runner, located_row
from monitor.selfcheck import parse_canary
from probes import Outcome, ProbeResult

__all__ = ["issue_location_token", "location_for_token", "token_digest", "assignments_for", "AssignmentCache",
           "Ingest",
           "AgentResult", "CanaryResult", "BatchOutcome", "MAX_FUTURE_S"]

log = logging.getLogger("negahban.agents")
TOKEN_BYTES = 24
# An agent's clock may run a little ahead of ours; a result further in the future than this is refused.
MAX_FUTURE_S = 120.0


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def issue_location_token(session: AsyncSession, name: str, now: datetime) -> str:
    """A new token for location ``name`` (returned in clear, the only time it is seen)."""
    row = (await session.execute(select(Location).where(Location.name == name))).scalar_one_or_none()
    if row is None:
        known = (await session.execute(select(Location.name).order_by(Location.name))).scalars().all()
        raise NotFound(f"location {name!r} (known: {', '.join(known) or 'none; add locations: to the inventory'})")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row.token_sha256, row.token_issued_at, row.updated_at = token_digest(token), now, now
    await session.flush()
    return token


async def location_for_token(session: AsyncSession, token: str) -> str | None:
    """The name of the location holding ``token``, or None."""
    if not token or len(token) > 200:
        return None
    return (await session.execute(select(Location.name).where(Location.token_sha256 == token_digest(token)))
            ).scalar_one_or_none()


def _canary_item(index: int, text: str) -> dict:
    kind, target = parse_canary(text)
    return {"index": index, "kind": kind, "target": target}


def assignments_for(location: str, canaries: list[str], catalog: dict[int, MonitorConfig]) -> dict:
    """What an agent of ``location`` probes, with the content's version."""
    monitors = [{"id": cfg.id, "name": cfg.name, "kind": cfg.kind, "interval_s": cfg.interval_s,
                 "spec": cfg.spec.model_dump(mode="json")}
                for cfg in sorted(catalog.values(), key=lambda c: c.id) if location in cfg.locations]
    body = {"location": location, "monitors": monitors,
            "canaries": [_canary_item(i, c) for i, c in enumerate(canaries or [])]}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {"version": digest[:32], **body}


class AssignmentCache:
    """``assignments_for`` once per location and catalog, not once per poll.

    Every agent polls (``If-None-Match``) every ``refresh_every_s``; building the body and its version walks
    the whole catalog (about 0.1-0.2 s of CPU at 10,000 monitors, bench/README.md "Agents"), on the loop, to
    answer 304 almost every time. The scheduler replaces its catalog on a reload and never changes it in
    place, so the same catalog object and the same canaries give the same body."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[dict, tuple[str, ...], dict]] = {}

    def get(self, location: str, canaries: list[str] | None, catalog: dict[int, MonitorConfig]) -> dict:
        key = tuple(canaries or ())
        hit = self._last.get(location)
        if hit is not None and hit[0] is catalog and hit[1] == key:
            return hit[2]
        body = assignments_for(location, list(key), catalog)
        self._last[location] = (catalog, key, body)
        return body


@dataclass(frozen=True, slots=True)
class AgentResult:
    monitor_id: int
    at: datetime
    outcome: Outcome
    reason: str = "ok"
    message: str = ""
    latency_s: float = 0.0

    def probe_result(self) -> ProbeResult:
        return ProbeResult(self.outcome, self.reason, self.message, self.latency_s)


@dataclass(frozen=True, slots=True)
class CanaryResult:
    index: int
    at: datetime
    outcome: Outcome
    reason: str = "ok"
    message: str = ""
    latency_s: float = 0.0


@dataclass(slots=True)
class BatchOutcome:
    duplicate: bool
    accepted: int = 0
    late: int = 0
    ignored: int = 0  # results for monitors this location does not (or no longer) check
    rechecks: list[int] = field(default_factory=list)


class Ingest:
    """Takes the agents' batches into the runner (see the module's docstring)."""

    def __init__(self, sessionmaker: async_sessionmaker, runner: Runner, clock: Clock,
                 catalog, registry: CollectorRegistry | None = None, node: str | None = None,
                 owns: Callable[[int], bool] = lambda _: True) -> None:
        self._sm = sessionmaker
        self._runner = runner
        self._clock = clock
        self._catalog = catalog  # () -> {monitor id: MonitorConfig}
        # Several nodes: this node's name and which monitors it holds. A result for another node's monitor is
        # stored and counted here; its holder votes it from the table (``inbox``).
        self.node = node
        self._owns = owns
        self._watermark: int | None = None
        self.assignments = AssignmentCache()
        self._m_results = Counter("negahban_location_results_received", "Results received from agents, by "
                                  "location and whether they were late", ["location", "late"], registry=registry)
        self._m_batches = Counter("negahban_agent_batches_received", "Batches received from agents (duplicate: "
                                  "a repeat of a batch already taken)", ["location", "duplicate"],
                                  registry=registry)
        self._m_lag = Gauge("negahban_location_result_lag_seconds", "Age of the newest result of the last batch "
                            "when it arrived, by location", ["location"], registry=registry)
        self._m_failed = Counter("negahban_location_results_failed", "Results taken but not evaluated (the "
                                 "error is logged; the result is stored and counted in uptime)", ["location"],
                                 registry=registry)
        self._m_buffered = Gauge("negahban_agent_buffered_results", "Results an agent reported still waiting in its "
                                 "buffer when it sent its last batch", ["location", "agent"], registry=registry)
        self._m_seq = Gauge("negahban_agent_last_seq", "Sequence number of the last batch taken from each agent",
                            ["location", "agent"], registry=registry)

    async def batch(self, location: str, agent: str, seq: int, results: list[AgentResult],
                    canaries: list[CanaryResult] = (), buffered: int | None = None) -> BatchOutcome:
        now = self._clock.now()
        horizon = now + timedelta(seconds=MAX_FUTURE_S)
        for i, r in enumerate(results):
            if utc(r.at) > horizon:
                raise InvalidInput(f"results.{i}.at", f"{r.at.isoformat()} is in the future (the agent's clock "
                                   f"is more than {MAX_FUTURE_S:.0f} s ahead of the central service's)")
        catalog = self._catalog()
        mine = [r for r in results if (cfg := catalog.get(r.monitor_id)) is not None and location in cfg.locations]
        mine.sort(key=lambda r: r.at)
        lates = [(now - utc(r.at)).total_seconds() > window_s(catalog[r.monitor_id]) for r in mine]
        try:
            async with self._sm.begin() as s:
                loc_id = (await s.execute(select(Location.id).where(Location.name == location))).scalar_one()
                batch_id = (await s.execute(insert(AgentBatch).values(
                    location_id=loc_id, agent_id=agent, seq=seq, results=len(results), received_at=now,
                    node=self.node).returning(AgentBatch.id))).scalar_one()
                if mine:
                    await s.execute(insert(LocationResult), [
                        located_row(r.monitor_id, location, utc(r.at), r.probe_result(), late, batch_id)
                        for r, late in zip(mine, lates, strict=True)])
        except IntegrityError:
            self._m_batches.labels(location, "true").inc()
            log.info("agent_batch_repeat location=%s agent=%s seq=%s", location, agent, seq)
            return BatchOutcome(True, rechecks=self._runner.board.take_rechecks(location))
        self._m_batches.labels(location, "false").inc()
        self._m_seq.labels(location, agent).set(seq)
        if buffered is not None:
            self._m_buffered.labels(location, agent).set(buffered)
        # The batch is stored: from here one result that cannot be evaluated (a flip that cannot be written)
        # must not cost the others their vote. Its flip is made again by the next check (``Runner._keep``).
        for c in sorted(canaries, key=lambda c: c.at):
            try:
                await self._runner.location_canary(location, c.index,
                                                   ProbeResult(c.outcome, c.reason, c.message, c.latency_s))
            except Exception:
                self._m_failed.labels(location).inc()
                log.exception("location_canary_failed location=%s index=%s", location, c.index)
        # One monitor's results in order; different monitors side by side, so that the flips of one batch
        # (a burst: first checks, a datacenter gone) share the store's group commits instead of one
        # transaction each, awaited one after another (bench/README.md "Agents").
        per_monitor: dict[int, list[tuple[AgentResult, bool]]] = {}
        for r, late in zip(mine, lates, strict=True):
            self._m_results.labels(location, "true" if late else "false").inc()
            if not self._owns(r.monitor_id):
                # Another node holds it: counted in uptime here, voted there (``inbox``).
                cfg = catalog[r.monitor_id]
                self._runner.store.add_check(cfg.id, utc(r.at), classify(r.probe_result(), cfg.thresholds,
                                                                         State.UNKNOWN), r.latency_s)
                continue
            per_monitor.setdefault(r.monitor_id, []).append((r, late))
        if per_monitor:
            await asyncio.gather(*(self._apply(location, catalog[mid], items) for mid, items in per_monitor.items()))
        if mine:
            self._m_lag.labels(location).set(max(0.0, (now - utc(mine[-1].at)).total_seconds()))
        return BatchOutcome(False, len(mine), sum(lates), len(results) - len(mine),
                            self._runner.board.take_rechecks(location))

    async def inbox(self, limit: int = 10_000) -> int:
        """Several nodes: vote the results other nodes took for monitors this node holds (newer than what this
        node has seen; late ones are counted, never voted). Returns how many were voted."""
        if self.node is None:
            return 0
        async with self._sm() as s:
            if self._watermark is None:  # from now on: older news is in the monitors' states already
                self._watermark = (await s.execute(select(func.max(LocationResult.id)))).scalar() or 0
                return 0
            rows = (await s.execute(
                select(LocationResult).join(AgentBatch, AgentBatch.id == LocationResult.batch_id)
                .where(LocationResult.id > self._watermark, LocationResult.late.is_(False),
                       AgentBatch.node.is_distinct_from(self.node))
                .order_by(LocationResult.id).limit(limit))).scalars().all()
        if not rows:
            return 0
        self._watermark = rows[-1].id
        catalog, voted = self._catalog(), 0
        for row in rows:
            cfg = catalog.get(row.monitor_id)
            if cfg is None or not self._owns(row.monitor_id) or row.location not in cfg.locations:
                continue
            try:
                await self._runner.apply_located(
                    cfg, row.location, ProbeResult(Outcome(row.outcome), row.reason, row.message, row.latency_s),
                    utc(row.at), stored=True, count=False)
                voted += 1
            except Exception:
                self._m_failed.labels(row.location).inc()
                log.exception("location_result_failed location=%s monitor=%s", row.location, row.monitor_id)
        return voted

    async def _apply(self, location: str, cfg: MonitorConfig, items: list[tuple[AgentResult, bool]]) -> None:
        for r, _late in items:
            try:
                await self._runner.apply_located(cfg, location, r.probe_result(), utc(r.at), stored=True)
            except Exception:
                self._m_failed.labels(location).inc()
                log.exception("location_result_failed location=%s monitor=%s", location, r.monitor_id)
