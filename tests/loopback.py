"""Small real servers on loopback for tests."""

from __future__ import annotations

from aiohttp import web


async def status_target(status: dict) -> web.AppRunner:
    """An HTTP server on 127.0.0.1 (any free port) answering ``/`` with ``status["code"]``, read per request,
    so a test flips the target between up and down by changing the dict."""

    async def handler(request):
        return web.Response(status=status["code"], text="hello")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner
