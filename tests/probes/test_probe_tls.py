"""HTTPS and TCP+TLS against loopback servers with trustme certificates: valid, expiring, expired, wrong name."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from aiohttp import web

from probes import HttpSpec, Outcome, TcpSpec, probe_http, probe_tcp
from tests.probes.conftest import leaf_context, serve


async def _hello(request):
    return web.Response(text="secure hello")


@pytest.fixture
async def https_server(ca):
    """Start HTTPS servers on demand: ``await start(days_left, *names)`` -> base URL."""
    runners = []

    async def start(days_left: float, *names: str) -> str:
        app = web.Application()
        app.router.add_get("/", _hello)
        runner, port = await serve(app, ssl_context=leaf_context(ca, *(names or ("127.0.0.1",)),
                                                                 days_left=days_left))
        runners.append(runner)
        return f"https://127.0.0.1:{port}/"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(("days_left", "names", "verify", "outcome", "reason"), [
    (365, (), True, Outcome.UP, "ok"),
    (3, (), True, Outcome.DEGRADED, "cert_expiring"),
    (3, (), False, Outcome.DEGRADED, "cert_expiring"),
    (-1, (), True, Outcome.DOWN, "cert_expired"),
    (-1, (), False, Outcome.DOWN, "cert_expired"),
    (365, ("other.example",), True, Outcome.DOWN, "tls_error"),
    (365, ("other.example",), False, Outcome.UP, "ok"),
])
async def test_https_judges_the_certificate(https_server, ctx, days_left, names, verify, outcome, reason):
    url = await https_server(days_left, *names)
    result = await probe_http(HttpSpec(target=url, tls_verify=verify, cert_expiry_warn_days=14), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    json.dumps(result.details)  # stored as JSON by the runner


async def test_https_reports_the_tls_phase_and_not_after(https_server, ctx):
    url = await https_server(3)
    result = await probe_http(HttpSpec(target=url, cert_expiry_warn_days=2), ctx)
    assert result.ok, result.message
    assert set(result.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    not_after = datetime.fromisoformat(result.details["cert_not_after"])
    assert 2.9 < (not_after - ctx.now()).total_seconds() / 86400 < 3.1


async def test_a_failed_https_check_keeps_details_json_serialisable(https_server, ctx):
    url = await https_server(3)
    result = await probe_http(HttpSpec(target=url + "missing"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "status_mismatch")
    assert json.loads(json.dumps(result.details))["status_code"] == 404


async def test_a_server_that_speaks_no_tls_is_a_tls_error(http_server, ctx):
    base, _ = http_server
    result = await probe_http(HttpSpec(target=base.replace("http:", "https:") + "/text"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_error")


@pytest.fixture
async def tls_banner_server(ca):
    servers = []

    async def start(days_left: float) -> int:
        async def greet(reader, writer):
            writer.write(b"220 mail.test ESMTP ready\r\n")
            await writer.drain()
            await reader.read(100)
            writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0,
                                            ssl=leaf_context(ca, "mail.test", days_left=days_left))
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("days_left", "outcome", "reason"), [
    (90, Outcome.UP, "ok"), (3, Outcome.DEGRADED, "cert_expiring"), (-2, Outcome.DOWN, "cert_expired"),
])
async def test_tcp_with_tls_judges_banner_and_certificate(tls_banner_server, ctx, days_left, outcome, reason):
    port = await tls_banner_server(days_left)
    spec = TcpSpec(target=f"127.0.0.1:{port}", tls=True, server_name="mail.test", expect="^220 ")
    result = await probe_tcp(spec, ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    if outcome is not Outcome.DOWN:
        assert {"connect", "tls", "processing"} <= set(result.phases)


async def test_a_handshake_that_never_finishes_times_out_and_closes_the_connection(ctx):
    closed = asyncio.Event()

    async def mute(reader, writer):
        await reader.read()  # never answers the ClientHello; returns when the prober hangs up
        closed.set()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await probe_http(HttpSpec(target=f"https://127.0.0.1:{port}/", timeout_s=0.4), ctx)
        assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout")
        assert "connect" in result.phases and "tls" not in result.phases and 0.4 <= result.latency_s < 0.8
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
