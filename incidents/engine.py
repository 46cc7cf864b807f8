"""The incident engine: consumes flips and opens, raises, absorbs into and resolves incidents.

Each flip is claimed with ``UPDATE flips SET processed_at=... WHERE id=... AND processed_at IS NULL`` in the
same transaction that applies it: the row count is 1 for exactly one process, and a crash rolls the claim
back with the change, so several processes can share the work and a restart loses nothing.

A voted monitor's failing locations (``failing_locations``, written by the runner) are claimed the same way,
after the flips: the locations that confirmed a flip are named when its incident opens; one that joins later
(the third of three, after a quorum of two) is added to the open incident, once, with a timeline entry and a
notice to the NOC. A location seen after the recovery began, or for an earlier failure, changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.affected import affected_by_monitor
from incidents.metrics import IncidentMetrics
from incidents.models import Incident, Severity, Source, Status
from incidents.rules import (
    Action,
    Decision,
    OpenView,
    decide,
    dedup_key_for,
    recovery_confirmed,
    severity_for,
)
from incidents.store import (
    absorb,
    add_event,
    find_open,
    name_location,
    open_incident,
    raise_severity,
    resolve_incident,
)
from incidents.wakeloop import run_woken
from monitor.clock import Clock
from monitor.models import FailingLocation, Flip, Monitor, State
from monitor.work import MAX_ITEM_ATTEMPTS, WorkerFailures, error_text, isolate

__all__ = ["EngineConfig", "IncidentEngine", "InMaintenance", "never_in_maintenance"]

log = logging.getLogger("negahban.incidents")

# States that never open an incident; a flip to one matters only to an open incident of its cause.
HARMLESS = (State.UP.value, State.UNKNOWN.value, State.MAINTENANCE.value)

# Whether a monitor is inside a maintenance window at a moment (given the caller's session).
InMaintenance = Callable[[AsyncSession, int, datetime], Awaitable[bool]]


async def never_in_maintenance(session: AsyncSession, monitor_id: int, at: datetime) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class EngineConfig:
    # A recovery is confirmed once the cause stayed up this long; a failure before that is a flap.
    recovery_hold_s: float = 180.0
    batch: int = 500
    # The periodic sweep, for flips written by other processes and for recoveries coming due.
    sweep_interval_s: float = 5.0


class IncidentEngine:
    def __init__(self, sessionmaker: async_sessionmaker, clock: Clock, config: EngineConfig | None = None,
                 in_maintenance: InMaintenance = never_in_maintenance,
                 downstream: Sequence[asyncio.Event] = (), metrics: IncidentMetrics | None = None,
                 failures: WorkerFailures | None = None) -> None:
        self.sessionmaker, self.clock = sessionmaker, clock
        self.failures = failures or WorkerFailures()
        self.config = config or EngineConfig()
        self.in_maintenance = in_maintenance
        # Set by whoever commits flips; the engine sets ``downstream`` after committing incident changes.
        self.wake = asyncio.Event()
        self.downstream = tuple(downstream)
        self.metrics = metrics
        self._stopping = False

    async def process_pending(self) -> int:
        """Apply every unprocessed flip, oldest first. Return how many this process applied."""
        total = await self._skip_harmless()
        failed: set[int] = set()  # a flip that failed in this pass waits for the next one
        while True:
            ids = [i for i in await self._pending_ids(len(failed)) if i not in failed]
            done = 0
            for flip_id in ids:
                if (applied := await self.process_flip(flip_id)) is None:
                    failed.add(flip_id)
                done += bool(applied)
            total += done
            if len(ids) < self.config.batch or done == 0:
                return total + await self.process_locations()

    async def process_locations(self) -> int:
        """Apply every unprocessed failing location, oldest first. Return how many this process applied."""
        total, waiting = 0, set()  # a row that failed or waits for its monitor's flip waits for the next pass
        while True:
            async with self.sessionmaker() as session:
                ids = [i for i in (await session.execute(
                    select(FailingLocation.id).where(FailingLocation.processed_at.is_(None))
                    .order_by(FailingLocation.id).limit(self.config.batch + len(waiting)))).scalars()
                    if i not in waiting]
            done = 0
            for row_id in ids:
                applied = await self.process_location(row_id)
                if not applied:
                    waiting.add(row_id)
                done += bool(applied)
            total += done
            if len(ids) < self.config.batch or done == 0:
                return total

    async def process_location(self, row_id: int) -> bool | None:
        """Claim one failing location and name it on its monitor's open incident (see the module's docstring).
        False if another process had it or a flip of its monitor is still queued (that flip may open the
        incident that names it: it is applied first), None if applying it failed (retried, then set aside)."""
        try:
            async with self.sessionmaker() as session, session.begin():
                now = self.clock.now()
                row = await session.get(FailingLocation, row_id)
                if row is None or row.processed_at is not None or await session.scalar(select(exists().where(
                        Flip.monitor_id == row.monitor_id, Flip.processed_at.is_(None)))):
                    return False
                claimed = await session.execute(
                    update(FailingLocation).where(FailingLocation.id == row_id, FailingLocation.processed_at.is_(None))
                    .values(processed_at=now, attempts=FailingLocation.attempts + 1))
                if claimed.rowcount != 1:
                    return False
                incident = await find_open(session, dedup_key_for(row.monitor_id, None))
                if (incident is not None and incident.monitor_id == row.monitor_id
                        and incident.recovering_since is None and row.since >= incident.opened_at
                        and await name_location(session, incident, row.location, row.at, now, row.message)):
                    log.info("incident_location incident_id=%s location=%s", incident.id, row.location)
        except Exception as exc:
            await self._location_failed(row_id, exc)
            return None
        self._changed()
        return True

    async def _location_failed(self, row_id: int, exc: Exception) -> None:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(FailingLocation, row_id)
            if row is None:
                return
            row.attempts += 1
            row.error = error_text(exc)
            gave_up = row.attempts >= MAX_ITEM_ATTEMPTS
            if gave_up:
                row.processed_at = now
        self.failures.record("incident_engine", f"failing_location:{row_id}", exc, gave_up=gave_up)

    async def _skip_harmless(self) -> int:
        """Claim in one statement the flips that cannot change anything: a move to a non-failing state
        while its cause has no open incident (e.g. every monitor's first UNKNOWN -> UP after a start).
        Without this, a start-up burst of thousands of such flips would queue real failures behind it."""
        key = literal("monitor:") + cast(func.coalesce(Flip.root_monitor_id, Flip.monitor_id), String)
        open_incident = select(Incident.id).where(Incident.open_key == key)
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(
                update(Flip).where(Flip.processed_at.is_(None), Flip.new_state.in_(HARMLESS),
                                   ~exists(open_incident))
                .values(processed_at=self.clock.now(), attempts=Flip.attempts + 1)
                .execution_options(synchronize_session=False))
        return result.rowcount

    async def _pending_ids(self, extra: int = 0) -> list[int]:
        async with self.sessionmaker() as session:
            rows = await session.execute(select(Flip.id).where(Flip.processed_at.is_(None))
                                         .order_by(Flip.at, Flip.id).limit(self.config.batch + extra))
            return list(rows.scalars())

    async def process_flip(self, flip_id: int) -> bool | None:
        """Claim and apply one flip. Return False if another process had it (or it must be retried), None if
        applying it failed: the error is recorded on the flip, which is retried on a later pass and set aside
        after ``MAX_ITEM_ATTEMPTS`` (one poisoned flip must never stop the outages queued behind it)."""
        try:
            async with self.sessionmaker() as session, session.begin():
                now = self.clock.now()
                claimed = await session.execute(
                    update(Flip).where(Flip.id == flip_id, Flip.processed_at.is_(None))
                    .values(processed_at=now, attempts=Flip.attempts + 1))
                if claimed.rowcount != 1:
                    return False
                flip = await session.get(Flip, flip_id)
                await self._apply(session, flip, now)
        except IntegrityError:
            # Another process opened the same cause's incident first; the flip stays unclaimed and is
            # applied to that incident on the next pass.
            log.info("flip_conflict flip_id=%s", flip_id)
            return False
        except Exception as exc:
            await self._failed(flip_id, exc)
            return None
        if self.metrics:
            self.metrics.flip_to_incident.observe(max(0.0, (self.clock.now() - flip.at).total_seconds()))
        self._changed()
        return True

    async def _failed(self, flip_id: int, exc: Exception) -> None:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            flip = await session.get(Flip, flip_id)
            flip.attempts += 1
            flip.error, flip.failed_at = error_text(exc), now
            gave_up = flip.attempts >= MAX_ITEM_ATTEMPTS
            if gave_up:
                flip.processed_at = now
        self.failures.record("incident_engine", f"flip:{flip_id}", exc, gave_up=gave_up)

    async def _apply(self, session: AsyncSession, flip: Flip, now: datetime) -> None:
        key = dedup_key_for(flip.monitor_id, flip.root_monitor_id)
        incident = await find_open(session, key)
        view = OpenView(Severity(incident.severity), incident.monitor_id) if incident else None
        maintenance = False
        if incident is None and severity_for(flip.new_state) is not None:
            maintenance = await self.in_maintenance(session, flip.root_monitor_id or flip.monitor_id, flip.at)
        decision = decide(flip.new_state, flip.monitor_id, view, maintenance)
        log.debug("flip flip_id=%s monitor_id=%s state=%s action=%s", flip.id, flip.monitor_id,
                  flip.new_state, decision.action)
        await self._act(session, flip, key, incident, decision, now)

    async def _act(self, session: AsyncSession, flip: Flip, key: str, incident: Incident | None,
                   decision: Decision, now: datetime) -> None:
        action = decision.action
        if action is Action.OPEN:
            await self._open(session, flip, key, decision.severity, now)
        elif action is Action.RAISE:
            incident.recovering_since = None
            await raise_severity(session, incident, decision.severity, flip.at, now, f"{flip.new_state}")
        elif action is Action.FAIL_AGAIN:
            self._fail_again(session, incident, flip)
        elif action is Action.ABSORB:
            child = await session.get(Monitor, flip.monitor_id)
            await absorb(session, incident, (await affected_by_monitor(session, child))[:1], flip.at, now)
        elif action is Action.RECOVERING:
            await self._recovering(session, incident, flip, now)
        elif action is Action.SUPPRESS:
            log.info("suppressed_in_maintenance flip_id=%s monitor_id=%s", flip.id, flip.monitor_id)

    async def _open(self, session: AsyncSession, flip: Flip, key: str, severity: Severity,
                    now: datetime) -> Incident:
        root = await session.get(Monitor, flip.root_monitor_id or flip.monitor_id)
        rows = await affected_by_monitor(session, root)
        if root.id != flip.monitor_id:  # a child reported before its parent's flip was applied
            rows += (await affected_by_monitor(session, await session.get(Monitor, flip.monitor_id)))[:1]
        state = flip.new_state if root.id == flip.monitor_id else "DOWN"
        incident = await open_incident(
            session, key=key, source=Source.MONITOR, severity=severity, title=f"{root.name} {state.lower()}",
            opened_at=flip.at, now=now, affected=rows, summary=f"{flip.reason} {flip.message}".strip(),
            monitor_id=root.id, service_id=rows[0].service_id, customer_id=rows[0].customer_id,
            locations=await self._confirming_locations(session, flip, now) if root.id == flip.monitor_id else [])
        log.info("incident_opened incident_id=%s key=%s severity=%s", incident.id, key, severity)
        if self.metrics:
            self.metrics.opened.labels(Source.MONITOR.value, severity.value).inc()
        return incident

    @staticmethod
    async def _confirming_locations(session: AsyncSession, flip: Flip, now: datetime) -> list[str]:
        """The locations whose vote made this flip (written with it); claimed here, as the opening names them."""
        rows = list((await session.execute(select(FailingLocation).where(
            FailingLocation.monitor_id == flip.monitor_id, FailingLocation.since == flip.at,
            FailingLocation.confirmed.is_(True), FailingLocation.processed_at.is_(None))
            .order_by(FailingLocation.id))).scalars())
        for row in rows:
            row.processed_at = now
            row.attempts += 1
        return [r.location for r in rows]

    @staticmethod
    def _fail_again(session: AsyncSession, incident: Incident, flip: Flip) -> None:
        if incident.recovering_since is not None:
            incident.flap_count += 1
            incident.recovering_since = None
            add_event(session, incident.id, flip.at, "flapped", f"{flip.old_state} -> {flip.new_state}")
        else:
            # e.g. DOWN -> DEGRADED: recorded, but the severity stays (never silently lowered).
            add_event(session, incident.id, flip.at, "state", f"{flip.old_state} -> {flip.new_state}")

    async def _recovering(self, session: AsyncSession, incident: Incident, flip: Flip, now: datetime) -> None:
        incident.recovering_since = flip.at
        add_event(session, incident.id, flip.at, "recovering", f"{flip.old_state} -> {flip.new_state}")
        if self.config.recovery_hold_s <= 0:
            await resolve_incident(session, incident, flip.at, now, "recovered")

    async def sweep(self) -> int:
        """Resolve incidents whose recovery is confirmed. Return how many."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.config.recovery_hold_s)
        async with self.sessionmaker() as session:
            ids = list((await session.execute(select(Incident.id).where(
                Incident.status != Status.RESOLVED, Incident.recovering_since <= cutoff))).scalars())
        # One incident that cannot be resolved is counted and retried, set aside after MAX_ITEM_ATTEMPTS
        # (its error in worker_item_failures); the other incidents still resolve.
        resolved = (await isolate("incident_recovery", ((f"incident:{i}", self._confirming(i, now)) for i in ids),
                                  self.failures)).done
        if resolved:
            self._changed()
        return resolved

    def _confirming(self, incident_id: int, now: datetime):
        return lambda: self._confirm_recovery(incident_id, now)

    async def _confirm_recovery(self, incident_id: int, now: datetime) -> bool:
        async with self.sessionmaker() as session, session.begin():
            incident = await session.get(Incident, incident_id, with_for_update=True)
            if incident.status == Status.RESOLVED or not recovery_confirmed(
                    incident.recovering_since, now, self.config.recovery_hold_s):
                return False
            # A flip of the cause still waiting in the queue may be a new failure: apply it first.
            if await session.scalar(select(exists().where(
                    Flip.monitor_id == incident.monitor_id, Flip.processed_at.is_(None)))):
                return False
            await resolve_incident(session, incident, incident.recovering_since, now, "recovered")
            log.info("incident_resolved incident_id=%s duration_s=%.0f", incident.id, incident.duration_s)
            return True

    def _changed(self) -> None:
        for event in self.downstream:
            event.set()

    async def one_pass(self) -> int:
        """Apply the pending flips, then resolve the incidents whose recovery is confirmed."""
        return await self.process_pending() + await self.sweep()

    async def run(self) -> None:
        """Apply flips as soon as ``wake`` is set, and at least every ``sweep_interval_s``; until ``stop``."""
        await run_woken(self.one_pass, self.wake, self.config.sweep_interval_s, lambda: self._stopping, log,
                        "engine_pass_failed")

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()
