"""The incidents package's Prometheus metrics, registered on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["IncidentMetrics"]


class IncidentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.flip_to_incident = Histogram(
            "negahban_flip_to_incident_seconds", "From a confirmed flip to its incident change being committed",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=registry)
        self.opened = Counter("negahban_incidents_opened_total", "Incidents opened",
                              ["source", "severity"], registry=registry)
        self.notices = Counter("negahban_notifications_total", "Notification attempts by outcome",
                               ["kind", "outcome"], registry=registry)
        self.channel_disabled = Gauge("negahban_notification_channel_disabled",
                                      "1 while a channel is disabled after a permanent delivery failure",
                                      ["channel", "kind"], registry=registry)
        self.pages_not_delivered = Counter(
            "negahban_pages_not_delivered_total",
            "Incidents whose escalation reached nobody (every step failed) or nobody acknowledged in time",
            ["reason"], registry=registry)
        for reason in ("every_step_failed", "unacknowledged"):  # born at 0, so the first one alerts
            self.pages_not_delivered.labels(reason)
