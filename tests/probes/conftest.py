"""Fixtures for the probe tests: a probe context trusting a test CA, and real servers on loopback."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from aiohttp import web

from probes import make_context
from tests.netns import netns, netns_link  # noqa: F401  (fixtures)
from tests.probes.port_servers import mariadb, redis_servers, redis_tls  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def ctx(ca):
    context = await make_context(trust_ca_pem=ca.cert_pem.bytes())
    yield context
    await context.close()


async def serve(app: web.Application, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None,
                sock=None) -> tuple[web.AppRunner, int]:
    """Start ``app`` on an ephemeral port (or on ``sock``); return the runner and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=ssl_context) if sock is not None else \
        web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def leaf_context(ca: trustme.CA, *names: str, days_left: float) -> ssl.SSLContext:
    """A server TLS context whose certificate (signed by ``ca``) expires ``days_left`` days from now."""
    now = datetime.now(UTC)
    cert = ca.issue_cert(*names, not_before=now - timedelta(days=400), not_after=now + timedelta(days=days_left))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    return server


class Seen:
    """What a test server saw: connections (peer ports) and request headers."""

    def __init__(self) -> None:
        self.peers: list[tuple] = []
        self.cookies: list[str | None] = []
        self.delay_s = 0.0
        self.hang = asyncio.Event()


def make_app(seen: Seen) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="arrived")
        raise web.HTTPFound(f"/redirect/{n - 1}")

    async def text(request: web.Request) -> web.Response:
        seen.peers.append(request.transport.get_extra_info("peername"))
        seen.cookies.append(request.headers.get("Cookie"))
        resp = web.Response(text="hello negahban, all systems nominal")
        resp.set_cookie("session", "secret-of-monitor-a")
        return resp

    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        return web.Response(text=f"{request.method} {request.headers.get('X-Probe', '')} {body}")

    async def json_doc(request: web.Request) -> web.Response:
        return web.json_response({"status": {"db": "ok", "replicas": [{"lag": 0}, {"lag": 7}]}})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(seen.delay_s)  # the fault under test: a server that answers late
        return web.Response(text="late but fine")

    async def hang(request: web.Request) -> web.Response:
        await seen.hang.wait()
        return web.Response(text="never")

    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        if request.query.get("length"):
            resp.content_length = 4 << 20
        await resp.prepare(request)
        chunk = b"x" * 65536
        for _ in range(64):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.add_routes([web.get("/status/{code}", status), web.get("/redirect/{n}", redirect),
                    web.get("/text", text), web.route("*", "/echo", echo), web.get("/json", json_doc),
                    web.get("/slow", slow), web.get("/hang", hang), web.get("/huge", huge)])
    return app


@pytest.fixture
async def http_server():
    """A loopback HTTP server; yields (base URL, Seen)."""
    seen = Seen()
    runner, port = await serve(make_app(seen))
    yield f"http://127.0.0.1:{port}", seen
    seen.hang.set()
    await runner.cleanup()
