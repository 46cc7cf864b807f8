"""``negahban import``: Uptime Kuma, Gatus and blackbox_exporter configurations become an inventory YAML that
``inventory apply --check`` accepts, with what could not be mapped listed and the reason given. Every test runs
the installed console script in a subprocess on the fixtures in tests/fixtures/importers (see its README)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.test_cli import _cli, _one_line

FIX = Path(__file__).parent / "fixtures" / "importers"
SOURCES = {
    "uptime-kuma": [FIX / "kuma-backup.json"],
    "gatus": [FIX / "gatus.yaml"],
    "blackbox": [FIX / "blackbox.yml", FIX / "prometheus.yml"],
}


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/x.db"


def _import(tmp_path: Path, source: str, files: list[Path]) -> tuple[str, dict, list[str]]:
    """Run the importer to a file; return its text, its monitors by name, and the stderr lines."""
    out = tmp_path / f"{source}.yaml"
    proc = _cli(["import", source, *map(str, files), "-o", str(out)], _url(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = out.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    return text, {m["name"]: m for m in doc["monitors"]}, proc.stderr.splitlines()


@pytest.mark.parametrize("source", list(SOURCES))
def test_each_importer_writes_a_file_inventory_check_accepts(tmp_path, source):
    text, monitors, _ = _import(tmp_path, source, SOURCES[source])
    path = tmp_path / f"{source}.yaml"
    check = _cli(["inventory", "apply", "--check", str(path)], _url(tmp_path))
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == f"{path}: valid ({len(monitors)} monitors)"
    assert len(monitors) >= 6
    # To stdout without -o: the same document.
    again = _cli(["import", source, *map(str, SOURCES[source])], _url(tmp_path))
    assert again.returncode == 0 and again.stdout == text


def test_the_kuma_import_applies_to_a_real_database(tmp_path):
    _import(tmp_path, "uptime-kuma", SOURCES["uptime-kuma"])
    applied = _cli(["inventory", "apply", str(tmp_path / "uptime-kuma.yaml")], _url(tmp_path))
    assert applied.returncode == 0, applied.stderr
    assert "monitors=12" in applied.stdout.split(), applied.stdout


def test_kuma_monitors_map_to_our_kinds(tmp_path):
    text, m, err = _import(tmp_path, "uptime-kuma", SOURCES["uptime-kuma"])
    kw = m["Shop-health-keyword"]
    assert kw["kind"] == "http" and kw["body_rules"] == [{"pattern": "database: ok", "present": True}]
    assert kw["expected_status"] == [*range(200, 300), 301]
    assert kw["tls_verify"] is False and kw["follow_redirects"] is False and kw["interval"] == 30
    assert m["No-maintenance-banner"]["body_rules"] == [{"pattern": "Under maintenance", "present": False}]
    assert "expected_status" not in m["shop.example.com"]  # Kuma's 200-299 is our default
    # maxretries 2, retryInterval 60: DOWN on the third failing check, retried every 60 s.
    assert m["shop.example.com"]["policy"] == {"down_after": 3, "retry_interval_s": 60}
    assert kw["policy"] == {"down_after": 1}
    assert m["API-status-json"]["json_path"] == "$.data.status"
    assert m["API-status-json"]["json_equals"] == "ok"
    assert m["Gateway-ping"] == {"name": "Gateway-ping", "kind": "icmp", "target": "192.0.2.1", "interval": 20}
    assert m["SSH-on-web1"]["kind"] == "tcp" and m["SSH-on-web1"]["target"] == "web1.example.com:22"
    dns = m["MX-of-example.com"]
    assert (dns["kind"], dns["target"], dns["record_type"], dns["resolver"]) == ("dns", "example.com", "MX", "1.1.1.1")
    hb = m["Nightly-backup-cron"]
    assert hb["kind"] == "heartbeat" and hb["period_s"] == 86400 and "interval" not in hb
    assert hb["token_sha256"] == hashlib.sha256(b"Zx81mQpT0a").hexdigest()
    db = m["Shop-database"]
    assert (db["kind"], db["target"], db["user"]) == ("mysql", "db1.example.com:3306", "monitor")
    assert "s3cret" not in text  # a password in a connection string is not copied into a file for review
    pg = m["Billing-postgres"]
    assert (pg["kind"], pg["target"], pg["database"], pg["enabled"]) == ("postgres", "db2.example.com:5433",
                                                                         "billing", False)
    assert m["Cache"]["kind"] == "redis" and m["Cache"]["target"] == "cache.example.com:6379"
    # Two Kuma monitors called shop.example.com: both kept, under distinct names.
    assert m["shop.example.com-2"]["kind"] == "tcp"
    # The Kuma group became a customer and a service, and its four monitors belong to it.
    doc = yaml.safe_load(text)
    assert [c["name"] for c in doc["customers"]] == ["Shop-customers"]
    assert sorted(n for n, e in m.items() if e.get("service") == "Shop-customers") == [
        "Shop-database", "Shop-health-keyword", "shop.example.com", "shop.example.com-2"]
    # What could not be mapped: listed with a reason, on stderr and at the top of the file.
    skipped = [line for line in err if "not imported:" in line]
    assert len(skipped) == 3
    for name, reason in (("nginx container", "no docker probe"), ("CS server", "no steam probe"),
                         ("Down is good", "upside-down")):
        assert any(name in line and reason in line for line in skipped), skipped
        assert any(name in line and reason in line for line in text.splitlines() if line.startswith("#   "))
    assert "# Not imported (3):" in text


def test_gatus_endpoints_and_conditions_map(tmp_path):
    text, m, err = _import(tmp_path, "gatus", SOURCES["gatus"])
    web = m["core-website"]
    assert web["kind"] == "http" and web["expected_status"] == [200] and web["interval"] == 300
    assert (web["json_path"], web["json_equals"]) == ("$.status", "UP")
    assert web["degraded_latency_s"] == 0.3 and web["cert_expiry_warn_days"] == 2
    assert m["core-front-end"]["body_rules"] == [{"pattern": "<h1>Example Domain</h1>"}]
    insecure = m["make-sure-header-is-rendered"]
    assert insecure["expected_status"] == list(range(200, 400)) and insecure["tls_verify"] is False
    assert insecure["timeout_s"] == 10
    created = m["core-api-created"]
    assert created["expected_status"] == [200, 201] and created["method"] == "POST"
    assert created["headers"] == {"Content-Type": "application/json"}
    assert any("alerting:" in line and "not imported" in line for line in err)
    assert m["core-ext-ep-test"]["kind"] == "tcp" and m["core-ext-ep-test"]["target"] == "example.org:80"
    assert m["icmp-ping"]["kind"] == "icmp" and m["icmp-ping"]["target"] == "example.org"
    dns = m["example-dns-query"]
    assert (dns["kind"], dns["target"], dns["resolver"]) == ("dns", "example.com", "8.8.8.8")
    assert dns["expected_values"] == ["93.184.215.14"] and dns["expected_rcode"] == "NOERROR"
    smtp = m["starttls-smtp-example"]
    assert (smtp["kind"], smtp["target"], smtp["tls"], smtp["interval"]) == ("smtp", "smtp.gmail.com:587",
                                                                             "starttls", 1800)
    assert m["tls-example"]["kind"] == "tcp" and m["tls-example"]["tls"] is True
    assert "ssh-example" not in m
    assert any("ssh-example" in line and "no ssh probe" in line for line in err if "not imported:" in line)
    assert any("len([BODY]) > 100" in line and "not mapped" in line for line in err)
    assert {e.get("service") for n, e in m.items() if n.startswith("core-")} == {"core"}


def test_blackbox_jobs_and_modules_map(tmp_path):
    text, m, err = _import(tmp_path, "blackbox", SOURCES["blackbox"])
    web = m["blackbox:https-prometheus.io"]
    assert (web["kind"], web["target"], web["ip_version"], web["timeout_s"], web["interval"]) == (
        "http", "https://prometheus.io", 4, 5, 30)  # global scrape_interval 30s
    post = m["api-post:https-api.example.com-v1-ping"]
    assert post["method"] == "POST" and post["expected_status"] == [200, 201] and post["interval"] == 60
    assert m["ssh:web2.example.com:22"]["expect"] == "^SSH-2.0-"
    dns = m["dns:1.1.1.1:53"]  # blackbox's target is the server asked
    assert (dns["kind"], dns["target"], dns["resolver"]) == ("dns", "example.com", "1.1.1.1:53")
    assert m["ping:192.0.2.1"]["kind"] == "icmp"
    assert m["body:https-shop.example.com-health"]["body_rules"] == [{"pattern": "status.*ok", "regex": True}]
    assert not any(n.startswith("node") for n in m)  # not a /probe job
    assert any("grpc.example.com:443" in line and "prober" in line for line in err if "not imported:" in line)
    assert len(m) == 10


def test_gatus_groups_that_clash_leave_monitors_without_a_service(tmp_path):
    cfg = tmp_path / "gatus.yaml"
    cfg.write_text(yaml.safe_dump({"endpoints": [
        {"name": "a", "group": "web sites", "url": "https://a.example.com/", "conditions": ["[STATUS] == 200"]},
        {"name": "b", "group": "web-sites", "url": "https://b.example.com/", "conditions": ["[STATUS] == 200"]},
    ]}))
    text, m, err = _import(tmp_path, "gatus", [cfg])
    assert "customers" not in yaml.safe_load(text)
    assert all("service" not in e for e in m.values()) and len(m) == 2
    assert any("groups not mapped" in line for line in err)
    assert _cli(["inventory", "apply", "--check", str(tmp_path / "gatus.yaml")], _url(tmp_path)).returncode == 0


def test_an_entry_our_spec_refuses_is_listed_not_written(tmp_path):
    backup = tmp_path / "kuma.json"
    backup.write_text(json.dumps({"monitorList": [
        {"id": 1, "name": "ok", "type": "ping", "hostname": "192.0.2.9"},
        {"id": 2, "name": "bad resolver", "type": "dns", "hostname": "example.com",
         "dns_resolve_server": "not a resolver!", "dns_resolve_type": "A"},
        {"id": 3, "name": "ok", "type": "port", "hostname": "192.0.2.9", "port": 25},
        {"id": 4, "name": "سایت فروشگاه", "type": "ping", "hostname": "192.0.2.10"},
        {"id": 5, "name": "core switch", "type": "snmp", "hostname": "192.0.2.2", "snmp_oid": "1.3.6.1.2.1.1.3.0"},
    ]}))
    text, m, err = _import(tmp_path, "uptime-kuma", [backup])
    assert sorted(m) == ["kuma-4", "ok", "ok-2"]  # a Persian name cannot be a monitor name: the id is used
    assert "سایت فروشگاه" in text  # and the original name is kept in the comment above it
    assert any("bad resolver" in line and "resolver" in line for line in err if "not imported:" in line)
    assert any("core switch" in line and "add it by hand" in line for line in err if "not imported:" in line)


@pytest.mark.parametrize("source, content, field", [
    ("uptime-kuma", '{"monitorList": [{"name": "x", "type": "http", "url": "https://a/"}, {"name": "y"}]}',
     "monitorList[1].type"),
    ("uptime-kuma", '{"monitorList": [{"name": "x", "type": "port", "hostname": "h"}]}', "monitorList[0].port"),
    ("uptime-kuma", '{"monitors": []}', "monitorList"),
    ("uptime-kuma", '{"monitorList": [', ""),
    ("gatus", "endpoints:\n  - name: a\n    url: https://a/\n    interval: 5 minutes\n", "endpoints[0].interval"),
    ("gatus", "endpoints:\n  - name: a\n", "endpoints[0].url"),
    ("gatus", "endpoints: [\n", "line"),
])
def test_a_malformed_file_is_one_line_naming_file_and_field(tmp_path, source, content, field):
    bad = tmp_path / "bad.input"
    bad.write_text(content)
    line = _one_line(_cli(["import", source, str(bad)], _url(tmp_path)), 2)
    assert line.startswith(f"negahban: error: {bad}") and field in line, line


def test_a_blackbox_job_naming_a_missing_module_is_one_line(tmp_path):
    prom = tmp_path / "prometheus.yml"
    prom.write_text(yaml.safe_dump({"scrape_configs": [
        {"job_name": "x", "metrics_path": "/probe", "params": {"module": ["nope"]},
         "static_configs": [{"targets": ["https://a.example.com/"]}]}]}))
    line = _one_line(_cli(["import", "blackbox", str(FIX / "blackbox.yml"), str(prom)], _url(tmp_path)), 2)
    assert f"{prom}: scrape_configs[0].params.module" in line and "'nope'" in line, line
