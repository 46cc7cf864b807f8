"""Token buckets for anonymous routes (the heartbeat pings): a pure step, and a bounded table of buckets.

``take(level, last, now, rate)`` is the whole rule: the bucket refills ``rate.per_s`` per second up to
``rate.burst``, a request takes one, and an empty bucket says how long until one is back. ``Buckets`` keeps one
per key (a token's digest, a client address) in memory, with at most ``max_keys`` of them: a caller who sends
a million made-up tokens cannot grow it without bound. A bucket that has refilled completely is the same as
no bucket, so those go first; past that, the least recently used. Per process: several processes each allow
the rate (the limit protects the service, it is not an exact quota).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Rate", "take", "Buckets"]


@dataclass(frozen=True, slots=True)
class Rate:
    burst: int  # requests allowed at once
    per_s: float  # refill per second

    @classmethod
    def per_minute(cls, n: int, burst: int | None = None) -> Rate:
        return cls(burst if burst is not None else n, n / 60.0)


def take(level: float, last: float, now: float, rate: Rate) -> tuple[float, float]:
    """Return ``(new level, retry after s)``: retry after 0 means the request is allowed (and was taken)."""
    level = min(float(rate.burst), level + max(0.0, now - last) * rate.per_s)
    if level >= 1.0:
        return level - 1.0, 0.0
    return level, (1.0 - level) / rate.per_s


class Buckets:
    def __init__(self, rate: Rate, max_keys: int = 100_000) -> None:
        self.rate = rate
        self._max = max_keys
        self._table: dict[str, tuple[float, float]] = {}  # key -> (level, at); oldest use first

    def __len__(self) -> int:
        return len(self._table)

    def take(self, key: str, now: float) -> int:
        """Whole seconds to wait (0: allowed)."""
        level, last = self._table.pop(key, (float(self.rate.burst), now))
        level, wait = take(level, last, now, self.rate)
        self._table[key] = (level, now)
        if len(self._table) > self._max:
            self._evict(now)
        return math.ceil(wait) if wait > 0 else 0

    def _evict(self, now: float) -> None:
        full = [k for k, (level, at) in self._table.items()
                if level + (now - at) * self.rate.per_s >= self.rate.burst]
        for key in full:
            del self._table[key]
        keep = self._max * 9 // 10  # room for a tenth more before the next scan
        while len(self._table) > keep:
            del self._table[next(iter(self._table))]
