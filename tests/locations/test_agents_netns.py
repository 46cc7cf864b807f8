"""Three locations, each a network namespace running a real agent, against targets behind veths; the central
service in the root namespace. The faults are real: nftables drops, links taken down.

    central (root ns) ──mgmt veth── east ──uplink veth──┐
                      ──mgmt veth── west ──uplink veth──┼── world: target 10.78.100.1, canary 10.78.100.2
                      ──mgmt veth── north ─uplink veth──┘

Each agent's event loop runs in a thread that entered its location's namespace, so every socket it opens (its
probes and its pushes to the central service) lives there. The central service listens on the root ends of the
management veths (the only thing added to the root namespace; see tests/netns.py). Time is a ManualClock shared
by the service and the agents; a round is one 30 s interval.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from incidents.models import Audience
from monitor.agents import issue_location_token
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import LocationResult, RollupFine
from monitor.settings import load_settings
from negahban.agent import Agent, AgentConfig, Buffer
from negahban.service import build_service
from probes import make_context
from tests.incident_support import channel
from tests.locations.support import (
    all_incidents,
    assert_names_every_location,
    flips_of,
    incident_story,
    monitor_id,
    staff_and_customer_headers,
)
from tests.netns import Netns, _ip, in_namespace, netns_available, socket_in

pytestmark = [pytest.mark.skipif(not netns_available(), reason="needs root and iproute2"),
              pytest.mark.serial]

LOCATIONS = ("east", "west", "north")
INTERVAL = 30
TARGET, CANARY = "10.78.100.1", "10.78.100.2"


class LocationNs:
    """A location's namespace, its uplink into the world namespace and its management link to the root."""

    def __init__(self, i: int, name: str, world: Netns) -> None:
        self.name = name
        self.ns = Netns.create("ngbl")
        self.mgmt = self.ns.veth()  # root end: where the central service listens for this location
        tag = uuid.uuid4().hex[:6]
        self.up_if, self.world_if = f"ngu{tag}", f"ngw{tag}"
        self.ns.ip("link", "add", self.up_if, "type", "veth", "peer", "name", self.world_if, "netns", world.name)
        self.ns.ip("addr", "add", f"10.78.{i}.2/30", "dev", self.up_if)
        self.ns.ip("link", "set", self.up_if, "up")
        world.ip("addr", "add", f"10.78.{i}.1/30", "dev", self.world_if)
        world.ip("link", "set", self.world_if, "up")
        self.ns.ip("route", "add", "10.78.100.0/24", "via", f"10.78.{i}.1")
        world.ip("route", "add", f"10.78.{i}.0/30", "dev", self.world_if, check=False)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        in_namespace(self.ns.name)
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, coro):
        """Run ``coro`` on the location's loop (inside its namespace) and wait for it from the test's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def uplink(self, state: str) -> None:
        self.ns.ip("link", "set", self.up_if, state)
        if state == "up":
            self.ns.ip("route", "replace", "10.78.100.0/24", "via", f"10.78.{LOCATIONS.index(self.name) + 1}.1")

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.ns.delete()


class Net:
    def __init__(self, db, clock, tmp_path) -> None:
        self.db, self.clock, self.tmp = db, clock, tmp_path
        self.world = Netns.create("ngbw")
        self.world.ip("addr", "add", f"{TARGET}/32", "dev", "lo")
        self.world.ip("addr", "add", f"{CANARY}/32", "dev", "lo")
        self.locs = {name: LocationNs(i + 1, name, self.world) for i, name in enumerate(LOCATIONS)}
        self.agents: dict[str, Agent] = {}
        self.servers: list[socket.socket] = []

    def listen_in_world(self, addr: str) -> tuple[socket.socket, int]:
        sock = socket_in(self.world.name, socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((addr, 0))
        sock.listen(256)
        sock.setblocking(False)
        self.servers.append(sock)
        return sock, sock.getsockname()[1]

    async def start(self, agents=LOCATIONS) -> Net:
        tsock, tport = self.listen_in_world(TARGET)
        csock, cport = self.listen_in_world(CANARY)

        async def handle(reader, writer):
            writer.close()

        self.target_server = await asyncio.start_server(handle, sock=tsock)
        self.canary_server = await asyncio.start_server(handle, sock=csock)
        locs = "\n".join(f"  - {{name: {n}, display_name: {n}, canaries: ['tcp:{CANARY}:{cport}']}}"
                         for n in LOCATIONS)
        inv, specs = parse_inventory(f"""
locations:
{locs}
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: web, kind: tcp, target: '{TARGET}:{tport}', service: acme-web, interval: {INTERVAL}, timeout_s: 1,
     locations: [{", ".join(LOCATIONS)}]}}
""")
        await apply_inventory(self.db.sessionmaker, inv, specs, self.clock.now())
        tokens = {}
        async with self.db.sessionmaker.begin() as s:
            for name in LOCATIONS:
                tokens[name] = await issue_location_token(s, name, self.clock.now())
        self.registry = CollectorRegistry()
        self.service = await build_service(load_settings({}, database_url=self.db.url,
                                                         incident_recovery_hold_seconds=60),
                                           clock=self.clock, registry=self.registry)
        await self.service.runner.load_states()
        await self.service.scheduler.reload(force=True)
        self.runner = web.AppRunner(self.service.app)
        await self.runner.setup()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        for loc in self.locs.values():
            await web.TCPSite(self.runner, loc.mgmt.root_addr, self.port).start()
        for name in agents:
            loc = self.locs[name]

            async def make(loc=loc, name=name):
                ctx = await make_context(icmp="off")
                agent = Agent(AgentConfig(f"http://{loc.mgmt.root_addr}:{self.port}", tokens[name],
                                          canary_every_s=INTERVAL, request_timeout_s=2),
                              Buffer(self.tmp / f"{name}.db", f"agent-{name}"), ctx, self.clock)
                await agent.refresh()
                return agent

            self.agents[name] = await loc.call(make())
        return self

    async def round(self) -> None:
        self.clock.advance(INTERVAL)
        await asyncio.gather(*(self.locs[n].call(a.run_due()) for n, a in self.agents.items()))
        for n, a in self.agents.items():
            await self.locs[n].call(a.send())
        await self.service.runner.flush()
        await self.service.extras["incidents"].engine.process_pending()

    def drop_in(self, ns: Netns, hook: str, match: str) -> None:
        """Drop what ``match`` selects at ``hook`` (input or output) inside ``ns``."""
        ns.nft(f"table inet ngb_cut {{\n chain c {{\n type filter hook {hook} priority 0; policy accept;\n"
               f" {match} drop\n }}\n}}\n")

    async def close(self) -> None:
        for n, a in self.agents.items():
            async def shut(a=a):
                await a.close()
                await a.ctx.close()
            await self.locs[n].call(shut())
        self.target_server.close()
        self.canary_server.close()
        await self.runner.cleanup()
        await self.service.probe_ctx.close()
        await self.service.extras["http"].close()
        await self.service.engine.dispose()
        for loc in self.locs.values():
            loc.close()
        self.world.delete()


@pytest.fixture
async def net(db, clock, tmp_path):
    n = Net(db, clock, tmp_path)
    try:
        yield n
    finally:
        await n.close()
        _ip("-o", "link", "show", check=False)





async def test_a_target_cut_off_from_every_location_is_one_urgent_incident_naming_all_three(net):
    await net.start()
    await channel(net.db.sessionmaker, "noc-hook", Audience.NOC)
    staff, customer = await staff_and_customer_headers(net.db, "acme", net.clock.now())
    web_id = await monitor_id(net.db, "web")
    await net.round()
    assert net.service.runner.memories[web_id].state.value == "UP"
    net.drop_in(net.world, "input", f"ip daddr {TARGET}")
    for _ in range(3):
        await net.round()
    assert net.service.runner.memories[web_id].state.value == "DOWN"
    (inc,) = await all_incidents(net.db)
    assert inc.severity == "urgent" and inc.monitor_id == web_id
    assert set(net.service.runner.latest[web_id].result.details["failing"]) == set(LOCATIONS)
    assert [f.new_state for f in await flips_of(net.db, web_id)] == ["UP", "DOWN"]
    # Every location that saw it is named on the incident, once; another round adds nothing.
    await assert_names_every_location(net.db, inc.id, LOCATIONS)
    before = await incident_story(net.db, inc.id)
    await net.round()
    after = await incident_story(net.db, inc.id)
    assert (len(after[1]), len(after[2])) == (len(before[1]), len(before[2]))
    assert [i.id for i in await all_incidents(net.db)] == [inc.id]
    base = f"http://{net.locs['east'].mgmt.root_addr}:{net.port}/api/v1/incidents/{inc.id}"
    async with aiohttp.ClientSession() as http:
        seen = await (await http.get(base, headers=staff)).json()
        theirs = await (await http.get(base, headers=customer)).json()
    assert sorted(seen["locations"]) == sorted(LOCATIONS)
    assert theirs["locations"] == [] and "timeline" in theirs and theirs["timeline"] == []


async def test_the_path_from_one_location_cut_is_degraded_regional_with_one_important_incident(net):
    await net.start()
    web_id = await monitor_id(net.db, "web")
    await net.round()
    net.drop_in(net.locs["west"].ns, "output", f"ip daddr {TARGET}")
    for _ in range(4):
        await net.round()
    flips = await flips_of(net.db, web_id)
    assert [f.new_state for f in flips] == ["UP", "DEGRADED"]
    assert flips[-1].reason == "regional" and "west" in flips[-1].message and "east" in flips[-1].message
    incs = await all_incidents(net.db)
    assert [i.severity for i in incs] == ["important"]


async def test_a_location_whose_uplink_is_cut_is_blind_with_one_internal_alert_and_no_customer_incident(net):
    await net.start()
    web_id = await monitor_id(net.db, "web")
    await net.round()
    net.locs["north"].uplink("down")
    for _ in range(5):
        await net.round()
    assert net.service.runner.memories[web_id].state.value == "UP"
    assert net.service.runner.board.blind() == {"north"}
    alert = await monitor_id(net.db, "location:north")
    assert [i.monitor_id for i in await all_incidents(net.db)] == [alert]
    net.locs["north"].uplink("up")
    for _ in range(4):
        await net.round()
    assert net.service.runner.board.blind() == set()
    assert [f.new_state for f in await flips_of(net.db, web_id)] == ["UP"]


async def test_an_agent_cut_off_from_the_central_service_for_ten_minutes_delivers_every_result_once(net):
    await net.start()
    web_id = await monitor_id(net.db, "web")
    for _ in range(2):
        await net.round()
    east = net.locs["east"]
    east.mgmt.down()
    for _ in range(20):
        await net.round()
    async def counts():  # the buffer is the agent's: read it on the agent's thread
        return net.agents["east"].buffer.counts()

    assert net.agents["east"].central_reachable is False
    assert (await east.call(counts()))[0] >= 19
    east.mgmt.up()
    for _ in range(2):
        await net.round()
    assert await east.call(counts()) == (0, 0)
    async with net.db.sessionmaker() as s:
        rows = (await s.execute(select(LocationResult.at, LocationResult.late).where(
            LocationResult.monitor_id == web_id, LocationResult.location == "east").order_by(LocationResult.id))).all()
        checks = (await s.execute(select(func.sum(RollupFine.checks)).where(RollupFine.monitor_id == web_id))
                  ).scalar_one()
    ats = [r.at for r in rows]
    assert len(ats) == len(set(ats)) == 24 and ats == sorted(ats)
    assert sum(r.late for r in rows) >= 17  # older than three intervals when they arrived
    assert checks == 3 * 24  # every location's every check counted in uptime
    assert await all_incidents(net.db) == []
    assert [f.new_state for f in await flips_of(net.db, web_id)] == ["UP"]
