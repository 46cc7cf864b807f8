"""The running parts of the incidents package, started and stopped together by the composition root:
the engine (woken after flips are committed), the dispatcher (woken after incident changes), and a
periodic job for escalation and Alertmanager reconciliation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
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
from incidents.metrics import IncidentMetrics
from incidents.notifiers import Notifier
from monitor.clock import Clock
from monitor.work import WorkerFailures

__all__ = ["PeriodicConfig", "IncidentWorkers", "Stage"]

log = logging.getLogger("negahban.incidents")


class Stage(Protocol):
    """A later stage run beside the workers: woken through ``wake``, looping in ``run`` until ``stop``."""

    wake: asyncio.Event

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PeriodicConfig:
    escalation_policy: str = "noc"
    interval_s: float = 15.0
    reconcile_every: int = 4  # reconcile with Alertmanager every N periodic passes


class IncidentWorkers:
    def __init__(self, sessionmaker: async_sessionmaker, clock: Clock, http: aiohttp.ClientSession,
                 notifiers: Mapping[str, Notifier], *, engine: EngineConfig | None = None,
                 dispatch: DispatchConfig | None = None, periodic: PeriodicConfig | None = None,
                 alertmanager: AlertmanagerConfig | None = None,
                 in_maintenance: InMaintenance = never_in_maintenance,
                 registry: CollectorRegistry | None = None) -> None:
        self.sessionmaker, self.clock, self.http = sessionmaker, clock, http
        self.periodic = periodic or PeriodicConfig()
        self.alertmanager = alertmanager or AlertmanagerConfig()
        self.metrics = IncidentMetrics(registry) if registry is not None else None
        # One failure counter for every worker of the outage path (later stages are given it too).
        self.failures = WorkerFailures(registry)
        self.dispatcher = Dispatcher(sessionmaker, clock, notifiers, dispatch, self.metrics, self.failures)
        # Extra events woken after incident changes (e.g. the desk's auto-ticketing), added before start.
        self.followers: list[asyncio.Event] = []
        self.engine = IncidentEngine(sessionmaker, clock, engine, in_maintenance,
                                     downstream=[self.dispatcher.wake], metrics=self.metrics,
                                     failures=self.failures)
        self._tasks: list[asyncio.Task] = []
        self._stages: list[Stage] = []
        self._stop = asyncio.Event()

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

    async def periodic_pass(self, n: int) -> None:
        now = self.clock.now()
        if await escalate_due(self.sessionmaker, self.periodic.escalation_policy, now, self.failures):
            self.dispatcher.wake.set()
        if self.alertmanager.url and n % self.periodic.reconcile_every == 0:
            try:
                if await reconcile(self.sessionmaker, self.http, self.alertmanager, now):
                    self.incidents_changed()
            except ReconcileFailed as exc:
                log.warning("reconcile_failed reason=%r", str(exc))

    async def _periodic(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                await self.periodic_pass(n)
            except Exception:  # a failing pass must not end the job; the next one retries
                log.exception("periodic_pass_failed")
            n += 1
            try:
                await asyncio.wait_for(self._stop.wait(), self.periodic.interval_s)
            except TimeoutError:
                pass

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self.engine.run(), name="incident-engine"),
                       asyncio.create_task(self.dispatcher.run(), name="notification-dispatcher"),
                       asyncio.create_task(self._periodic(), name="incident-periodic")]
        self._tasks += [asyncio.create_task(stage.run(), name=type(stage).__name__) for stage in self._stages]

    async def stop(self) -> None:
        self._stop.set()
        self.engine.stop()
        self.dispatcher.stop()
        for stage in self._stages:
            stage.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
