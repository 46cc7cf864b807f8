"""In network namespaces: a switch in front of three servers, and the prober's own uplink.

The prober's event loop runs in a thread inside the prober's namespace, with a manual clock the test moves
(checks are real HTTP over the namespaces' links). SQLite only: the prober's namespace has no route to the
PostgreSQL on the root namespace's loopback, by design (nothing here touches the root namespace).
"""

from __future__ import annotations

import asyncio
import shutil
import threading

import pytest
from aiohttp import web
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.db import make_engine, make_sessionmaker
from monitor.models import Flip, Monitor
from monitor.selfcheck import SELF_CHECK_NAME, ensure_selfcheck
from tests.engine.helpers import Engine, apply_yaml
from tests.engine.netns_topology import Topology, in_namespace, netns_available

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns_available(), reason="needs root and iproute2")]

SERVERS = 3


class ProberThread:
    """An event loop in a thread that lives in the prober's namespace."""

    def __init__(self, ns: str) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            in_namespace(ns)
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("prober loop did not start")

    async def call(self, coro, bound_s: float = 60):
        return await asyncio.wait_for(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop)),
                                      bound_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def topo():
    t = Topology.build(SERVERS)
    yield t
    t.delete()


@pytest.fixture
async def http_servers(topo):
    """An HTTP server on the switch's management address, each server and the gateway (the canary)."""

    async def ok(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    places = [("router", topo.GATEWAY), ("switch", topo.SWITCH)]
    places += [(f"s{i}", topo.server(i)) for i in range(SERVERS)]
    for role, addr in places:
        await web.SockSite(runner, topo.socket(role, addr)).start()
    yield
    await runner.cleanup()


def _inventory(topo: Topology) -> str:
    servers = "\n".join(f"  - {{name: s{i}, address: {topo.server(i)}, parent: sw}}" for i in range(SERVERS))
    mons = "\n".join(f'  - {{name: s{i}-web, kind: http, target: "http://{topo.server(i)}/", interval: 5, '
                     f"timeout_s: 1, server: s{i}}}" for i in range(SERVERS))
    return f"""
devices:
  - {{name: sw, kind: switch, address: {topo.SWITCH}}}
servers:
{servers}
monitors:
  - {{name: sw-mgmt, kind: http, target: "http://{topo.SWITCH}/", interval: 5, timeout_s: 1, device: sw}}
{mons}
"""


@pytest.fixture
async def prober(topo, http_servers, tmp_path, sqlite_template):
    db = tmp_path / "netns.db"
    shutil.copy(sqlite_template, db)
    thread = ProberThread(topo.ns("prober"))
    clock = ManualClock()

    async def build():
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        sm = make_sessionmaker(engine)
        await apply_yaml(sm, _inventory(topo), clock.now())
        await ensure_selfcheck(sm, [f"http://{topo.GATEWAY}/"], clock.now(), interval_s=2, timeout_s=1)
        e = await Engine.create(sm, clock)
        await e.scheduler.reload(force=True)
        return engine, e

    db_engine, eng = await thread.call(build())
    yield thread, eng
    await thread.call(eng.close())
    await thread.call(db_engine.dispose())
    thread.stop()


NAMES = ("sw-mgmt", *(f"s{i}-web" for i in range(SERVERS)))


async def _run(thread: ProberThread, eng: Engine, seconds: int) -> dict[str, str]:
    async def steps():
        for _ in range(seconds):
            await eng.step(1)
        return {n: eng.state(n) for n in NAMES}

    return await thread.call(steps(), bound_s=120)


async def _flips(thread: ProberThread, eng: Engine) -> list[tuple]:
    async def read():
        async with eng.sessionmaker() as s:
            rows = await s.execute(select(Monitor.name, Flip.old_state, Flip.new_state, Flip.root_monitor_id)
                                   .join(Monitor, Monitor.id == Flip.monitor_id).order_by(Flip.id))
            return [tuple(r) for r in rows.all()]

    return await thread.call(read())


async def test_switch_cut_gives_down_and_unreachable_uplink_cut_gives_one_blind_alert(topo, prober):
    thread, eng = prober
    assert set((await _run(thread, eng, 15)).values()) == {"UP"}

    topo.cut("sw")
    states = await _run(thread, eng, 40)
    assert states == {"sw-mgmt": "DOWN", **{f"s{i}-web": "UNREACHABLE" for i in range(SERVERS)}}
    sw_id = eng.id("sw-mgmt")
    outages = [f for f in await _flips(thread, eng) if f[1] == "UP" and f[0] != SELF_CHECK_NAME]
    assert sorted(outages) == sorted([("sw-mgmt", "UP", "DOWN", None)] +
                                     [(f"s{i}-web", "UP", "UNREACHABLE", sw_id) for i in range(SERVERS)])
    topo.restore("sw")
    assert set((await _run(thread, eng, 30)).values()) == {"UP"}

    before = len(await _flips(thread, eng))
    topo.cut("up")
    assert set((await _run(thread, eng, 40)).values()) == {"UP"}  # blind: nobody is called DOWN
    during = (await _flips(thread, eng))[before:]
    assert during == [(SELF_CHECK_NAME, "UP", "DOWN", None)]  # one internal "monitoring blind" alert
    topo.restore("up")
    assert set((await _run(thread, eng, 30)).values()) == {"UP"}
    after = (await _flips(thread, eng))[before + 1:]
    assert after == [(SELF_CHECK_NAME, "DOWN", "UP", None)]
