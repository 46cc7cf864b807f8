"""The Prometheus and Grafana assets: rules pass promtool, dashboards are what the builder writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dashboards.grafana_build import GRAFANA_DIR, build

PROM_DIR = Path(__file__).resolve().parent.parent / "dashboards" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def panel_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if t.get("expr")]


def _promtool(*args: str) -> subprocess.CompletedProcess:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool missing: apt-get install prometheus")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_alert_rules_pass_promtool_check_rules():
    for rules in sorted(PROM_DIR.glob("*rules.yml")):
        result = _promtool("check", "rules", str(rules))
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_promtool_unit_tests():
    tests = sorted((PROM_DIR / "tests").glob("*.test.yml"))
    assert tests
    result = _promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_prometheus_config_is_valid(tmp_path):
    """As installed: beside its rules, with the scrape token at the path the example names (made here)."""
    token = tmp_path / "negahban.token"
    token.write_text("example-token", encoding="utf-8")
    config = (PROM_DIR / "prometheus.yml").read_text(encoding="utf-8")
    assert "/etc/prometheus/negahban.token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/negahban.token", str(token)),
                                             encoding="utf-8")
    for rules in PROM_DIR.glob("*rules.yml"):
        (tmp_path / rules.name).write_text(rules.read_text(encoding="utf-8"), encoding="utf-8")
    result = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_dashboards_are_what_the_builder_writes():
    built = build()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in GRAFANA_DIR.glob("*.json")}
    assert on_disk == built, "run: python -m dashboards.grafana_build"


@pytest.mark.parametrize("name", sorted(build()))
def test_every_dashboard_panel_has_a_query_and_a_unique_id(name):
    dash = json.loads(build()[name])
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p.get("targets") for p in dash["panels"])
    assert len(panel_exprs(dash)) >= len(ids)
