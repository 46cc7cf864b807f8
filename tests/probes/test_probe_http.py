"""HTTP probe against a real aiohttp server on loopback."""

from __future__ import annotations

import pytest
from aiohttp import web
from pydantic import ValidationError

from probes import PROBERS, SPECS, HttpSpec, Outcome, probe_http
from probes.http import json_lookup
from tests.probes.conftest import serve


@pytest.mark.parametrize(("path", "spec", "outcome", "reason"), [
    ("/status/200", {}, Outcome.UP, "ok"),
    ("/status/503", {}, Outcome.DOWN, "status_mismatch"),
    ("/status/404", {"expected_status": [404]}, Outcome.UP, "ok"),
    ("/redirect/3", {}, Outcome.UP, "ok"),
    ("/redirect/3", {"max_redirects": 2}, Outcome.DOWN, "too_many_redirects"),
    ("/redirect/1", {"follow_redirects": False, "expected_status": [302]}, Outcome.UP, "ok"),
    ("/text", {"body_rules": [{"pattern": "nominal"}]}, Outcome.UP, "ok"),
    ("/text", {"method": "HEAD", "body_rules": [{"pattern": "nominal", "present": False}]}, Outcome.UP, "ok"),
    ("/text", {"body_rules": [{"pattern": "maintenance"}]}, Outcome.DOWN, "keyword_missing"),
    ("/text", {"body_rules": [{"pattern": "error", "present": False}]}, Outcome.UP, "ok"),
    ("/text", {"body_rules": [{"pattern": "hello", "present": False}]}, Outcome.DOWN, "keyword_present"),
    ("/text", {"body_rules": [{"pattern": r"systems \w+$", "regex": True}]}, Outcome.UP, "ok"),
    ("/text", {"body_rules": [{"pattern": r"^down", "regex": True}]}, Outcome.DOWN, "keyword_missing"),
    ("/json", {"json_path": "$.status.db", "json_equals": "ok"}, Outcome.UP, "ok"),
    ("/json", {"json_path": "$.status.replicas[1].lag", "json_equals": 0}, Outcome.DOWN, "json_mismatch"),
    ("/json", {"json_path": "$.status.cache", "json_equals": "ok"}, Outcome.DOWN, "json_mismatch"),
    ("/text", {"json_path": "$.a", "json_equals": 1}, Outcome.DOWN, "json_mismatch"),
    ("/huge", {"max_body_bytes": 100_000}, Outcome.DOWN, "body_too_large"),
    ("/huge?length=1", {"max_body_bytes": 100_000}, Outcome.DOWN, "body_too_large"),
    ("/huge", {"max_body_bytes": 8 << 20}, Outcome.UP, "ok"),
    ("/huge?length=1", {"max_body_bytes": 8 << 20}, Outcome.UP, "ok"),
])
async def test_it_judges_status_redirects_body_and_json(http_server, ctx, path, spec, outcome, reason):
    base, _ = http_server
    result = await probe_http(HttpSpec(target=base + path, **spec), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message


async def test_it_reports_blackbox_phases_status_and_address(http_server, ctx):
    base, _ = http_server
    result = await PROBERS["http"](SPECS["http"](target=base + "/redirect/2"), ctx)
    assert result.ok
    assert set(result.phases) == {"resolve", "connect", "processing", "transfer"}
    assert result.details == {"address": "127.0.0.1", "status_code": 200, "redirects": 2, "http_version": "1.1",
                              "ssl": False, "content_length": 7, "body_length": 7}
    assert 0 < sum(result.phases.values()) <= result.latency_s


async def test_a_host_name_is_resolved_by_the_system_resolver(http_server, ctx):
    base, _ = http_server
    result = await probe_http(HttpSpec(target=base.replace("127.0.0.1", "localhost") + "/text"), ctx)
    assert result.ok, result.message
    assert result.details["address"] == "127.0.0.1" and result.phases["resolve"] > 0


async def test_it_sends_method_headers_and_body(http_server, ctx):
    base, _ = http_server
    spec = HttpSpec(target=base + "/echo", method="POST", headers={"X-Probe": "n1"}, body="payload-42",
                    body_rules=[{"pattern": "POST n1 payload-42"}])
    assert (await probe_http(spec, ctx)).ok


async def test_a_slow_answer_is_degraded_and_a_hanging_one_times_out(http_server, ctx):
    base, seen = http_server
    seen.delay_s = 0.3
    slow = await probe_http(HttpSpec(target=base + "/slow", degraded_latency_s=0.2), ctx)
    assert (slow.outcome, slow.reason) == (Outcome.DEGRADED, "latency")
    assert slow.latency_s >= 0.3
    hung = await probe_http(HttpSpec(target=base + "/hang", timeout_s=0.5), ctx)
    assert (hung.outcome, hung.reason) == (Outcome.DOWN, "timeout")
    assert 0.5 <= hung.latency_s < 1.0


async def test_every_check_uses_a_fresh_connection_so_a_dead_server_shows(ctx):
    seen_app = web.Application()
    peers: list = []

    async def ok(request):
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(text="ok")

    seen_app.router.add_get("/", ok)
    runner, port = await serve(seen_app)
    spec = HttpSpec(target=f"http://127.0.0.1:{port}/")
    assert (await probe_http(spec, ctx)).ok
    assert (await probe_http(spec, ctx)).ok
    assert len(set(peers)) == 2
    await runner.cleanup()
    dead = await probe_http(spec, ctx)
    assert (dead.outcome, dead.reason) == (Outcome.DOWN, "refused")


async def test_no_cookie_from_one_check_reaches_another(http_server, ctx):
    base, seen = http_server
    for _ in range(2):
        assert (await probe_http(HttpSpec(target=base + "/text"), ctx)).ok
    assert seen.cookies == [None, None]


async def test_it_picks_the_ip_version_asked_for(ca):
    from probes import make_context

    async def dual_stack(host: str, family: int) -> list[str]:
        table = {"dual.test": [("127.0.0.1", 2), ("::1", 10)]}
        return [addr for addr, fam in table.get(host, []) if family in (0, fam)]

    async def where(request):
        return web.Response(text=request.transport.get_extra_info("sockname")[0])

    app = web.Application()
    app.router.add_get("/", where)
    v6, port6 = await serve(app, host="::1")
    ctx = await make_context(icmp="off", resolve=dual_stack)
    try:
        r6 = await probe_http(HttpSpec(target=f"http://dual.test:{port6}/", ip_version=6,
                                       body_rules=[{"pattern": "::1"}]), ctx)
        assert r6.ok and r6.details["address"] == "::1"
        r4 = await probe_http(HttpSpec(target=f"http://dual.test:{port6}/", ip_version=4), ctx)
        assert r4.details["address"] == "127.0.0.1"
        literal = await probe_http(HttpSpec(target=f"http://[::1]:{port6}/", ip_version=4), ctx)
        assert (literal.outcome, literal.reason) == (Outcome.DOWN, "dns_error")
        unknown = await probe_http(HttpSpec(target="http://nowhere.test/"), ctx)
        assert (unknown.outcome, unknown.reason) == (Outcome.DOWN, "dns_error")
    finally:
        await ctx.close()
        await v6.cleanup()


@pytest.mark.parametrize(("field", "value"), [
    ("target", "ftp://127.0.0.1/"),
    ("target", "not a url"),
    ("target", "http://127.0.0.1:99999/"),
    ("timeout_s", 0),
    ("max_redirects", -1),
    ("body_rules", [{"pattern": "(", "regex": True}]),
    ("method", "BREW"),
])
def test_a_bad_spec_is_rejected_naming_the_field(field, value):
    args = {"target": "http://127.0.0.1/", field: value}
    with pytest.raises(ValidationError) as err:
        HttpSpec(**args)
    assert field in str(err.value)


@pytest.mark.parametrize(("path", "expected"), [
    ("$.a", {"b": [1, {"c": "x"}]}), ("a.b[0]", 1), ("$.a.b[1].c", "x"),
])
def test_json_lookup_follows_keys_and_indexes(path, expected):
    assert json_lookup({"a": {"b": [1, {"c": "x"}]}}, path) == expected


@pytest.mark.parametrize("path", ["$.a.z", "$.a.b[5]", "$.a.b.c"])
def test_json_lookup_misses_raise_lookup_error(path):
    with pytest.raises(LookupError):
        json_lookup({"a": {"b": [1, {"c": "x"}]}}, path)
