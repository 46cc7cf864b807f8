"""Scrape time of /metrics' per-monitor series at 10,000 monitors, against prometheus_client's own path.

Prints: render time of our exposition (cold, i.e. no cache; and cached), prometheus_client's generate_latest
over an equivalent Collector (the peer), their ratio, and the longest event-loop stall seen by a 1 ms ticker
while scrapes run (what probing would feel).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

from dashboards.metrics import LABELS, ProbeExposition  # noqa: E402
from monitor.catalog import MonitorConfig  # noqa: E402
from monitor.models import State  # noqa: E402
from monitor.policy import Policy  # noqa: E402
from monitor.runner import Latest  # noqa: E402
from probes import Outcome, ProbeResult  # noqa: E402

N = 10_000


def fake_latest(n: int) -> dict[int, Latest]:
    out = {}
    for i in range(n):
        labels = {"monitor": f"mon-{i:05d}", "service": f"svc-{i // 4}", "customer": f"cust-{i // 40}",
                  "location": f"dc{i % 3}", "kind": ("http", "tcp", "icmp", "dns")[i % 4]}
        cfg = MonitorConfig(i, labels["monitor"], labels["kind"], None, 60.0, Policy(), labels)
        out[i] = Latest(cfg, ProbeResult(Outcome.UP if i % 50 else Outcome.DOWN, "ok", "", 0.001 * (i % 900)),
                        State.UP if i % 50 else State.DOWN)
    return out


class PeerCollector:
    """What the skeleton had: a prometheus_client Collector over the same data."""

    def __init__(self, latest):
        self.latest = latest

    def collect(self):
        s = GaugeMetricFamily("probe_success", "x", labels=LABELS)
        d = GaugeMetricFamily("probe_duration_seconds", "x", labels=LABELS)
        st = GaugeMetricFamily("negahban_monitor_state", "x", labels=(*LABELS, "state"))
        for item in self.latest.values():
            v = [item.config.labels[k] for k in LABELS]
            s.add_metric(v, 0.0 if item.result.outcome is Outcome.DOWN else 1.0)
            d.add_metric(v, item.result.latency_s)
            st.add_metric([*v, str(item.state)], 1.0)
        yield from (s, d, st)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def loop_stall(expo: ProbeExposition | None, scrapes: int) -> float:
    """Longest gap of a 1 ms ticker while ``scrapes`` cold renders (as /metrics runs them) run."""
    worst, stop = 0.0, asyncio.Event()

    async def ticker():
        nonlocal worst
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(ticker())
    for _ in range(scrapes):
        await asyncio.sleep(0.01)
        if expo is not None:
            expo._cached = None
            await expo.render_async()
    stop.set()
    await task
    return worst * 1000


def main() -> None:
    latest = fake_latest(N)
    expo = ProbeExposition(lambda: latest, time.monotonic, ttl_s=1.0)
    expo.render()  # label texts are built once per monitor config

    fresh = fake_latest(N)  # other Latest objects with the same content: what a check leaves behind

    def rechecked(fraction: float):
        # Monitors checked since the last scrape get new Latest objects (60 s interval, 15 s scrapes: 1/4).
        step = max(1, round(1 / fraction))
        offset = rechecked.round % step
        rechecked.round += 1
        for i in range(offset, N, step):
            latest[i], fresh[i] = fresh[i], latest[i]

        def run():
            expo._cached = None
            expo.render()
        return run

    rechecked.round = 0

    def scrape(fraction):
        out = []
        for _ in range(8):
            run = rechecked(fraction)
            out.extend(timed(run, 1))
        return out

    ours = scrape(0.25)
    everything = scrape(1.0)
    cached = timed(expo.render, 10)
    registry = CollectorRegistry()
    registry.register(PeerCollector(latest))
    peer = timed(lambda: generate_latest(registry), 3)
    first = ProbeExposition(lambda: latest, time.monotonic)
    first_ms = timed(first.render, 1)[0]
    stall = asyncio.run(loop_stall(expo, 5))
    baseline = asyncio.run(loop_stall(None, 5))
    series = expo.render().count(b"\n")
    print(f"monitors={N} lines={series}")
    print(f"scrape_render_ms (1/4 of monitors re-checked since the last scrape) median={statistics.median(ours):.1f}"
          f" max={max(ours):.1f} (target <= 150)")
    print(f"scrape_render_all_rechecked_ms median={statistics.median(everything):.1f} max={max(everything):.1f}")
    print(f"scrape_render_first_ever_ms={first_ms:.1f} (labels escaped on the first scrape)")
    print(f"scrape_cached_ms median={statistics.median(cached):.3f}")
    print(f"peer_generate_latest_ms median={statistics.median(peer):.1f}")
    print(f"ratio_peer_over_ours={statistics.median(peer) / statistics.median(ours):.1f}x "
          f"(all re-checked: {statistics.median(peer) / statistics.median(everything):.1f}x)")
    print(f"max_event_loop_stall_during_scrapes_ms={stall:.1f} (same ticker without scrapes: {baseline:.1f})")


if __name__ == "__main__":
    main()
