"""A small single-flight cache for rendered pages and documents.

Many callers asking for the same key at once share one render (the first caller starts it, the others await
the same task), and the result is kept for ``ttl_s`` seconds, or for good when ``ttl_s`` is None (a finished
month's report does not change). Renders are counted, so a
test can see how often the expensive path ran.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

__all__ = ["RenderCache"]


class RenderCache:
    def __init__(self, monotonic: Callable[[], float], *, ttl_s: float | None, max_entries: int = 256):
        self.ttl_s, self.max_entries, self._monotonic = ttl_s, max_entries, monotonic
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

    async def get(self, key: Hashable, render: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of ``key``, or the result of one shared ``render()``; a failed render is not kept."""
        found, value = self._fresh(key)
        if found:
            return value
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.ensure_future(self._run(key, render))
        # Shielded: a caller that goes away does not cancel the render the others are waiting for.
        return await asyncio.shield(task)
