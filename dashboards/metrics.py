"""Prometheus collectors.

Per-monitor series are rendered by a custom collector straight from the runner's in-memory latest results,
with blackbox_exporter's names (``probe_success``, ``probe_duration_seconds``) so that existing blackbox
dashboards work against us.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.models import State
from probes import Outcome

__all__ = ["ProbeCollector", "LABELS", "register_probe_collector"]

LABELS = ("monitor", "service", "customer", "location", "kind")
STATES = tuple(s.value for s in State)


class ProbeCollector(Collector):
    def __init__(self, latest: Callable[[], Mapping]) -> None:
        self._latest = latest

    def collect(self):
        success = GaugeMetricFamily("probe_success", "Whether the last probe succeeded", labels=LABELS)
        duration = GaugeMetricFamily("probe_duration_seconds", "Duration of the last probe", labels=LABELS)
        state = GaugeMetricFamily("negahban_monitor_state", "Evaluated state of each monitor (1 = current)",
                                  labels=(*LABELS, "state"))
        for item in list(self._latest().values()):
            values = [item.config.labels.get(k, "") for k in LABELS]
            success.add_metric(values, 0.0 if item.result.outcome is Outcome.DOWN else 1.0)
            duration.add_metric(values, item.result.latency_s)
            state.add_metric([*values, str(item.state)], 1.0)
        yield success
        yield duration
        yield state


def register_probe_collector(registry: CollectorRegistry, latest: Callable[[], Mapping]) -> ProbeCollector:
    collector = ProbeCollector(latest)
    registry.register(collector)
    return collector
