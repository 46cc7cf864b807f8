"""Shared pieces for the engine tests: a loopback HTTP target whose paths answer what the test says."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.inventory import apply_inventory, parse_inventory
from monitor.runner import Runner
from monitor.scheduler import Scheduler
from probes import ProbeContext, make_context


class Target:
    """``status[path]`` is what GET /path answers (default 200); ``gates[path]`` holds an answer back."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.hits: dict[str, int] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        self.arrived(path).set()
        if path in self.gates:
            await self.gates[path].wait()
        return web.Response(status=self.status.get(path, 200), text=path)

    def arrived(self, path: str) -> asyncio.Event:
        """Set when a request for ``path`` arrives."""
        return self._arrived.setdefault(path, asyncio.Event())

    async def start(self) -> Target:
        app = web.Application()
        app.router.add_get("/{path}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def apply_yaml(sessionmaker, text: str, now) -> None:
    inv, specs = parse_inventory(text)
    await apply_inventory(sessionmaker, inv, specs, now)


class Engine:
    """A runner and scheduler wired as the service wires them, driven by a manual clock."""

    def __init__(self, sessionmaker, clock, ctx: ProbeContext) -> None:
        self.sessionmaker, self.clock, self.ctx = sessionmaker, clock, ctx
        self.registry = CollectorRegistry()
        self.runner = Runner(sessionmaker, ctx, clock)
        self.scheduler = Scheduler(sessionmaker, self.runner, clock, self.registry)

    @classmethod
    async def create(cls, sessionmaker, clock) -> Engine:
        return cls(sessionmaker, clock, await make_context(now=clock.now, icmp="off"))

    async def step(self, seconds: float) -> int:
        """Move the clock, start what is due, wait for those checks; returns how many ran."""
        self.clock.advance(seconds)
        n = self.scheduler.dispatch_due()
        await self.scheduler.wait_idle()
        return n

    def state(self, name: str) -> str:
        mid = self.id(name)
        return self.runner.memories[mid].state.value if mid in self.runner.memories else "UNKNOWN"

    def id(self, name: str) -> int:
        return next(c.id for c in self.scheduler.catalog.values() if c.name == name)

    async def close(self) -> None:
        await self.scheduler.wait_idle()
        await self.runner.flush()
        await self.ctx.close()
