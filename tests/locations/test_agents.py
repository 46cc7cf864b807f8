"""Probe agents end to end, in one process: the real service (routes, runner, vote, incident engine) on SQLite
and PostgreSQL, real agents with their SQLite buffers talking HTTP to it over loopback, real TCP targets.

Each agent resolves the target's host name through its own table (the probe context's resolver, the seam every
probe resolves through), so "the path from west to the target is cut" is west connecting to an address where
nothing listens: a real refused connection, from that location only. The same cuts made with veths and
nftables in network namespaces are in test_agents_netns.py. Time is a ManualClock shared by the service and
the agents: ten minutes of outage are twenty rounds, not ten minutes.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, update

from incidents.models import Audience
from monitor.agents import issue_location_token
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import AgentBatch, FailingLocation, Location, LocationResult, RollupFine
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
from tests.web_forms import get_page, login

LOCATIONS = ("east", "west", "north")
# What the staff pages show of each location (its public name); customers see none of them.
SHOWN = {"east": "تهران", "west": "تبریز", "north": "رشت"}
INTERVAL = 30


class Target:
    """A TCP server on loopback that accepts and closes; ``dead`` is an address where nothing listens."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        async def handle(reader, writer):
            writer.close()

        self.server = await asyncio.start_server(handle, sock=self.sock)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: a connect is refused
    return port


def _inventory(port: int, canary_port: int, locations=LOCATIONS, extra: str = "") -> str:
    locs = "\n".join(f"  - {{name: {n}, display_name: {SHOWN[n]}, canaries: ['tcp:canary.test:{canary_port}']}}"
                     for n in LOCATIONS)
    return f"""
locations:
{locs}
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: web, kind: tcp, target: 'target.test:{port}', service: acme-web, interval: {INTERVAL},
     locations: [{", ".join(locations)}]}}
{extra}"""


class Resolver:
    """Per agent: which address each test host name has from this location (changed by the test)."""

    def __init__(self) -> None:
        self.hosts = {"target.test": "127.0.0.1", "canary.test": "127.0.0.1"}

    async def __call__(self, host: str, family: int) -> list[str]:
        if host not in self.hosts:
            raise OSError(f"unknown host {host}")
        return [self.hosts[host]]


class World:
    def __init__(self, db, clock, tmp_path):
        self.db, self.clock, self.tmp = db, clock, tmp_path
        self.target, self.canary = Target(), Target()
        self.agents: dict[str, Agent] = {}
        self.resolvers: dict[str, Resolver] = {}
        self.dead = _dead_port()

    async def start(self, locations=LOCATIONS, agents=LOCATIONS, extra: str = ""):
        await self.target.start()
        await self.canary.start()
        inv, specs = parse_inventory(_inventory(self.target.port, self.canary.port, locations, extra))
        await apply_inventory(self.db.sessionmaker, inv, specs, self.clock.now())
        self.tokens = {}
        async with self.db.sessionmaker.begin() as s:
            for name in LOCATIONS:
                self.tokens[name] = await issue_location_token(s, name, self.clock.now())
        self.registry = CollectorRegistry()
        self.service = await build_service(load_settings({}, database_url=self.db.url,
                                                         incident_recovery_hold_seconds=60),
                                           clock=self.clock, registry=self.registry)
        await self.service.runner.load_states()
        await self.service.scheduler.reload(force=True)
        self.client = TestClient(TestServer(self.service.app, host="127.0.0.1"))
        await self.client.start_server()
        self.url = str(self.client.make_url(""))
        for name in agents:
            await self.add_agent(name)
        return self

    async def add_agent(self, name: str, url: str | None = None, buffer_name: str | None = None) -> Agent:
        resolver = self.resolvers.setdefault(name, Resolver())
        ctx = await make_context(icmp="off", resolve=resolver)
        agent = Agent(AgentConfig(url or self.url, self.tokens[name], canary_every_s=INTERVAL),
                      Buffer(self.tmp / (buffer_name or f"{name}.db"), f"agent-{name}"), ctx, self.clock)
        await agent.refresh()
        self.agents[name] = agent
        return agent

    def cut(self, location: str, host: str = "target.test") -> None:
        """The path from ``location`` to ``host`` is gone: its connections are refused."""
        self.resolvers[location].hosts[host] = f"127.0.0.{2 + LOCATIONS.index(location)}"

    def mend(self, location: str, host: str = "target.test") -> None:
        self.resolvers[location].hosts[host] = "127.0.0.1"

    async def round(self, send: bool = True) -> None:
        """One interval: every agent runs what is due, then sends; the incident engine takes the flips."""
        self.clock.advance(INTERVAL)
        for agent in self.agents.values():
            await agent.run_due()
        if send:
            for agent in self.agents.values():
                await agent.send()
        await self.service.runner.flush()
        await self.service.extras["incidents"].engine.process_pending()

    async def close(self):
        for agent in self.agents.values():
            await agent.close()
            await agent.ctx.close()
        await self.client.close()
        await self.service.probe_ctx.close()
        await self.service.extras["http"].close()
        await self.service.engine.dispose()
        self.target.close()
        self.canary.close()


@pytest.fixture
async def world(db, clock, tmp_path):
    w = World(db, clock, tmp_path)
    yield w
    await w.close()





async def test_a_target_cut_off_from_every_location_is_one_urgent_incident_naming_the_locations(world):
    await world.start()
    await channel(world.db.sessionmaker, "noc-hook", Audience.NOC)
    staff, customer = await staff_and_customer_headers(world.db, "acme", world.clock.now())
    web = await monitor_id(world.db, "web")
    for _ in range(2):
        await world.round()
    assert world.service.runner.memories[web].state.value == "UP"
    for loc in LOCATIONS:
        world.cut(loc)
    for _ in range(4):
        await world.round()
    assert world.service.runner.memories[web].state.value == "DOWN"
    (inc,) = await all_incidents(world.db)
    assert inc.severity == "urgent" and inc.monitor_id == web
    down = [f for f in await flips_of(world.db, web) if f.new_state == "DOWN"]
    assert len(down) == 1
    # The flip names the locations that confirmed it (a quorum: two of three); the vote names all three.
    assert sum(loc in down[0].message for loc in LOCATIONS) >= 2
    assert set(world.service.runner.latest[web].result.details["failing"]) == set(LOCATIONS)
    # The incident names all three: the quorum from its opening, the third once it joined; more failing
    # checks from every location add nothing (no second entry, notice or incident).
    await assert_names_every_location(world.db, inc.id, LOCATIONS)
    before = await incident_story(world.db, inc.id)
    for _ in range(2):
        await world.round()
    after = await incident_story(world.db, inc.id)
    assert (len(after[1]), len(after[2])) == (len(before[1]), len(before[2]))
    assert await assert_names_every_location(world.db, inc.id, LOCATIONS)
    async with world.db.sessionmaker() as s:  # the runner wrote each location once, not once per check
        assert sorted((await s.execute(select(FailingLocation.location))).scalars()) == sorted(LOCATIONS)
    seen = await (await world.client.get(f"/api/v1/incidents/{inc.id}", headers=staff)).json()
    assert sorted(seen["locations"]) == sorted(LOCATIONS)
    assert sum(e["kind"] == "location" for e in seen["timeline"]) >= 1
    theirs = await (await world.client.get(f"/api/v1/incidents/{inc.id}", headers=customer)).text()
    assert '"locations": []' in theirs and not [loc for loc in LOCATIONS if loc in theirs], theirs
    await login(world.client, "nora")
    status, page = await get_page(world.client, f"/incidents/{inc.id}")
    assert status == 200 and all(f'data-location="{loc}">{SHOWN[loc]}</bdi>' in page for loc in LOCATIONS)
    for loc in LOCATIONS:
        world.mend(loc)
    for _ in range(6):
        await world.round()
    assert world.service.runner.memories[web].state.value == "UP"
    assert len(await all_incidents(world.db)) == 1  # resolved, never a second one


async def test_one_location_cut_from_the_target_is_degraded_regional_with_one_important_incident(world):
    await world.start()
    web = await monitor_id(world.db, "web")
    await world.round()
    world.cut("west")
    for _ in range(5):
        await world.round()
    mem = world.service.runner.memories[web]
    assert mem.state.value == "DEGRADED"
    flips = await flips_of(world.db, web)
    assert [f.new_state for f in flips] == ["UP", "DEGRADED"]
    assert flips[-1].reason == "regional" and "west" in flips[-1].message
    (inc,) = await all_incidents(world.db)
    assert inc.severity == "important"
    assert not [i for i in await all_incidents(world.db) if i.severity == "urgent"]


async def test_a_location_whose_own_uplink_is_cut_is_blind_with_one_internal_alert_and_no_customer_incident(world):
    await world.start()
    web = await monitor_id(world.db, "web")
    await world.round()
    world.cut("north", "target.test")
    world.cut("north", "canary.test")  # north sees nothing: its uplink is gone
    for _ in range(6):
        await world.round()
    assert world.service.runner.memories[web].state.value == "UP"
    assert world.service.runner.board.blind() == {"north"}
    alert = await monitor_id(world.db, "location:north")
    incs = await all_incidents(world.db)
    assert [i.monitor_id for i in incs] == [alert]  # one internal alert; nothing about the customer's server
    assert [f.new_state for f in await flips_of(world.db, alert)][-1] == "DOWN"
    async with world.db.sessionmaker() as s:
        kept = (await s.execute(select(func.count()).select_from(LocationResult).where(
            LocationResult.location == "north", LocationResult.outcome == "down"))).scalar_one()
    assert kept >= 5  # a blind location's checks are kept, not counted in the vote


class Gate:
    """A TCP relay on loopback between an agent and the central service; ``close`` cuts the agent off
    (connections refused), ``open`` restores it on the same port."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = _dead_port()
        self.server: asyncio.AbstractServer | None = None
        self.relayed = 0
        self._open: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer):
            self.relayed += 1
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream)
            self._open |= {writer, up_w}
            try:
                await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
            finally:
                self._open -= {writer, up_w}

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, reuse_address=True)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in list(self._open):  # established connections die with the link too
                w.transport.abort()
            await self.server.wait_closed()
            self.server = None


async def test_an_agent_cut_off_for_ten_minutes_buffers_then_delivers_every_result_once_in_order(world):
    await world.start(locations=("east",), agents=())
    gate = Gate(world.client.port)
    await gate.open()
    agent = await world.add_agent("east", url=f"http://127.0.0.1:{gate.port}")
    web = await monitor_id(world.db, "web")
    await world.round()
    await world.round()
    assert world.service.runner.memories[web].state.value == "UP"
    await gate.close()
    cut_at = world.clock.now()
    world.cut("east")  # the target also fails while the agent cannot tell anyone: late news must not page
    for i in range(20):  # 10 minutes at 30 s
        if i == 17:
            world.mend("east")  # up again for the last 90 s: those results are fresh when they arrive
        await world.round()
    pending, batches = agent.buffer.counts()
    assert pending >= 19 and batches == 1  # the first batch was formed, then held until it is acknowledged
    assert agent.central_reachable is False
    await gate.open()
    await world.round()
    await world.round()
    assert agent.buffer.counts() == (0, 0)
    async with world.db.sessionmaker() as s:
        rows = (await s.execute(select(LocationResult.at, LocationResult.outcome, LocationResult.late, LocationResult.id)
                                .where(LocationResult.monitor_id == web).order_by(LocationResult.id))).all()
        batches = (await s.execute(select(AgentBatch.seq).order_by(AgentBatch.id))).scalars().all()
        checks = (await s.execute(select(func.sum(RollupFine.checks), func.sum(RollupFine.down))
                                  .where(RollupFine.monitor_id == web))).one()
    ats = [r.at for r in rows]
    assert len(ats) == len(set(ats)) == 24  # every check once: 2 before, 20 during, 2 after
    assert ats == sorted(ats)  # in order
    assert batches == sorted(batches) and len(batches) == len(set(batches))
    during = [r for r in rows if r.at > cut_at and r.outcome == "down"]
    assert len(during) == 17 and all(r.late for r in during)
    assert checks == (24, 17)  # uptime for the window is complete
    assert world.registry.get_sample_value("negahban_agent_buffered_results",
                                           {"location": "east", "agent": "agent-east"}) == 0
    assert world.registry.get_sample_value("negahban_location_results_received_total",
                                           {"location": "east", "late": "true"}) == 17
    assert await all_incidents(world.db) == []  # late results never page
    await gate.close()


async def test_a_repeated_batch_is_taken_once_and_an_agent_restarted_before_the_answer_resends_the_same_seq(world):
    await world.start(locations=("east",), agents=("east",))
    agent = world.agents["east"]
    web = await monitor_id(world.db, "web")
    world.clock.advance(INTERVAL)
    await agent.run_due()
    agent.keep()
    seq = agent.buffer.form(1000, world.clock.now().timestamp())
    _, body = agent.buffer.oldest_batch()
    # The central side takes the batch but the answer is lost: the agent still holds it.
    first = await agent._post(seq, body)
    assert first["duplicate"] is False and first["accepted"] == 1
    await agent.close()
    again = await world.add_agent("east")  # restarted on the same buffer file
    assert again.buffer.oldest_batch()[0] == seq
    assert await again.send() == 1 and again.repeats_acknowledged == 1
    async with world.db.sessionmaker() as s:
        n = (await s.execute(select(func.count()).select_from(LocationResult)
                             .where(LocationResult.monitor_id == web))).scalar_one()
    assert n == 1
    assert world.registry.get_sample_value("negahban_agent_batches_received_total",
                                           {"location": "east", "duplicate": "true"}) == 1
    world.agents.pop("east")
    world.agents["east"] = again


async def _post(world, token: str | None, body, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await world.client.post("/api/v1/agent/results", json=body, headers=headers)


async def test_the_agent_api_refuses_a_wrong_token_and_names_the_bad_field(world):
    await world.start(agents=())
    web = await monitor_id(world.db, "web")
    ok = {"monitor_id": web, "at": world.clock.now().isoformat(), "outcome": "up"}
    for token in (None, "not-a-token", world.tokens["east"][:-1]):
        resp = await _post(world, token, {"agent": "a", "seq": 1, "results": [ok]})
        assert resp.status == 401
        assert (await world.client.get("/api/v1/agent/assignments",
                                       headers={"Authorization": f"Bearer {token}"} if token else {})).status == 401
    cases = [({"agent": "a", "seq": 1, "results": [{**ok, "outcome": "maybe"}]}, "results.0.outcome"),
             ({"agent": "a b", "seq": 1, "results": [ok]}, "agent"),
             ({"agent": "a", "seq": -1, "results": [ok]}, "seq"),
             ({"agent": "a", "seq": 1, "results": [{**ok, "at": "2026-01-01T00:00:00"}]}, "results.0.at"),
             ({"agent": "a", "seq": 1, "results": [{**ok, "extra": 1}]}, "results.0.extra"),
             ({"agent": "a", "seq": 1, "results": [{**ok, "at": "2027-01-01T00:00:00+00:00"}]}, "results.0.at")]
    for body, field in cases:
        resp = await _post(world, world.tokens["east"], body)
        assert resp.status == 400, (field, await resp.text())
        assert (await resp.json())["field"] == field
    async with world.db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(AgentBatch))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(LocationResult))).scalar_one() == 0


async def test_a_result_for_a_monitor_of_another_location_is_ignored_not_written(world):
    await world.start(locations=("east",), agents=())
    web = await monitor_id(world.db, "web")
    body = {"agent": "w1", "seq": 1, "results": [{"monitor_id": web, "at": world.clock.now().isoformat(),
                                                  "outcome": "down", "reason": "refused"}]}
    resp = await _post(world, world.tokens["west"], body)
    assert resp.status == 200 and (await resp.json())["ignored"] == 1
    async with world.db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(LocationResult))).scalar_one() == 0


async def test_assignments_carry_a_version_and_an_unchanged_set_is_answered_304(world):
    await world.start(agents=())
    headers = {"Authorization": f"Bearer {world.tokens['east']}"}
    resp = await world.client.get("/api/v1/agent/assignments", headers=headers)
    assert resp.status == 200
    body = await resp.json()
    etag = resp.headers["ETag"]
    assert etag == f'"{body["version"]}"'
    assert [m["name"] for m in body["monitors"]] == ["web"]
    assert body["canaries"] == [{"index": 0, "kind": "tcp", "target": f"canary.test:{world.canary.port}"}]
    again = await world.client.get("/api/v1/agent/assignments", headers={**headers, "If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    # The token of another location sees that location's set (the same monitor, its own canaries' index).
    other = await world.client.get("/api/v1/agent/assignments",
                                   headers={"Authorization": f"Bearer {world.tokens['west']}"})
    assert (await other.json())["location"] == "west"


async def test_assignments_are_built_once_per_catalog_and_a_changed_catalog_or_canary_gives_a_new_version(
        world, monkeypatch):
    await world.start(agents=())
    import monitor.agents

    built = []
    real = monitor.agents.assignments_for

    def counting(location, canaries, catalog):
        built.append(location)
        return real(location, canaries, catalog)

    monkeypatch.setattr(monitor.agents, "assignments_for", counting)
    headers = {"Authorization": f"Bearer {world.tokens['east']}"}
    first = await world.client.get("/api/v1/agent/assignments", headers=headers)
    etag = first.headers["ETag"]
    for _ in range(3):  # the agents' polls: answered from the body built for this catalog
        again = await world.client.get("/api/v1/agent/assignments", headers={**headers, "If-None-Match": etag})
        assert again.status == 304
    assert built == ["east"]
    # A monitor added for east: after the scheduler's reload the old version is answered with the new set.
    extra = f"  - {{name: web2, kind: tcp, target: 'target.test:{world.target.port}', interval: {INTERVAL}, " \
            "locations: [east]}\n"
    inv, specs = parse_inventory(_inventory(world.target.port, world.canary.port, LOCATIONS, extra))
    await apply_inventory(world.db.sessionmaker, inv, specs, world.clock.now())
    assert await world.service.scheduler.reload()
    changed = await world.client.get("/api/v1/agent/assignments", headers={**headers, "If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert [m["name"] for m in (await changed.json())["monitors"]] == ["web", "web2"]
    # The location's canaries changed in the database (no reload): a new version too.
    etag = changed.headers["ETag"]
    async with world.db.sessionmaker.begin() as s:
        await s.execute(update(Location).where(Location.name == "east").values(canaries=["tcp:127.0.0.1:9"]))
    moved = await world.client.get("/api/v1/agent/assignments", headers={**headers, "If-None-Match": etag})
    assert moved.status == 200 and (await moved.json())["canaries"] == [
        {"index": 0, "kind": "tcp", "target": "127.0.0.1:9"}]
    assert built == ["east", "east", "east"]


def test_the_buffer_keeps_each_result_in_exactly_one_place_and_prunes_only_past_retention(tmp_path):
    buf = Buffer(tmp_path / "b.db", "agent-x")
    t0 = datetime(2026, 1, 1).timestamp()
    buf.add([("r", t0 + i, {"monitor_id": 1, "i": i}) for i in range(25)])
    assert buf.form(10, t0) == 1 and buf.form(10, t0) == 2
    assert buf.counts() == (5, 2)
    assert buf.oldest_batch()[1]["results"][0]["i"] == 0
    buf.ack(1)
    assert buf.oldest_batch()[0] == 2
    buf.close()
    reopened = Buffer(tmp_path / "b.db", "another-id")
    assert reopened.agent_id == "agent-x"  # the id stays with the buffer
    assert reopened.form(10, t0) == 3
    assert reopened.prune(t0 + 15) == 10  # batch 2's ten results (the first at t0+10), nothing newer
    assert reopened.counts() == (0, 1)


async def test_a_result_that_cannot_be_evaluated_costs_no_other_result_its_vote(world, monkeypatch):
    extra = f"  - {{name: web2, kind: tcp, target: 'target.test:{world.target.port}', interval: {INTERVAL}, " \
            "locations: [east]}\n"
    await world.start(locations=("east",), agents=(), extra=extra)
    web, web2 = await monitor_id(world.db, "web"), await monitor_id(world.db, "web2")
    runner = world.service.runner
    real = runner.apply_located

    async def poisoned(cfg, *args, **kwargs):
        if cfg.id == web:
            raise RuntimeError("poisoned for the test")
        return await real(cfg, *args, **kwargs)

    monkeypatch.setattr(runner, "apply_located", poisoned)
    at = world.clock.now().isoformat()
    body = {"agent": "e1", "seq": 1, "results": [{"monitor_id": web, "at": at, "outcome": "up"},
                                                  {"monitor_id": web2, "at": at, "outcome": "up"}]}
    resp = await _post(world, world.tokens["east"], body)
    assert resp.status == 200 and (await resp.json())["accepted"] == 2
    assert runner.memories[web2].state.value == "UP" and web not in runner.memories
    assert world.registry.get_sample_value("negahban_location_results_failed_total", {"location": "east"}) == 1
    async with world.db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(LocationResult))).scalar_one() == 2


async def _eventually(pred, bound_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + bound_s
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {bound_s} s: {what}")
        await asyncio.sleep(0.02)


async def test_a_slow_answer_from_the_central_side_does_not_hold_back_the_checks_falling_due(world, monkeypatch):
    await world.start(locations=("east",), agents=())
    import monitor.agents

    held, release = asyncio.Event(), asyncio.Event()
    real = monitor.agents.Ingest.batch

    async def slow(self, *args, **kwargs):
        if not held.is_set():  # the first batch's answer waits until the test lets it go
            held.set()
            await release.wait()
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(monitor.agents.Ingest, "batch", slow)
    ctx = await make_context(icmp="off", resolve=world.resolvers.setdefault("east", Resolver()))
    agent = Agent(AgentConfig(world.url, world.tokens["east"], send_every_s=0.05, refresh_every_s=3600,
                              canary_every_s=3600), Buffer(world.tmp / "slow.db", "agent-slow"), ctx, world.clock)
    world.agents["east"] = agent  # closed with the world
    web = await monitor_id(world.db, "web")
    stop = asyncio.Event()
    task = asyncio.ensure_future(agent.run(stop))

    def fresh_checks() -> int:
        return sum(1 for kind, _, body in agent._fresh if kind == "r" and body["monitor_id"] == web)

    try:
        await _eventually(lambda: agent.version is not None, 30, "the assignments fetched")
        world.clock.advance(INTERVAL)
        await asyncio.wait_for(held.wait(), 30)  # the first check's batch is in flight, its answer held
        for n in (1, 2, 3):  # three more intervals fall due while that answer is still held
            world.clock.advance(INTERVAL)
            await _eventually(lambda n=n: fresh_checks() >= n, 30, f"check {n} started during the held send")
        release.set()
        await _eventually(lambda: not agent._fresh and agent.buffer.waiting() == 0, 30, "everything delivered")
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(task, 60)
    async with world.db.sessionmaker() as s:
        ats = (await s.execute(select(LocationResult.at).where(LocationResult.monitor_id == web)
                               .order_by(LocationResult.id))).scalars().all()
    assert len(ats) == len(set(ats)) == 4 and ats == sorted(ats)


async def test_the_flips_of_one_batch_share_group_commits_and_each_monitor_keeps_its_order(world, monkeypatch):
    extra = "".join(f"  - {{name: w{i}, kind: tcp, target: 'target.test:{world.target.port}', interval: "
                    f"{INTERVAL}, locations: [east]}}\n" for i in range(20))
    await world.start(locations=("east",), agents=(), extra=extra)
    store = world.service.runner.store
    writes = []
    real = store._insert_flips

    async def counted(batch):
        writes.append(len(batch))
        return await real(batch)

    monkeypatch.setattr(store, "_insert_flips", counted)
    ids = [await monitor_id(world.db, f"w{i}") for i in range(20)]
    t = world.clock.now()
    at = [(t - timedelta(seconds=20)).isoformat(), (t - timedelta(seconds=10)).isoformat()]
    # Each monitor's first check (UNKNOWN -> UP), and for w0 a second, failing one, later in the same batch.
    results = [{"monitor_id": mid, "at": at[0], "outcome": "up"} for mid in ids]
    results.append({"monitor_id": ids[0], "at": at[1], "outcome": "down", "reason": "refused"})
    resp = await _post(world, world.tokens["east"], {"agent": "e1", "seq": 1, "results": results[::-1]})
    assert resp.status == 200 and (await resp.json())["accepted"] == 21
    assert max(writes) == 20 and len(writes) <= 2  # the 20 first-check flips in one transaction, not 20
    assert all(world.service.runner.memories[mid].state.value == "UP" for mid in ids[1:])
    # w0: UP from its first check, then the failing one on top of it (in the other order the earlier, passing
    # check would have been dropped as older than the one kept, and w0 would never have been UP).
    flips = await flips_of(world.db, ids[0])
    assert (flips[0].old_state, flips[0].new_state) == ("UNKNOWN", "UP") and flips[1].old_state == "UP"
