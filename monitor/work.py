"""Isolating a worker's items: one item that fails is recorded, counted and set aside; the worker goes on.

Every worker loop of the outage path (the incident engine over flips, the desk's auto-ticketing, the
notification dispatcher, escalation, Alertmanager notifications) and the housekeeping jobs count their failing
items in one metric, ``negahban_worker_item_failures_total{worker, outcome}``: ``outcome="retry"`` while the
item will be tried again on a later pass, ``outcome="gave_up"`` once it was set aside for good (the NOC is
alerted on both by ``NegahbanWorkerItemFailing`` / ``NegahbanWorkerItemAbandoned``).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

__all__ = ["WorkerFailures", "error_text", "MAX_ITEM_ATTEMPTS"]

log = logging.getLogger("negahban.work")

# An item that failed this many times is set aside (its error stays on the row for the NOC to read).
MAX_ITEM_ATTEMPTS = 3


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """The error as stored on the failed row: its type and message, cut on purpose to ``limit``."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WorkerFailures:
    """Counts and logs failed items. Give it a registry to export the counter; without one it only logs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counter = None
        if registry is not None:
            self._counter = Counter("negahban_worker_item_failures", "Items a worker failed to process",
                                    ["worker", "outcome"], registry=registry)
        # Per process, for tests and the NOC: (worker, outcome) -> count.
        self.counts: dict[tuple[str, str], int] = {}

    def record(self, worker: str, item: object, exc: BaseException, *, gave_up: bool) -> None:
        outcome = "gave_up" if gave_up else "retry"
        log.error("item_failed worker=%s item=%s outcome=%s error=%r", worker, item, outcome, error_text(exc, 500),
                  exc_info=exc)
        self.counts[(worker, outcome)] = self.counts.get((worker, outcome), 0) + 1
        if self._counter is not None:
            self._counter.labels(worker, outcome).inc()
