"""A small single-flight cache for rendered pages and documents.

Many callers asking for the same key at once share one render (the first caller starts it, the others await
the same task), and the result is kept for ``ttl_s`` seconds, or for good when ``ttl_s`` is None (a finished
month's report does not change). With ``stale_s``, a value up to that much past its time is still answered at
once while one render in the background replaces it (stale-while-revalidate): under load nobody waits for the
page's render, only the first caller after a long quiet does. Renders are counted, so a test can see how often
the expensive path ran.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

__all__ = ["RenderCache"]
log = logging.getLogger(__name__)


class RenderCache:
    def __init__(self, monotonic: Callable[[], float], *, ttl_s: float | None, max_entries: int = 256,
                 stale_s: float = 0.0):
        self.ttl_s, self.max_entries, self._monotonic = ttl_s, max_entries, monotonic
        self.stale_s = stale_s
        self._done: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task] = {}
        self.renders = 0  # cache misses: how often the expensive path ran

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        hit = self._done.get(key)
        if hit is None or (self.ttl_s is not None and self._monotonic() >= hit[0]):
            return False, None
        self._done.move_to_end(key)
        return True, hit[1]

    def _store(self, key: Hashable, value: Any) -> None:
        expires = self._monotonic() + self.ttl_s if self.ttl_s is not None else 0.0
        self._done[key] = (expires, value)
        self._done.move_to_end(key)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    async def _run(self, key: Hashable, render: Callable[[], Awaitable[Any]]) -> Any:
        try:
            self.renders += 1
            value = await render()
            self._store(key, value)
            return value
        finally:
            self._inflight.pop(key, None)

    def _stale(self, key: Hashable) -> tuple[bool, Any]:
        hit = self._done.get(key)
        if hit is None or self.ttl_s is None or self._monotonic() >= hit[0] + self.stale_s:
            return False, None
        return True, hit[1]

    async def settled(self) -> None:
        """Wait for the renders under way (a test's way to see a background refresh land)."""
        while self._inflight:
            await asyncio.wait(list(self._inflight.values()))

    def _start(self, key: Hashable, render: Callable[[], Awaitable[Any]]) -> asyncio.Task:
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.ensure_future(self._run(key, render))
            task.add_done_callback(_retrieve)
        return task

    async def get(self, key: Hashable, render: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of ``key``, or the result of one shared ``render()``; a failed render is not kept
        (within ``stale_s`` the old value is still answered, and the next caller tries again)."""
        found, value = self._fresh(key)
        if found:
            return value
        if self.stale_s:
            found, value = self._stale(key)
            if found:
                self._start(key, render)
                return value
        task = self._start(key, render)
        # Shielded: a caller that goes away does not cancel the render the others are waiting for.
        return await asyncio.shield(task)


def _retrieve(task: asyncio.Task) -> None:
    # A background render nobody awaits must not end as "exception never retrieved"; it is logged instead.
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("render_failed error=%s", type(exc).__name__, exc_info=exc)
