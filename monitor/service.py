"""The composition root: the one function that builds the running service from settings.

It is the only place (with ``monitor.cli``) that imports every package, and it passes collaborators in:
session factory, clock, probe context, metrics registry.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from dashboards.collectors import MetricsHub, flip_latency_families
from dashboards.collectors_desk import desk_families
from dashboards.metrics import ProbeExposition
from dashboards.noc import NocIndex, StateFeed
from dashboards.web.app import build_app
from dashboards.web.deps import DEPS, WebDeps, parse_channels
from monitor.clock import Clock, SystemClock
from monitor.db import make_engine, make_sessionmaker, upgrade
from monitor.inventory import apply_inventory, load_inventory
from monitor.runner import Runner
from monitor.scheduler import Scheduler
from monitor.settings import Settings
from probes import ProbeContext, make_context

__all__ = ["Service", "build_service"]

log = logging.getLogger("negahban.service")


@dataclass
class Service:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker
    clock: Clock
    registry: CollectorRegistry
    probe_ctx: ProbeContext
    runner: Runner
    scheduler: Scheduler
    app: web.Application
    site_runner: web.AppRunner | None = None
    extras: dict = field(default_factory=dict)

    async def start(self) -> None:
        if self.settings.run_scheduler:
            await self.scheduler.start()
        self.site_runner = web.AppRunner(self.app, handle_signals=False)
        await self.site_runner.setup()
        site = web.TCPSite(self.site_runner, self.settings.listen_host, self.settings.listen_port)
        await site.start()
        self.app[DEPS].ready["ready"] = True
        log.info("started listen=%s:%s database=%s", self.settings.listen_host, self.settings.listen_port,
                 self.engine.url.render_as_string(hide_password=True))

    async def stop(self) -> None:
        """Stop taking new work, let in-flight checks finish within their timeout, then close."""
        log.info("stopping")
        await self.scheduler.shutdown()
        await self.runner.drain()
        if self.site_runner:
            await self.site_runner.cleanup()
        await self.probe_ctx.close()
        await self.engine.dispose()
        log.info("stopped")


async def build_service(settings: Settings, clock: Clock | None = None,
                        registry: CollectorRegistry | None = None) -> Service:
    clock = clock or SystemClock()
    registry = registry if registry is not None else CollectorRegistry()
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    if settings.inventory_file:
        inv, specs = load_inventory(settings.inventory_file)
        counts = await apply_inventory(sm, inv, specs, clock.now())
        log.info("inventory_applied file=%s monitors=%s", settings.inventory_file, counts["monitors"])
    # Fresh connection per check and no state shared between monitors are the probes' own rules; this
    # raises IcmpUnavailable (naming the setting to change) when ICMP sockets cannot be opened.
    ctx = await make_context(now=clock.now, icmp=settings.icmp)
    runner = Runner(sm, ctx, clock)
    scheduler = Scheduler(sm, runner, clock, registry)
    hub = MetricsHub(registry, sm, clock)
    hub.add("flips", flip_latency_families)
    hub.add("desk", desk_families)
    noc_index = NocIndex(sm, clock, lambda: runner.latest)
    noc_feed = StateFeed(lambda: runner.latest)
    runner.on_flip(noc_feed.poke)
    deps = WebDeps(sessionmaker=sm, clock=clock, registry=registry, cookie_secure=settings.cookie_secure,
                   services={"runner": runner, "scheduler": scheduler, "noc_index": noc_index,
                             "noc_feed": noc_feed},
                   probe_exposition=ProbeExposition(lambda: runner.latest, clock.monotonic), metrics_hub=hub,
                   support_channels=parse_channels(settings.support_channels))
    app = build_app(deps)
    return Service(settings, engine, sm, clock, registry, ctx, runner, scheduler, app)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    service = await build_service(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
