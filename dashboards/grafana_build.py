"""Build the Grafana dashboards in ``dashboards/grafana/*.json`` from this one description.

Run ``python -m dashboards.grafana_build`` after changing a panel; tests check that the committed JSON is what
this module builds and that every panel's query returns data from a real Prometheus scraping Negahban.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DASHBOARDS", "build", "write_all", "GRAFANA_DIR"]

GRAFANA_DIR = Path(__file__).parent / "grafana"
DS = {"type": "prometheus", "uid": "${datasource}"}


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], kind: str = "timeseries", unit: str = "",
           x: int = 0, y: int = 0, w: int = 12, h: int = 8) -> dict:
    return {"id": pid, "type": kind, "title": title, "datasource": DS,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "options": {},
            "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(exprs)]}


def _var(name: str, query: str) -> dict:
    return {"name": name, "type": "query", "datasource": DS, "query": query, "refresh": 2, "includeAll": True,
            "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}}


def _dashboard(uid: str, title: str, panels: list[dict], variables: list[dict] = ()) -> dict:
    ds_var = {"name": "datasource", "type": "datasource", "query": "prometheus", "current": {}}
    laid = []
    for i, p in enumerate(panels):
        p = dict(p)
        p["gridPos"] = {**p["gridPos"], "x": (i % 2) * 12, "y": (i // 2) * 8}
        laid.append(p)
    return {"uid": uid, "title": title, "tags": ["negahban"], "timezone": "browser", "schemaVersion": 39,
            "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": [ds_var, *variables]}, "panels": laid, "editable": True}


def _noc() -> dict:
    return _dashboard("negahban-noc", "Negahban / NOC overview", [
        _panel(1, "Monitors by state", [("sum by (state) (negahban_monitors)", "{{state}}")], "stat"),
        _panel(2, "Failing probes", [("count(probe_success == 0) or vector(0)", "failing")], "stat"),
        _panel(3, "Probe success by location", [("avg by (location) (probe_success)", "{{location}}")],
               unit="percentunit"),
        _panel(4, "Probe duration p95 by kind",
               [("quantile by (kind) (0.95, probe_duration_seconds)", "{{kind}}")], unit="s"),
        _panel(5, "Open incidents by severity", [("sum by (severity) (negahban_incidents_open)", "{{severity}}")],
               "bargauge"),
        _panel(6, "Detection latency p95 (last 24 h)",
               [("histogram_quantile(0.95, sum by (le) (negahban_detection_latency_seconds_bucket))", "p95")],
               unit="s"),
        _panel(7, "Scheduling lateness p99",
               [("histogram_quantile(0.99, sum by (le) (rate(negahban_schedule_lateness_seconds_bucket[5m])))",
                 "p99")], unit="s"),
        _panel(9, "Flip to incident p95",
               [("histogram_quantile(0.95, sum by (le) (rate(negahban_flip_to_incident_seconds_bucket[5m])))",
                 "p95")], unit="s"),
        _panel(8, "Pipeline: flips waiting, outbox depth",
               [("negahban_flips_unprocessed", "flips waiting"),
                ("sum by (status) (negahban_outbox_depth)", "outbox {{status}}")]),
    ])


def _service() -> dict:
    sel = 'customer=~"$customer", service=~"$service"'
    return _dashboard("negahban-service", "Negahban / Service detail", [
        _panel(1, "Probe success", [(f"probe_success{{{sel}}}", "{{monitor}}")], unit="percentunit"),
        _panel(2, "Probe duration", [(f"probe_duration_seconds{{{sel}}}", "{{monitor}}")], unit="s"),
        _panel(3, "State", [(f"sum by (monitor, state) (negahban_monitor_state{{{sel}}})", "{{monitor}} {{state}}")],
               "table"),
        _panel(4, "Availability over the range",
               [(f"avg by (monitor) (avg_over_time(probe_success{{{sel}}}[$__range]))", "{{monitor}}")],
               "bargauge", unit="percentunit"),
    ], [_var("customer", "label_values(probe_success, customer)"),
        _var("service", 'label_values(probe_success{customer=~"$customer"}, service)')])


def _customer() -> dict:
    sel = 'customer=~"$customer"'
    return _dashboard("negahban-customer", "Negahban / Customer uptime and SLA", [
        _panel(1, "Uptime by service over the range",
               [(f"avg by (service) (avg_over_time(probe_success{{{sel}}}[$__range]))", "{{service}}")],
               "bargauge", unit="percentunit"),
        _panel(2, "Uptime by service", [(f"avg by (service) (probe_success{{{sel}}})", "{{service}}")],
               unit="percentunit"),
        _panel(3, "Incident duration p50 / p90 (resolved, last 30 days)",
               [("histogram_quantile(0.5, sum by (le) (negahban_incident_duration_seconds_bucket))", "p50"),
                ("histogram_quantile(0.9, sum by (le) (negahban_incident_duration_seconds_bucket))", "p90")],
               unit="s"),
        _panel(4, "Response time by service",
               [(f"avg by (service) (probe_duration_seconds{{{sel}}})", "{{service}}")], unit="s"),
    ], [_var("customer", "label_values(probe_success, customer)")])


def _desk() -> dict:
    return _dashboard("negahban-desk", "Negahban / Desk SLA", [
        _panel(1, "Open tickets by priority and band",
               [("sum by (priority, band) (negahban_tickets_open)", "{{priority}} / {{band}}")], "bargauge"),
        _panel(2, "Open tickets past first-response due",
               [("sum by (band) (negahban_tickets_first_response_overdue)", "{{band}}")]),
        _panel(3, "First response p90 by band (last 30 days)",
               [("histogram_quantile(0.9, sum by (band, le) (negahban_first_response_seconds_bucket))",
                 "{{band}}")], unit="s"),
        _panel(4, "SLA breaches (last 30 days)", [("sum by (band) (negahban_sla_breaches_30d)", "{{band}}")],
               "stat"),
    ])


def _billing() -> dict:
    return _dashboard("negahban-billing", "Negahban / Billing", [
        _panel(1, "Billed this Jalali month by kind (rials)",
               [("sum by (kind) (negahban_billed_rials_month)", "{{kind}}")], "bargauge"),
        _panel(2, "Datacenter visits (last 30 days)",
               [("sum by (datacenter) (negahban_datacenter_visits_30d)", "{{datacenter}}")], "bargauge"),
        _panel(3, "Charged by kind, all time, net of reversals (rials)",
               [("sum by (kind) (negahban_ledger_billed_rials)", "{{kind}}")], "bargauge"),
        _panel(4, "Paid, all time (rials)", [("negahban_ledger_payments_rials", "paid")], "stat"),
    ])


DASHBOARDS = {"noc-overview": _noc, "service-detail": _service, "customer-uptime-sla": _customer,
              "desk-sla": _desk, "billing": _billing}


def build() -> dict[str, str]:
    return {f"{name}.json": json.dumps(fn(), indent=2, ensure_ascii=False) + "\n" for name, fn in DASHBOARDS.items()}


def write_all(directory: Path = GRAFANA_DIR) -> None:
    for name, text in build().items():
        (directory / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_all()
