"""Per-monitor Prometheus series, rendered as exposition text without prometheus_client's per-sample path.

blackbox_exporter's names (``probe_success``, ``probe_duration_seconds``) with the labels monitor, service,
customer, location and kind, so existing blackbox Grafana dashboards work against us, plus
``negahban_monitor_state`` (one series per monitor, the current state as a label) and
``negahban_monitors`` (monitors per state).

Why not a ``Collector``: prometheus_client's ``generate_latest`` formats every sample through generic code and
took 0.66-0.95 s for 50,000 series here, which both misses a scrape budget and stalls the event loop that runs
the probes. Here each monitor's label set is escaped once and kept (until its config object changes), a scrape
is one join over the in-memory latest results, and the text is cached for ``ttl_s`` so that several scrapers
cost one render.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from dashboards.blackbox import HEADERS as _BLACKBOX_HEADERS
from dashboards.blackbox import family_lines
from monitor.models import State
from probes import Outcome

__all__ = ["ProbeExposition", "LABELS", "CHUNK_LINES", "escape_label", "render_labels"]

# Alphabetical, as prometheus_client renders them, so both outputs read the same.
LABELS = ("customer", "instance", "kind", "location", "monitor", "service")
STATES = tuple(s.value for s in State)

_HEADER_SUCCESS = ("# HELP probe_success Displays whether or not the probe was a success\n"
                   "# TYPE probe_success gauge\n")
_HEADER_DURATION = ("# HELP probe_duration_seconds Returns how long the probe took to complete in seconds\n"
                    "# TYPE probe_duration_seconds gauge\n")
_HEADER_STATE = ("# HELP negahban_monitor_state Evaluated state of each monitor (1 = current)\n"
                 "# TYPE negahban_monitor_state gauge\n")
_HEADER_COUNTS = ("# HELP negahban_monitors Monitors per evaluated state\n"
                  "# TYPE negahban_monitors gauge\n")


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_labels(labels: Mapping[str, str]) -> str:
    """``customer="a",kind="http",...`` for the fixed label names (missing ones are empty)."""
    return ",".join(f'{k}="{escape_label(str(labels.get(k, "")))}"' for k in LABELS)


def _number(value: float) -> str:
    if value.__class__ is float and 0 <= value < 1e15:
        return repr(value)
    value = float(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class ProbeExposition:
    """Renders the per-monitor series from ``latest()`` (the runner's ``{monitor_id: Latest}``).

    ``monotonic`` is the clock's monotonic reading (a parameter, so tests drive the cache by hand).
    ``render_async`` takes the snapshot on the event loop and formats it in a worker thread, so a scrape of
    10,000 monitors does not hold up the probes sharing the loop.
    """

    def __init__(self, latest: Callable[[], Mapping[int, Any]], monotonic: Callable[[], float],
                 ttl_s: float = 1.0) -> None:
        self._latest = latest
        self._monotonic = monotonic
        self._ttl = ttl_s
        # monitor id -> (config object, success prefix, duration prefix, state prefix)
        self._prefixes: dict[int, tuple[object, str, str, str]] = {}
        # monitor id -> (the Latest object rendered, success line, duration line, state line, state,
        #   blackbox families' (index, line) pairs)
        self._rendered: dict[int, tuple] = {}
        self._cached: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()
        self.renders = 0

    def _fresh(self) -> bytes | None:
        if self._cached is not None and self._monotonic() - self._cached[0] < self._ttl:
            return self._cached[1]
        return None

    def render(self) -> bytes:
        body = self._fresh()
        if body is None:
            body = self._store(self._render_items(self.snapshot()))
        return body

    def snapshot(self) -> dict[int, Any]:
        """The runner's latest results as a list (on the event loop: the runner's dict changes under it)."""
        # A dict copy is one C-level copy of the table: no tuple per monitor for the garbage collector to count
        # (``list(d.items())`` at 50,000 monitors took 13-90 ms on the loop and triggered collections).
        return dict(self._latest())

    def render_chunks(self, items: Mapping[int, Any]) -> list[bytes]:
        """Format a ``snapshot()`` without the cache (``dashboards.metrics_page`` caches the whole body), as
        pieces of at most ``CHUNK_LINES`` lines; safe in a worker thread if renders run one at a time."""
        return self._render(items)

    async def render_async(self) -> bytes:
        async with self._lock:  # concurrent scrapes wait for one render instead of each doing it
            body = self._fresh()
            if body is None:
                body = self._store(await asyncio.to_thread(self._render_items, self.snapshot()))
            return body

    def _store(self, body: bytes) -> bytes:
        self._cached = (self._monotonic(), body)
        return body

    def _prefix(self, monitor_id: int, config) -> tuple[object, str, str, str]:
        hit = self._prefixes.get(monitor_id)
        if hit is None or hit[0] is not config:
            labels = render_labels(config.labels)
            hit = (config, f"probe_success{{{labels}}} ", f"probe_duration_seconds{{{labels}}} ",
                   f'negahban_monitor_state{{{labels},state="')
            self._prefixes[monitor_id] = hit
        return hit

    def _lines_of(self, monitor_id: int, item) -> tuple:
        # The runner replaces a monitor's Latest on every check, so an unchanged object means unchanged lines:
        # between two scrapes most monitors were not checked, and their lines are reused as they are.
        hit = self._rendered.get(monitor_id)
        if hit is not None and hit[0] is item:
            return hit
        _, p_ok, p_dur, p_state = self._prefix(monitor_id, item.config)
        st = str(item.state)
        labels = p_ok[len("probe_success{"):-2]
        hit = (item, p_ok + ("0.0" if item.result.outcome is Outcome.DOWN else "1.0"),
               p_dur + _number(item.result.latency_s), p_state + st + '"} 1.0', st,
               family_lines(item.config.kind, labels, item.result, _number, escape_label))
        self._rendered[monitor_id] = hit
        return hit

    def _forget_gone(self, items: Mapping[int, Any]) -> None:
        if len(self._rendered) > 2 * len(items) + 100:
            live = items.keys()
            self._prefixes = {k: v for k, v in self._prefixes.items() if k in live}
            self._rendered = {k: v for k, v in self._rendered.items() if k in live}

    def _render_items(self, items: Mapping[int, Any]) -> bytes:
        return b"".join(self._render(items))

    def _render(self, items: Mapping[int, Any]) -> list[bytes]:
        self.renders += 1
        self._forget_gone(items)
        rows = [self._lines_of(mid, item) for mid, item in items.items()]
        counts = Counter(r[4] for r in rows)
        count_lines = [f'negahban_monitors{{state="{s}"}} {float(counts.get(s, 0))}' for s in STATES]
        families: list[list[str]] = [[] for _ in _BLACKBOX_HEADERS]
        for row in rows:
            for index, line in row[5]:
                families[index].append(line)
        parts = [*_lines(_HEADER_SUCCESS, [r[1] for r in rows]), *_lines(_HEADER_DURATION, [r[2] for r in rows])]
        for header, lines in zip(_BLACKBOX_HEADERS, families, strict=True):
            if lines:
                parts += _lines(header, lines)
        parts += [*_lines(_HEADER_STATE, [r[3] for r in rows]), *_lines(_HEADER_COUNTS, count_lines)]
        return parts


# A join or an encode is one C call that keeps the GIL from the event loop for its whole length (a 21 MB body:
# tens of milliseconds, with the page faults of a fresh allocation); in pieces of this many lines (about
# 200 KB) the render thread gives the loop its turn between them.
CHUNK_LINES = 1000


def _lines(header: str, rows: list[str]) -> list[bytes]:
    if not rows:
        return [header.encode()]  # the family's help and type alone, as before any monitor is checked
    out = []
    for start in range(0, len(rows), CHUNK_LINES):
        text = "\n".join(rows[start:start + CHUNK_LINES]) + "\n"
        out.append(((header + text) if start == 0 else text).encode())
    return out
