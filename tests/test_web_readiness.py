"""/readyz asks the database: an instance whose database is gone is taken out of the balancer."""

from __future__ import annotations

import asyncio
import shutil
from contextlib import suppress

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.db import make_engine, make_sessionmaker


class Forwarder:
    """A loopback TCP relay in front of PostgreSQL, so a test can take the database away."""

    def __init__(self, host: str, port: int):
        self.target, self.server, self.writers = (host, port), None, set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader, writer):
        with suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def stop(self):
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()


async def _breakable_engine(db, tmp_path):
    """An engine on ``db`` and a coroutine that makes its database unavailable."""
    if db.kind == "sqlite":
        home = tmp_path / "gone"
        home.mkdir()
        shutil.copy(db.url.removeprefix("sqlite+aiosqlite:///"), home / "n.db")
        engine = make_engine(f"sqlite+aiosqlite:///{home / 'n.db'}")

        async def take_away():
            shutil.rmtree(home)  # the file and its directory: nothing can be opened or created
            await engine.dispose()
        return engine, take_away
    url = make_url(db.url)
    relay = Forwarder(url.host, url.port or 5432)
    port = await relay.start()
    engine = make_engine(url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False))

    async def take_away():
        await relay.stop()
        await engine.dispose()
    return engine, take_away


async def test_readyz_answers_503_once_the_database_is_gone(db, clock, tmp_path):
    engine, take_away = await _breakable_engine(db, tmp_path)
    deps = WebDeps(sessionmaker=make_sessionmaker(engine), clock=clock, registry=CollectorRegistry(),
                   ready={"ready": True})
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        up = await client.get("/readyz")
        assert up.status == 200 and (await up.json())["database"] is True
        await take_away()
        down = await client.get("/readyz")
        assert down.status == 503 and (await down.json()) == {"ready": False, "started": True, "database": False}
        assert (await client.get("/healthz")).status == 200  # alive, only not ready
    await engine.dispose()


async def test_readyz_answers_503_before_the_service_has_started(db, clock):
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        assert (await client.get("/readyz")).status == 503
