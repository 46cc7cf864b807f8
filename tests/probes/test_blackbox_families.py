"""Our ``probe_*`` families beside Debian's real blackbox_exporter probing the same loopback targets (HTTP,
HTTPS with a test CA, DNS over UDP, ICMP, TCP): every family the exporter writes for a kind we write too, with
the same label names (besides ours: customer, instance, kind, location, monitor, service), and the text passes
``promtool check metrics``. The families we leave out on purpose are listed, with why, in README."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from dashboards.metrics import ProbeExposition
from monitor.catalog import MonitorConfig
from monitor.models import State
from monitor.policy import Policy
from monitor.runner import Latest
from probes import PROBERS, SPECS, make_context
from tests.loopback import wait_until_answering
from tests.probes.conftest import leaf_context, serve
from tests.probes.dns_server import DnsServer

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(BLACKBOX).exists(), reason="tools/system-deps.sh installs it")]
OURS = {"customer", "instance", "kind", "location", "monitor", "service"}
# Families blackbox_exporter writes that we do not, and why (README, "blackbox_exporter families").
LEFT_OUT: set[str] = set()
# Labels that blackbox_exporter added after Debian's 0.23 and that we write as 0.28 does.
NEWER_LABELS = {"probe_ssl_last_chain_info": {"serialnumber"}}
MODIFIED = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


async def _targets(ca, tmp: Path):
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="hello negahban", headers={"Last-Modified": format_datetime(MODIFIED, usegmt=True)})

    app = web.Application()
    app.router.add_get("/", page)
    plain, plain_port = await serve(app)
    tls_app = web.Application()
    tls_app.router.add_get("/", page)
    tls, tls_port = await serve(tls_app, ssl_context=leaf_context(ca, "localhost", days_left=90))
    dns = await DnsServer().start()
    (tmp / "ca.pem").write_bytes(ca.cert_pem.bytes())
    return [plain, tls], dns, plain_port, tls_port


BLACKBOX_YML = """
modules:
  http:
    prober: http
    timeout: 5s
    http: {{preferred_ip_protocol: ip4, tls_config: {{ca_file: {ca}}}}}
  dns:
    prober: dns
    timeout: 5s
    dns: {{query_name: test, query_type: SOA, transport_protocol: udp, preferred_ip_protocol: ip4}}
  icmp:
    prober: icmp
    timeout: 5s
    icmp: {{preferred_ip_protocol: ip4}}
  tcp:
    prober: tcp
    timeout: 5s
    tcp: {{preferred_ip_protocol: ip4}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _families(text: str) -> dict[str, set[frozenset[str]]]:
    out: dict[str, set[frozenset[str]]] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name.startswith("probe_") and fam.samples:
            out.setdefault(fam.name, set()).update(frozenset(s.labels) - OURS for s in fam.samples)
    return out


async def _blackbox(http: aiohttp.ClientSession, port: int, module: str, target: str) -> str:
    async with http.get(f"http://127.0.0.1:{port}/probe", params={"module": module, "target": target}) as resp:
        return await resp.text()


async def test_our_families_and_label_names_match_the_real_blackbox_exporter(ca, tmp_path):
    servers, dns, plain_port, tls_port = await _targets(ca, tmp_path)
    (tmp_path / "blackbox.yml").write_text(BLACKBOX_YML.format(ca=tmp_path / "ca.pem"), encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen([BLACKBOX, f"--config.file={tmp_path / 'blackbox.yml'}",  # noqa: ASYNC220
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await asyncio.to_thread(wait_until_answering, f"http://127.0.0.1:{port}/metrics", proc)
    ctx = await make_context(trust_ca_pem=ca.cert_pem.bytes())
    cases = {  # ours: (kind, spec fields); theirs: (module, target)
        "http": (("http", {"target": f"http://127.0.0.1:{plain_port}/"}), ("http", f"http://127.0.0.1:{plain_port}/")),
        "https": (("http", {"target": f"https://localhost:{tls_port}/"}), ("http", f"https://localhost:{tls_port}/")),
        "dns": (("dns", {"target": "test", "record_type": "SOA", "resolver": f"127.0.0.1:{dns.port}"}),
                ("dns", f"127.0.0.1:{dns.port}")),
        "icmp": (("icmp", {"target": "127.0.0.1", "count": 1}), ("icmp", "127.0.0.1")),
        "tcp": (("tcp", {"target": f"127.0.0.1:{plain_port}"}), ("tcp", f"127.0.0.1:{plain_port}")),
    }
    latest, theirs = {}, {}
    try:
        async with aiohttp.ClientSession() as http:
            for i, (name, ((kind, fields), (module, target))) in enumerate(cases.items()):
                spec = SPECS[kind](**fields)
                result = await PROBERS[kind](spec, ctx)
                assert result.ok, (name, result)
                config = MonitorConfig(i, name, kind, spec, 60.0, Policy(),
                                       {"monitor": name, "kind": kind, "instance": spec.target})
                latest[i] = Latest(config, result, State.UP)
                text = await _blackbox(http, port, module, target)
                assert "\nprobe_success 1" in text, (name, text)
                theirs[name] = _families(text)
    finally:
        proc.terminate()
        proc.wait(10)
        await ctx.close()
        await dns.stop()
        for runner in servers:
            await runner.cleanup()
    body = ProbeExposition(lambda: latest, lambda: 0.0).render().decode()
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True,  # noqa: ASYNC221
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    for name in cases:
        mine = _families("\n".join(line for line in body.splitlines()
                                   if f'monitor="{name}"' in line or line.startswith("#")) + "\n")
        missing = set(theirs[name]) - set(mine) - LEFT_OUT
        print(f"{name}: blackbox_exporter {len(theirs[name])} families, ours {len(mine)}, "
              f"left out {sorted(set(theirs[name]) - set(mine))}")
        assert not missing, f"{name}: blackbox_exporter writes {sorted(missing)} and we do not"
        for family, label_sets in theirs[name].items():
            if family in mine:
                newer = NEWER_LABELS.get(family, set())
                assert label_sets == {ls - newer for ls in mine[family]}, (name, family, label_sets, mine[family])
    # And the values mean what blackbox's mean, where both saw the same thing.
    samples = {(s.name, s.labels.get("monitor"), s.labels.get("phase")): s.value
               for fam in text_string_to_metric_families(body) for s in fam.samples}
    assert samples[("probe_http_status_code", "http", None)] == 200
    assert samples[("probe_http_content_length", "http", None)] == len("hello negahban")
    assert samples[("probe_http_last_modified_timestamp_seconds", "http", None)] == MODIFIED.timestamp()
    assert samples[("probe_http_ssl", "https", None)] == 1 and samples[("probe_http_ssl", "http", None)] == 0
    expiry = samples[("probe_ssl_earliest_cert_expiry", "https", None)]
    assert abs(expiry - (datetime.now(UTC) + timedelta(days=90)).timestamp()) < 3600
    assert samples[("probe_dns_serial", "dns", None)] == 2026120201
    assert samples[("probe_dns_answer_rrs", "dns", None)] == 1
    assert samples[("probe_ip_protocol", "tcp", None)] == 4
    assert samples[("probe_icmp_reply_hop_limit", "icmp", None)] == 64
