"""Rollup buckets (checks, up, degraded, down, latency min/avg/max) and their packed archive form.

Three resolutions: 5-minute rows in ``rollups_fine`` (kept 48 h), hourly slots packed 24 to a UTC day and
daily slots packed 31 to a UTC month in ``rollups_archive`` (kept 90 days and for years). A slot is
``SLOT`` = 28 bytes; a slot with ``checks == 0`` is empty.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Bucket", "FINE_S", "HOUR", "DAY", "pack", "unpack", "hour_slot", "month_index"]

FINE_S = 300
HOUR = 3600
DAY = 86400
SLOT = struct.Struct("<IIIIfff")
SLOTS = {HOUR: 24, DAY: 31}


@dataclass(slots=True)
class Bucket:
    checks: int = 0
    up: int = 0
    degraded: int = 0
    down: int = 0
    latency_min: float = 0.0
    latency_sum: float = 0.0
    latency_max: float = 0.0

    def add(self, outcome: str, latency_s: float) -> None:
        if self.checks == 0 or latency_s < self.latency_min:
            self.latency_min = latency_s
        self.latency_max = max(self.latency_max, latency_s)
        self.checks += 1
        self.latency_sum += latency_s
        if outcome == "up":
            self.up += 1
        elif outcome == "degraded":
            self.degraded += 1
        else:
            self.down += 1

    def merge(self, other: Bucket) -> None:
        if other.checks == 0:
            return
        if self.checks == 0 or other.latency_min < self.latency_min:
            self.latency_min = other.latency_min
        self.latency_max = max(self.latency_max, other.latency_max)
        self.checks += other.checks
        self.up += other.up
        self.degraded += other.degraded
        self.down += other.down
        self.latency_sum += other.latency_sum

    @property
    def latency_avg(self) -> float:
        return self.latency_sum / self.checks if self.checks else 0.0


def pack(slots: list[Bucket]) -> bytes:
    return b"".join(SLOT.pack(b.checks, b.up, b.degraded, b.down, b.latency_min, b.latency_avg,
                              b.latency_max) for b in slots)


def unpack(blob: bytes | None, resolution: int) -> list[Bucket]:
    out = [Bucket() for _ in range(SLOTS[resolution])]
    if blob:
        for i, (c, u, g, d, lo, avg, hi) in enumerate(SLOT.iter_unpack(blob)):
            out[i] = Bucket(c, u, g, d, lo, avg * c, hi)
    return out


def hour_slot(hour_index: int) -> tuple[int, int]:
    """(period, slot) of an epoch hour: the UTC day number and the hour in it."""
    return divmod(hour_index, 24)


def month_index(day_index: int) -> tuple[int, int]:
    """(period, slot) of an epoch day: year*12 + month - 1 and the day of the month - 1."""
    d = datetime.fromtimestamp(day_index * DAY, UTC)
    return d.year * 12 + d.month - 1, d.day - 1
