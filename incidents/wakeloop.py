"""The loop every worker of the outage path runs: a pass when woken, and at least every ``interval_s``.

The wake-up (an ``asyncio.Event`` set after the previous stage commits) gives sub-second reaction; the
interval is the sweep that keeps the work correct when a wake-up was missed or another process did the
writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["run_woken"]


async def run_woken(one_pass: Callable[[], Awaitable[object]], wake: asyncio.Event, interval_s: float,
                    stopping: Callable[[], bool], log: logging.Logger, failure_event: str,
                    passed: asyncio.Event | None = None) -> None:
    """Run ``one_pass`` until ``stopping()``; a failing pass is logged and the next one retries.

    ``passed`` is set after every pass, so that a caller can wait for the stage's work instead of polling.
    """
    while not stopping():
        wake.clear()
        try:
            await one_pass()
        except Exception:  # a database outage must not end the loop
            log.exception(failure_event)
        if passed is not None:
            passed.set()
        if stopping():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval_s)
