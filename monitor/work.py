"""Isolating a worker's items: one item that fails is recorded, counted and set aside; the worker goes on.

Every background loop of the running service is a ``Loop`` (named in one registry, ``Service.loops()``, which is
also what starts them) and counts its failing items in one metric,
``negahban_worker_item_failures_total{worker, outcome}``: ``outcome="retry"`` while the item will be tried again
on a later pass, ``outcome="gave_up"`` once it was set aside for good (the NOC is alerted on both by
``NegahbanWorkerItemFailing`` / ``NegahbanWorkerItemAbandoned``). Every worker's series exist at 0 from the
start (``WorkerFailures.declare``), so rules and dashboards see them before the first failure.

Where an item's own row records its failure (a flip's ``error``, an incident's ``desk_error``, a notice's
``last_error``) the worker keeps its attempts there; the others (a monitor's rollups or buffered results, a
table's retention, an incident's escalation or reconciliation) keep them in ``worker_item_failures`` through
``WorkerFailures.failed`` and ``isolate``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.models import WorkerItemFailure

__all__ = ["WorkerFailures", "error_text", "MAX_ITEM_ATTEMPTS", "Loop", "isolate", "OUTCOMES"]

log = logging.getLogger("negahban.work")

# An item that failed this many times is set aside (its error stays on the row for the NOC to read).
MAX_ITEM_ATTEMPTS = 3
OUTCOMES = ("retry", "gave_up")


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """The error as stored on the failed row: its type and message, cut on purpose to ``limit``."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = f"{name}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Loop:
    """One background loop of the running service.

    ``run_pass`` is one pass over its items (what the loop runs each time, and what a test drives). A loop is
    either an APScheduler job (``every_s`` or ``cron``) or an in-process task (``task``: a coroutine function
    running passes until its owner stops it, woken by the previous stage). ``workers`` are the labels its
    failures are counted under (its own name unless it has several kinds of items)."""

    name: str
    run_pass: Callable[[], Awaitable[object]]
    every_s: float | None = None
    cron: Mapping[str, int] | None = None
    task: Callable[[], Awaitable[None]] | None = None
    workers: tuple[str, ...] = ()
    misfire_grace_s: int = 60

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.every_s, self.cron, self.task)) != 1:
            raise ValueError(f"loop {self.name}: exactly one of every_s, cron, task")

    @property
    def worker_names(self) -> tuple[str, ...]:
        return self.workers or (self.name,)

    def schedule(self, aps) -> None:
        """Add this loop to an APScheduler ``AsyncIOScheduler`` (job id = the loop's name)."""
        opts = {"replace_existing": True, "max_instances": 1, "coalesce": True,
                "misfire_grace_time": self.misfire_grace_s, "id": self.name}
        if self.cron is not None:
            aps.add_job(self.run_pass, "cron", **self.cron, **opts)
        else:
            aps.add_job(self.run_pass, "interval", seconds=self.every_s, **opts)


@dataclass
class _Ledger:
    sessionmaker: async_sessionmaker
    now: Callable[[], datetime]


class WorkerFailures:
    """Counts and logs failed items. Give it a registry to export the counter; without one it only logs.
    Give it a session factory (``attach``) to keep attempts of items that have no error column of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counter = None
        if registry is not None:
            self._counter = Counter("negahban_worker_item_failures", "Items a worker failed to process",
                                    ["worker", "outcome"], registry=registry)
        # Per process, for tests and the NOC: (worker, outcome) -> count.
        self.counts: dict[tuple[str, str], int] = {}
        self._ledger: _Ledger | None = None

    def attach(self, sessionmaker: async_sessionmaker, now: Callable[[], datetime]) -> None:
        self._ledger = _Ledger(sessionmaker, now)

    def declare(self, workers: Iterable[str]) -> None:
        """Create every (worker, outcome) series at 0, so an alert rule sees it before the first failure."""
        if self._counter is not None:
            for worker in workers:
                for outcome in OUTCOMES:
                    self._counter.labels(worker, outcome)

    def record(self, worker: str, item: object, exc: BaseException, *, gave_up: bool) -> None:
        outcome = "gave_up" if gave_up else "retry"
        log.error("item_failed worker=%s item=%s outcome=%s error=%r", worker, item, outcome, error_text(exc, 500),
                  exc_info=exc)
        self.counts[(worker, outcome)] = self.counts.get((worker, outcome), 0) + 1
        if self._counter is not None:
            self._counter.labels(worker, outcome).inc()

    async def failed(self, worker: str, item: str, exc: BaseException) -> bool:
        """Record one more failed attempt of ``item`` in the ledger and count it; return True if it is now
        set aside (``MAX_ITEM_ATTEMPTS`` reached). Without a ledger every failure is a retry."""
        if self._ledger is None:
            self.record(worker, item, exc, gave_up=False)
            return False
        try:
            gave_up = await self._note(worker, item, exc)
        except IntegrityError:  # another process noted the same item's first failure at the same moment
            gave_up = await self._note(worker, item, exc)
        self.record(worker, item, exc, gave_up=gave_up)
        return gave_up

    async def _note(self, worker: str, item: str, exc: BaseException) -> bool:
        now = self._ledger.now()
        async with self._ledger.sessionmaker() as session, session.begin():
            row = (await session.execute(select(WorkerItemFailure).where(
                WorkerItemFailure.worker == worker, WorkerItemFailure.item == item).with_for_update())).scalar()
            if row is None:
                row = WorkerItemFailure(worker=worker, item=item, attempts=0, first_failed_at=now)
                session.add(row)
            row.attempts += 1
            row.error, row.last_failed_at = error_text(exc), now
            if row.attempts >= MAX_ITEM_ATTEMPTS and row.gave_up_at is None:
                row.gave_up_at = now
            return row.gave_up_at is not None

    async def noted(self, worker: str) -> dict[str, bool]:
        """The items of ``worker`` in the ledger: item -> whether it was given up on (a loop skips those)."""
        if self._ledger is None:
            return {}
        async with self._ledger.sessionmaker() as session:
            rows = await session.execute(select(WorkerItemFailure.item, WorkerItemFailure.gave_up_at).where(
                WorkerItemFailure.worker == worker))
            return {item: gave_up_at is not None for item, gave_up_at in rows.all()}

    async def succeeded(self, worker: str, items: Iterable[str]) -> None:
        """Forget the earlier failed attempts of items that have now gone through."""
        items = list(items)
        if self._ledger is None or not items:
            return
        async with self._ledger.sessionmaker() as session, session.begin():
            for i in range(0, len(items), 500):
                await session.execute(delete(WorkerItemFailure).where(
                    WorkerItemFailure.worker == worker, WorkerItemFailure.gave_up_at.is_(None),
                    WorkerItemFailure.item.in_(items[i:i + 500])))


@dataclass
class Isolated:
    """What ``isolate`` did with a pass's items."""

    done: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


async def isolate(worker: str, steps: Iterable[tuple[str, Callable[[], Awaitable[int | bool | None]]]],
                  failures: WorkerFailures) -> Isolated:
    """Run each ``(item, step)`` on its own: a step that raises is noted (set aside after
    ``MAX_ITEM_ATTEMPTS``) and the next one runs; items already set aside are skipped."""
    steps = list(steps)
    if not steps:
        return Isolated()
    noted = await failures.noted(worker)
    out, recovered = Isolated(), []
    for item, step in steps:
        if noted.get(item):
            out.skipped.append(item)
            continue
        try:
            out.done += int(await step() or 0)
        except Exception as exc:  # recorded in the ledger; the items behind it still go through
            out.failed.append(item)
            await failures.failed(worker, item, exc)
        else:
            if item in noted:
                recovered.append(item)
    await failures.succeeded(worker, recovered)
    return out
