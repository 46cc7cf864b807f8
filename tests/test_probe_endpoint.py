"""``/probe`` as blackbox_exporter's: the README's Prometheus job (blackbox.yml modules, the relabelling from
blackbox's README) pointed once at Negahban and once at Debian's blackbox_exporter, scraping the same loopback
targets, gets the same metric families per target. Plus the endpoint's refusals."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from dashboards.blackbox_modules import parse_modules, parse_networks, target_allowed
from monitor.accounts import Role, create_user, issue_token
from monitor.errors import InvalidInput
from monitor.settings import load_settings
from negahban.service import build_service

BLACKBOX = Path("/usr/bin/prometheus-blackbox-exporter")
PROMETHEUS = Path("/usr/bin/prometheus")
BLACKBOX_YML = """
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http: {preferred_ip_protocol: ip4}
  http_keyword:
    prober: http
    http: {preferred_ip_protocol: ip4, fail_if_body_not_matches_regexp: ["negahban"]}
  tcp_connect:
    prober: tcp
    tcp: {preferred_ip_protocol: ip4}
  icmp:
    prober: icmp
    icmp: {preferred_ip_protocol: ip4}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def world(tmp_path):
    async def page(request):
        return web.Response(text="hello negahban")

    app = web.Application()
    app.router.add_get("/{path:.*}", page)
    target = web.AppRunner(app)
    await target.setup()
    await web.TCPSite(target, "127.0.0.1", 0).start()
    (tmp_path / "blackbox.yml").write_text(BLACKBOX_YML, encoding="utf-8")
    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/ngb.db", listen_port=_free_port(),
                             cookie_secure=False, blackbox_config=str(tmp_path / "blackbox.yml"),
                             probe_allow="127.0.0.0/8")
    svc = await build_service(settings)
    await svc.start()
    async with svc.sessionmaker() as s, s.begin():
        user = await create_user(s, "prometheus", Role.NOC)
        token = await issue_token(s, user.id, "probe", svc.clock.now())
    try:
        yield {"svc": svc, "token": token, "target_port": target.addresses[0][1], "tmp": tmp_path,
               "base": f"http://127.0.0.1:{settings.listen_port}"}
    finally:
        await svc.stop()
        await target.cleanup()


async def _get(world, path, token=True, **headers):
    if token:
        headers["Authorization"] = f"Bearer {world['token']}"
    async with aiohttp.ClientSession() as http, http.get(world["base"] + path, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_the_endpoint_answers_like_blackbox_and_refuses_what_it_must(world):
    port = world["target_port"]
    status, text = await _get(world, f"/probe?module=http_keyword&target=http://127.0.0.1:{port}/")
    assert status == 200 and "\nprobe_success 1\n" in text and "probe_http_status_code 200" in text
    assert "probe_failed_due_to_regex 0" in text and 'customer="' not in text
    status, _ = await _get(world, f"/probe?module=tcp_connect&target=127.0.0.1:{port}", token=False)
    assert status == 401
    status, text = await _get(world, f"/probe?module=nope&target=127.0.0.1:{port}")
    assert status == 404 and "NEGAHBAN_BLACKBOX_CONFIG" in text
    status, text = await _get(world, "/probe?module=tcp_connect&target=10.0.0.1:22")
    assert status == 400 and '"field": "target"' in text
    status, text = await _get(world, "/probe?module=icmp&target=169.254.169.254")
    assert status == 400
    closed = _free_port()
    status, text = await _get(world, f"/probe?module=tcp_connect&target=127.0.0.1:{closed}")
    assert status == 200 and "\nprobe_success 0\n" in text


@pytest.mark.parametrize(("address", "allowed", "ok"), [
    ("8.8.8.8", "", True), ("127.0.0.1", "", False), ("10.1.2.3", "", False), ("169.254.169.254", "", False),
    ("::1", "", False), ("::ffff:127.0.0.1", "127.0.0.0/8", True), ("::ffff:10.0.0.1", "", False),
    ("10.1.2.3", "10.0.0.0/8", True), ("192.168.1.1", "10.0.0.0/8", False), ("224.0.0.1", "", False),
])
def test_targets_reach_non_public_addresses_only_inside_the_allowed_networks(address, allowed, ok):
    assert target_allowed(address, parse_networks(allowed)) is ok


@pytest.mark.parametrize(("text", "field"), [
    ("modules: {a: {prober: ftp}}", "modules.a.prober"),
    ("modules: {a: {prober: http, http: {compression: gzip}}}", "modules.a.http.compression"),
    ("modules: {a: {prober: http, timeout: soon}}", "modules.a.timeout"),
    ("modules: {a: {prober: dns, dns: {query_type: A}}}", "modules.a.dns.query_name"),
    ("modules: {a: {prober: http, http: {valid_status_codes: [999]}}}", "modules.a.http.valid_status_codes"),
    ("modules: [1, 2]", "modules"), ("modules: {a: {prober: http", "blackbox.yml"),
])
def test_a_blackbox_yml_we_cannot_honour_is_refused_naming_the_option(text, field):
    with pytest.raises(InvalidInput) as err:
        parse_modules(text)
    assert err.value.field.startswith(field), err.value.field


@pytest.mark.integration
@pytest.mark.skipif(not (BLACKBOX.exists() and PROMETHEUS.exists()), reason="tools/system-deps.sh installs both")
async def test_the_same_prometheus_probe_job_gets_the_same_families_from_negahban_and_blackbox(world):
    tmp, port = world["tmp"], world["target_port"]
    bb_port, prom_port = _free_port(), _free_port()
    (tmp / "token").write_text(world["token"], encoding="utf-8")
    targets = {"http_2xx": f"http://127.0.0.1:{port}/", "tcp_connect": f"127.0.0.1:{port}", "icmp": "127.0.0.1"}

    def job(name: str, address: str, auth: str) -> str:
        # The job from blackbox_exporter's README, one per module; only the exporter's address differs.
        return "".join(f"""
  - job_name: {name}-{module}
    metrics_path: /probe
    params: {{module: [{module}]}}{auth}
    static_configs: [{{targets: ["{target}"]}}]
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "{address}"}}
""" for module, target in targets.items())

    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:"
        + job("negahban", world["base"].removeprefix("http://"), f"\n    authorization: {{credentials_file: {tmp / 'token'}}}")
        + job("blackbox", f"127.0.0.1:{bb_port}", ""), encoding="utf-8")
    bb = subprocess.Popen([str(BLACKBOX), f"--config.file={tmp / 'blackbox.yml'}",  # noqa: ASYNC220
                           f"--web.listen-address=127.0.0.1:{bb_port}"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    prom = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp / 'prometheus.yml'}",  # noqa: ASYNC220
                             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found: dict[str, set[str]] = {}
    try:
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60  # bounded: a 1 s scrape interval
            while loop.time() < deadline:
                try:
                    async with http.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={
                            "query": 'group by (job, __name__) ({__name__=~"probe_.+"})'}) as resp:
                        result = (await resp.json())["data"]["result"]
                except (aiohttp.ClientError, KeyError, ValueError):
                    result = []
                found = {}
                for row in result:
                    found.setdefault(row["metric"]["job"], set()).add(row["metric"]["__name__"])
                if len(found) == 2 * len(targets):
                    break
                await asyncio.sleep(0.5)  # polling interval under the deadline
    finally:
        prom.terminate()
        bb.terminate()
        prom.wait(20)
        bb.wait(10)
    for module in targets:
        theirs, ours = found.get(f"blackbox-{module}", set()), found.get(f"negahban-{module}", set())
        print(f"{module}: blackbox {len(theirs)} families, negahban {len(ours)}")
        assert theirs, (module, found)
        assert theirs <= ours, (module, sorted(theirs - ours))


async def _monitors(world, names):
    from monitor.inventory import apply_inventory, parse_inventory

    port = world["target_port"]
    customers = "\n".join(f"  - {{name: c-{n}, verified: true, services: [{{name: s-{n}}}]}}" for n in names)
    monitors = "\n".join(f'  - {{name: {n}, kind: http, target: "http://127.0.0.1:{port}/{n}", service: s-{n}}}'
                         for n in names)
    inv, specs = parse_inventory(f"customers:\n{customers}\nmonitors:\n{monitors}\n")
    await apply_inventory(world["svc"].sessionmaker, inv, specs, world["svc"].clock.now())
    await world["svc"].scheduler.reload(force=True)


async def test_service_discovery_lists_the_monitors_with_their_labels(world):
    await _monitors(world, ["web-a", "web-b"])
    status, text = await _get(world, "/api/v1/sd?kind=http&module=http_2xx")
    import json

    groups = json.loads(text)
    assert status == 200
    assert [(g["labels"]["monitor"], g["labels"]["__param_module"], g["labels"]["customer"]) for g in groups] == [
        ("web-a", "http_2xx", "c-web-a"), ("web-b", "http_2xx", "c-web-b")]
    assert groups[0]["targets"] == [f"http://127.0.0.1:{world['target_port']}/web-a"]
    assert (await _get(world, "/api/v1/sd?kind=icmp"))[1] == "[]"
    assert (await _get(world, "/api/v1/sd", token=False))[0] == 401


@pytest.mark.integration
@pytest.mark.skipif(not PROMETHEUS.exists(), reason="tools/system-deps.sh installs prometheus")
async def test_prometheus_http_sd_finds_the_monitors_and_probes_them_through_negahban(world):
    """Prometheus' own http_sd_configs client reads the list, and the /probe job built on it yields one
    probe_success series per monitor, labelled with our monitor, service and customer."""
    await _monitors(world, ["web-a", "web-b"])
    tmp, prom_port = world["tmp"], _free_port()
    (tmp / "token").write_text(world["token"], encoding="utf-8")
    address = world["base"].removeprefix("http://")
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: negahban-sd
    metrics_path: /probe
    authorization: {{credentials_file: {tmp / 'token'}}}
    http_sd_configs:
      - url: {world['base']}/api/v1/sd?kind=http&module=http_2xx
        refresh_interval: 1s
        # `type: Bearer` explicitly: Prometheus' http_sd sends the bare token without it (prometheus/docs#2377)
        authorization: {{type: Bearer, credentials_file: {tmp / 'token'}}}
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "{address}"}}
""", encoding="utf-8")
    prom = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp / 'prometheus.yml'}",  # noqa: ASYNC220
                             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    series = []
    try:
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60  # bounded
            while loop.time() < deadline:
                try:
                    async with http.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                        params={"query": 'probe_success{job="negahban-sd"}'}) as resp:
                        series = (await resp.json())["data"]["result"]
                except (aiohttp.ClientError, KeyError, ValueError):
                    series = []
                if len(series) == 2:
                    break
                await asyncio.sleep(0.5)  # polling interval under the deadline
    finally:
        prom.terminate()
        prom.wait(20)
    found = sorted((s["metric"]["monitor"], s["metric"]["customer"], s["metric"]["instance"], s["value"][1])
                   for s in series)
    port = world["target_port"]
    assert found == [("web-a", "c-web-a", f"http://127.0.0.1:{port}/web-a", "1"),
                     ("web-b", "c-web-b", f"http://127.0.0.1:{port}/web-b", "1")]


async def test_a_long_non_ascii_target_is_answered_by_us_in_json_not_by_the_http_parser(world):
    """2,040 characters of 'ø' are 24 KB percent-encoded: over aiohttp's default 8 KB request line, which answered
    a text/plain 400 of its own (found by schemathesis). The service's line limit lets our validation answer."""
    from urllib.parse import quote

    headers = {"Authorization": f"Bearer {world['token']}"}
    async with aiohttp.ClientSession() as http, http.get(
            world["base"] + "/probe?module=tcp_connect&target=" + quote("ø" * 2040), headers=headers) as resp:
        assert resp.status == 400 and resp.content_type == "application/json"
        assert (await resp.json())["field"] == "target"
