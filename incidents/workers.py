"""The running parts of the incidents package, started and stopped together by the composition root:
the engine (woken after flips are committed), the dispatcher (woken after incident changes), escalation and
Alertmanager reconciliation (every few seconds), and the later stages given to ``add_stage``. ``loops()``
names each of them; the service starts them from that list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker

from incidents.alertmanager import AlertmanagerConfig, reconcile
from incidents.dispatcher import DispatchConfig, Dispatcher
from incidents.engine import EngineConfig, IncidentEngine, InMaintenance, never_in_maintenance
from incidents.errors import ReconcileFailed
from incidents.escalation import escalate_due
from incidents.escalation_policy import EscalationConfig
from incidents.metrics import IncidentMetrics
from incidents.notifiers import Notifier
from incidents.statuspage.maintenance_notices import MaintenanceNotices, announce_maintenance_due
from incidents.wakeloop import run_woken
from monitor.clock import Clock
from monitor.work import Loop, WorkerFailures

__all__ = ["PeriodicConfig", "IncidentWorkers", "Stage"]

log = logging.getLogger("negahban.incidents")


class Stage(Protocol):
    """A later stage run beside the workers: woken through ``wake``, looping in ``run`` until ``stop``;
    ``run_once`` is one of its passes and ``name`` its loop's name."""

    name: str
    wake: asyncio.Event

    async def run_once(self) -> object: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PeriodicConfig:
    escalation_policy: str = "noc"
    escalation: EscalationConfig = EscalationConfig()  # policies and rotations from the settings
    interval_s: float = 15.0  # escalation runs this often
    reconcile_every: int = 4  # reconcile with Alertmanager every N escalation intervals
    # Subscribers' maintenance notices (rule 18), swept every escalation interval.
    maintenance_notices: MaintenanceNotices = MaintenanceNotices()


class IncidentWorkers:
    def __init__(self, sessionmaker: async_sessionmaker, clock: Clock, http: aiohttp.ClientSession,
                 notifiers: Mapping[str, Notifier], *, engine: EngineConfig | None = None,
                 dispatch: DispatchConfig | None = None, periodic: PeriodicConfig | None = None,
                 alertmanager: AlertmanagerConfig | None = None,
                 in_maintenance: InMaintenance = never_in_maintenance,
                 registry: CollectorRegistry | None = None, failures: WorkerFailures | None = None) -> None:
        self.sessionmaker, self.clock, self.http = sessionmaker, clock, http
        self.periodic = periodic or PeriodicConfig()
        self.alertmanager = alertmanager or AlertmanagerConfig()
        self.metrics = IncidentMetrics(registry) if registry is not None else None
        # One failure counter for every worker of the outage path (later stages are given it too).
        self.failures = failures if failures is not None else WorkerFailures(registry)
        self.dispatcher = Dispatcher(sessionmaker, clock, notifiers, dispatch, self.metrics, self.failures)
        # Extra events woken after incident changes (e.g. the desk's auto-ticketing), added before start.
        self.followers: list[asyncio.Event] = []
        self.engine = IncidentEngine(sessionmaker, clock, engine, in_maintenance,
                                     downstream=[self.dispatcher.wake], metrics=self.metrics,
                                     failures=self.failures)
        self._tasks: list[asyncio.Task] = []
        self._stages: list[Stage] = []
        self._stop = asyncio.Event()
        # The periodic loops' wake-ups: escalation, reconciliation (set only to stop), maintenance notices
        # (also set after the NOC plans a window, through ``maintenance_changed``).
        self._timers = (asyncio.Event(), asyncio.Event(), asyncio.Event())

    def follow(self, event: asyncio.Event) -> None:
        """Wake ``event`` whenever incidents change."""
        self.followers.append(event)
        self.engine.downstream = (*self.engine.downstream, event)

    def add_stage(self, stage: Stage) -> None:
        """Run a later stage (the desk's auto-ticketing) with these workers, woken on every incident change."""
        self.follow(stage.wake)
        self._stages.append(stage)

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(self._stages)

    @property
    def on_flip(self) -> Callable[[], None]:
        """Give this to the runner: it wakes the engine after flips are committed."""
        return self.engine.wake.set

    def incidents_changed(self) -> None:
        """Wake the next stages after a change made outside the engine (receiver, NOC actions); the engine
        too, since a NOC action may record a flip (a manual resolve of a monitor that is still failing)."""
        for event in (self.engine.wake, self.dispatcher.wake, *self.followers):
            event.set()

    async def escalation_pass(self) -> int:
        """Take the escalation steps that are due."""
        taken = await escalate_due(self.sessionmaker, self.periodic.escalation_policy, self.clock.now(),
                                   self.failures, self.periodic.escalation, self.metrics)
        if taken:
            self.dispatcher.wake.set()
        return taken

    async def reconcile_pass(self) -> int:
        """Resolve, at this moment, the alert incidents Alertmanager no longer reports as active."""
        try:
            resolved = await reconcile(self.sessionmaker, self.http, self.alertmanager, self.clock.now(),
                                       self.failures)
        except ReconcileFailed as exc:  # Alertmanager unreachable: the next pass asks again
            log.warning("reconcile_failed reason=%r", str(exc))
            return 0
        if resolved:
            self.incidents_changed()
        return resolved

    async def maintenance_notice_pass(self) -> int:
        """Queue the subscribers' maintenance notices that are due (each once per subscriber)."""
        queued = await announce_maintenance_due(self.sessionmaker, self.clock.now(),
                                                self.periodic.maintenance_notices, self.failures)
        if queued:
            self.dispatcher.wake.set()
        return queued

    def maintenance_changed(self) -> None:
        """Wake the maintenance-notice sweep now (a window was planned)."""
        self._timers[2].set()

    def _every(self, one_pass, wake: asyncio.Event, interval_s: float, event: str):
        async def run() -> None:
            await run_woken(one_pass, wake, interval_s, self._stop.is_set, log, event)
        return run

    def loops(self) -> list[Loop]:
        """Every loop of the outage path, the later stages included (reconciliation only with a URL)."""
        escalation_wake, reconcile_wake, maintenance_wake = self._timers
        out = [Loop("incident_engine", self.engine.one_pass, task=self.engine.run,
                    workers=("incident_engine", "incident_recovery")),
               Loop("dispatcher", self.dispatcher.one_pass, task=self.dispatcher.run),
               Loop("escalation", self.escalation_pass, task=self._every(
                   self.escalation_pass, escalation_wake, self.periodic.interval_s, "escalation_pass_failed")),
               Loop("maintenance_notices", self.maintenance_notice_pass, task=self._every(
                   self.maintenance_notice_pass, maintenance_wake, self.periodic.interval_s,
                   "maintenance_notice_pass_failed"))]
        if self.alertmanager.url:
            out.append(Loop("alertmanager_reconcile", self.reconcile_pass, task=self._every(
                self.reconcile_pass, reconcile_wake, self.periodic.interval_s * self.periodic.reconcile_every,
                "reconcile_pass_failed")))
        out += [Loop(stage.name, stage.run_once, task=stage.run) for stage in self._stages]
        return out

    def start(self, loops: Sequence[Loop] | None = None) -> None:
        """Run ``loops`` (by default ``self.loops()``) as tasks named after them, until ``stop``."""
        self._stop.clear()
        self._tasks = [asyncio.create_task(loop.task(), name=loop.name)
                       for loop in (self.loops() if loops is None else loops)]

    async def stop(self) -> None:
        self._stop.set()
        for event in self._timers:
            event.set()
        self.engine.stop()
        self.dispatcher.stop()
        for stage in self._stages:
            stage.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
