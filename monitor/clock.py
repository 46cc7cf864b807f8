"""The time seam.

Decision code never reads the wall clock: it takes ``now`` as an argument. Services that need the time are
given a ``Clock``; tests give them a ``ManualClock`` and move it by hand, so no test sleeps.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock", "ManualClock", "utc"]


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; naive values are taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 1, 1, tzinfo=UTC))
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        delta = timedelta(seconds=seconds, **kwargs)
        self._now += delta
        self._mono += delta.total_seconds()
        return self._now

    def set(self, when: datetime) -> None:
        when = utc(when)
        self._mono += (when - self._now).total_seconds()
        self._now = when
