"""The community blackbox_exporter dashboards 7587, 13659 and 14928 (tests/fixtures/grafana/, sources in its
SOURCES.md) against Negahban, and in the same run against Debian's real blackbox_exporter probing the same
loopback targets (HTTP, HTTPS with a test CA, TCP, ICMP).

Two real Prometheus servers: one scrapes Negahban's ``/metrics`` with the README's job (``honor_labels``, a NOC
token), the other runs the ``/probe`` jobs of blackbox_exporter's README against the exporter. Each dashboard's
queries are evaluated as Grafana would send them (tests/grafana_eval.py): every variable at "All", and every
copy of a repeated panel. The figures are printed; the test holds Negahban to at least 95 % of the panel queries
with data, the same instances as the exporter, and one series per target wherever the exporter has one."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from monitor.accounts import Role, create_user, issue_token
from monitor.settings import load_settings
from negahban.service import build_service
from tests.grafana_eval import Prometheus, dashboard_queries, instance_values
from tests.loopback import stop_process, wait_until_answering
from tests.probes.test_blackbox_families import BLACKBOX, BLACKBOX_YML, _targets

PROMETHEUS = Path("/usr/bin/prometheus")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "grafana"
DASHBOARDS = {7587: "7587-prometheus-blackbox-exporter.json", 13659: "13659-blackbox-exporter-http-prober.json",
              14928: "14928-prometheus-blackbox-exporter.json"}
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not PROMETHEUS.exists() or not Path(BLACKBOX).exists(),
                                                          reason="tools/system-deps.sh installs them")]
# Dashboard 14928 reads a ``target`` label. Its users add it in the blackbox job's relabelling; for Negahban's
# job the same label comes from the exposition's ``instance`` (README, "Community dashboards").
TARGET_LABEL_BLACKBOX = "{source_labels: [__param_target], target_label: target}"
TARGET_LABEL_NEGAHBAN = "metric_relabel_configs: [{source_labels: [instance], target_label: target}]"
BOUND_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inventory(tmp: Path, plain_port: int, tls_port: int) -> Path:
    path = tmp / "inventory.yaml"
    path.write_text(f"""
datacenters: [{{name: dc1, location: tehran}}]
servers: [{{name: web1, address: 127.0.0.1, datacenter: dc1, service: acme-web}}]
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: acme-http, kind: http, target: "http://127.0.0.1:{plain_port}/", server: web1, service: acme-web,
     interval: 5}}
  - {{name: acme-https, kind: http, target: "https://localhost:{tls_port}/", server: web1, service: acme-web,
     interval: 5}}
  - {{name: acme-tcp, kind: tcp, target: "127.0.0.1:{plain_port}", server: web1, service: acme-web, interval: 5}}
  - {{name: acme-ping, kind: icmp, target: "127.0.0.1", server: web1, service: acme-web, interval: 5}}
""", encoding="utf-8")
    return path


def _probe_job(name: str, module: str, targets: list[str], exporter: str) -> str:
    # blackbox_exporter's README relabelling, and the ``target`` label dashboard 14928 reads.
    return f"""
  - job_name: {name}
    metrics_path: /probe
    params: {{module: [{module}]}}
    static_configs: [{{targets: {json.dumps(targets)}}}]
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {TARGET_LABEL_BLACKBOX}
      - {{target_label: __address__, replacement: "{exporter}"}}
"""


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))  # noqa: SIM115


def _prometheus(tmp: Path, name: str, scrape_configs: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    config = tmp / f"{name}.yml"
    config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n" + scrape_configs,
                      encoding="utf-8")
    proc = _start([str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp / (name + '-tsdb')}",
                   f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], tmp / f"{name}.log")
    return proc, f"http://127.0.0.1:{port}"




async def _evaluate(prom: Prometheus) -> dict[int, tuple[list, list]]:
    """Per dashboard: [(query, series)] with every variable at All, and the same for repeated copies."""
    out = {}
    for gnet, file in DASHBOARDS.items():
        at_all, repeated = await dashboard_queries(str(gnet), json.loads((FIXTURES / file).read_text()), prom)
        out[gnet] = ([(q, await prom.instant(q.expr)) for q in at_all],
                     [(q, await prom.instant(q.expr)) for q in repeated])
    return out


def _with_data(results: list) -> int:
    return sum(1 for _, series in results if series)


SAME_VALUE = ("probe_success", "probe_http_status_code", "probe_http_version", "probe_http_ssl", "probe_ip_protocol")


def _values(results: list) -> dict[tuple, str]:
    """(dashboard, query, target) -> value, for the queries whose value must be the exporter's."""
    out = {}
    for q, series in results:
        if any(q.template.startswith(name + "{") for name in SAME_VALUE):
            for s in series:
                out[(q.dashboard, q.template, s["metric"].get("instance") or s["metric"].get("target"))] = s["value"][1]
    return out


def _per_target(results: list) -> dict[tuple, int]:
    """(dashboard, panel, query, repeated value, target) -> number of series, for the repeated copies."""
    counts: Counter = Counter()
    for q, series in results:
        for s in series:
            target = s["metric"].get("instance") or s["metric"].get("target") or q.repeat_value
            counts[(q.dashboard, q.panel, q.template, q.repeat_value, target)] += 1
    return counts


async def test_community_dashboards_find_in_negahban_what_they_find_in_blackbox_exporter(ca, tmp_path):
    servers, dns, plain_port, tls_port = await _targets(ca, tmp_path)
    (tmp_path / "blackbox.yml").write_text(BLACKBOX_YML.format(ca=tmp_path / "ca.pem"), encoding="utf-8")
    bb_port = _free_port()
    procs = [_start([BLACKBOX, f"--config.file={tmp_path / 'blackbox.yml'}",
                     f"--web.listen-address=127.0.0.1:{bb_port}", "--log.level=error"], tmp_path / "blackbox.log")]
    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/ngb.db", listen_port=_free_port(),
                             inventory_file=str(_inventory(tmp_path, plain_port, tls_port)), cookie_secure=False,
                             trust_ca_file=str(tmp_path / "ca.pem"))
    svc = await build_service(settings)
    await svc.start()
    try:
        async with svc.sessionmaker() as s, s.begin():
            scraper = await create_user(s, "prometheus", Role.NOC)
            token = await issue_token(s, scraper.id, "scrape", svc.clock.now())
        (tmp_path / "negahban.token").write_text(token, encoding="utf-8")
        await asyncio.to_thread(wait_until_answering, f"http://127.0.0.1:{bb_port}/metrics", procs[0])
        exporter = f"127.0.0.1:{bb_port}"
        http_targets = [f"http://127.0.0.1:{plain_port}/", f"https://localhost:{tls_port}/"]
        expected = sorted([*http_targets, f"127.0.0.1:{plain_port}", "127.0.0.1"])
        theirs_proc, theirs_url = _prometheus(tmp_path, "prom-blackbox", (
            _probe_job("blackbox_http", "http", http_targets, exporter)
            + _probe_job("blackbox_tcp", "tcp", [f"127.0.0.1:{plain_port}"], exporter)
            + _probe_job("blackbox_icmp", "icmp", ["127.0.0.1"], exporter)))
        ours_proc, ours_url = _prometheus(tmp_path, "prom-negahban", f"""
  - job_name: negahban
    honor_labels: true
    authorization: {{credentials_file: {tmp_path / 'negahban.token'}}}
    static_configs: [{{targets: ["127.0.0.1:{settings.listen_port}"]}}]
    {TARGET_LABEL_NEGAHBAN}
""")
        procs += [theirs_proc, ours_proc]
        await svc.scheduler.reload()
        for cfg in list(svc.scheduler.catalog.values()):
            await svc.runner.check(cfg)
        async with aiohttp.ClientSession() as http:
            ours, theirs = Prometheus(http, ours_url), Prometheus(http, theirs_url)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + BOUND_S
            ours_instances = their_instances = mine = exporter_side = None
            # Poll (both Prometheus servers scrape every second) until the two sides agree or the bound passes.
            while True:
                try:
                    ours_instances, their_instances = await instance_values(ours), await instance_values(theirs)
                    mine, exporter_side = await _evaluate(ours), await _evaluate(theirs)
                except (aiohttp.ClientError, AssertionError):
                    mine = exporter_side = None
                settled = mine is not None and ours_instances == their_instances == expected and all(
                    _with_data(mine[g][0]) >= _with_data(exporter_side[g][0]) for g in DASHBOARDS)
                if settled or loop.time() > deadline:
                    break
                await asyncio.sleep(1.0)  # polling interval under a deadline: scrapes land once a second
    finally:
        await svc.stop()
        for proc in procs:
            stop_process(proc)
        await dns.stop()
        for runner in servers:
            await runner.cleanup()
    assert mine is not None, "Prometheus did not answer"
    assert ours_instances == their_instances, (ours_instances, their_instances)
    print(f"instances on both sides: {ours_instances}")
    total = {side: [0, 0] for side in ("negahban", "blackbox_exporter")}
    for gnet in DASHBOARDS:
        for side, results in (("negahban", mine[gnet][0]), ("blackbox_exporter", exporter_side[gnet][0])):
            total[side][0] += _with_data(results)
            total[side][1] += len(results)
        print(f"dashboard {gnet}: queries with data, variables at All: negahban {_with_data(mine[gnet][0])}/"
              f"{len(mine[gnet][0])}, blackbox_exporter {_with_data(exporter_side[gnet][0])}/"
              f"{len(exporter_side[gnet][0])}; repeated copies: negahban {_with_data(mine[gnet][1])}/"
              f"{len(mine[gnet][1])}, blackbox_exporter {_with_data(exporter_side[gnet][1])}/"
              f"{len(exporter_side[gnet][1])}")
        empty = [f"{q.panel}: {q.template}" for q, series in mine[gnet][0] if not series]
        if empty:
            print(f"  without data against negahban: {empty}")
    print(f"all three: negahban {total['negahban'][0]}/{total['negahban'][1]}, "
          f"blackbox_exporter {total['blackbox_exporter'][0]}/{total['blackbox_exporter'][1]}")
    assert total["negahban"][0] >= 0.95 * total["negahban"][1], total
    # Status, code, HTTP version, TLS and IP protocol read the same from both.
    ours_values = _values([r for g in DASHBOARDS for r in mine[g][0]])
    their_values = _values([r for g in DASHBOARDS for r in exporter_side[g][0]])
    assert ours_values == their_values, {k: (ours_values.get(k), v) for k, v in their_values.items()
                                         if ours_values.get(k) != v}
    print(f"{len(their_values)} (query, target) values compared: equal")
    # Where the exporter draws one series for a target in a repeated panel, so does Negahban.
    ours_counts = _per_target([r for g in DASHBOARDS for r in mine[g][1]])
    their_counts = _per_target([r for g in DASHBOARDS for r in exporter_side[g][1]])
    differ = {k: (ours_counts.get(k, 0), n) for k, n in their_counts.items() if n == 1 and ours_counts.get(k, 0) != 1}
    print(f"repeated panels, per target: {len(their_counts)} (panel, target) pairs from the exporter, "
          f"{sum(1 for k in their_counts if ours_counts.get(k) == their_counts[k])} with the same number of series "
          f"from negahban")
    assert not differ, "(negahban series, exporter series) where the exporter has one:\n" + "\n".join(
        f"{k}: {v}" for k, v in differ.items())
