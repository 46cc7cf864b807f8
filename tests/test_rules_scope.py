"""Every shipped alert rule reads only Negahban's own scrape job and carries ``origin: negahban`` (so the
receiver never turns it back into an incident, and a blackbox_exporter job beside us cannot fire it). A rule
added without them fails here, not in production."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parent.parent / "dashboards" / "prometheus" / "negahban-rules.yml"
SELECTOR = re.compile(r"\b((?:negahban|probe)_[a-z_]+|up)\b(\{[^}]*\})?(?!\s*\()")


def _rules():
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        yield from group["rules"]


def test_every_rule_carries_the_origin_label():
    missing = [r["alert"] for r in _rules() if r.get("labels", {}).get("origin") != "negahban"]
    assert not missing


def test_every_series_a_rule_reads_is_scoped_to_the_negahban_job():
    unscoped = []
    for rule in _rules():
        for name, selector in SELECTOR.findall(rule["expr"]):
            if name in {"by", "bool"} or 'job="negahban"' not in selector:
                unscoped.append((rule["alert"], name))
    assert not unscoped
