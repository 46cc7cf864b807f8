"""Demo targets for `make run`: a healthy, a slow and a flaky HTTP endpoint on loopback.

Run: python examples/demo_targets.py [PORT]   (default 8091)
"""

import asyncio
import sys
import time

from aiohttp import web


async def healthy(request):
    return web.Response(text="ok")


async def slow(request):
    await asyncio.sleep(1.5)  # over the monitor's 1 s degraded threshold
    return web.Response(text="slow but fine")


async def flaky(request):
    # Fails for 40 s of every 120 s: long enough to be confirmed DOWN, then recovers.
    if int(time.time()) % 120 < 40:
        return web.Response(status=503, text="temporarily unavailable")
    return web.Response(text="ok")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8091
    app = web.Application()
    app.add_routes([web.get("/healthy", healthy), web.get("/slow", slow), web.get("/flaky", flaky)])
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
