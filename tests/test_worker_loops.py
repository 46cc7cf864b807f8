"""Every background loop of the running service survives a poisoned item (issue 11, the guard).

``Service.loops()`` is the one list the service starts its loops from; ``POISONS`` has one case per loop name,
and ``test_every_loop_of_the_service_has_a_poison_case`` fails when a loop is added without one. Each case
poisons one item the way it really goes bad, puts ordinary items beside it, runs the loop's own pass (the
function the started loop runs) on the real service built by ``build_service``, on SQLite and PostgreSQL, and
checks: the ordinary items went through, the poisoned one carries its error and is counted in
``negahban_worker_item_failures_total{worker, outcome}``, it is set aside after ``MAX_ITEM_ATTEMPTS``, and
the loop goes on (every pass returns, and an item added afterwards is processed).

Where no stored value can break a step, the database refuses the write for one row (a trigger, as a lock
timeout, a check constraint or a revoked privilege would in production): that is a real error of the real
database, raised inside the loop's own transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, func, select, text, update

from incidents.escalation import set_policy
from incidents.models import (
    Audience,
    ChannelKind,
    Incident,
    NoticeStatus,
    Notification,
    Severity,
    Source,
    Status,
)
from incidents.statuspage.subscriptions import confirm, subscribe_email
from incidents.store import open_incident
from monitor.accounts import Role, create_user, issue_token
from monitor.inventory import apply_inventory, parse_inventory
from monitor.maintenance import create_window
from monitor.models import (
    Customer,
    Flip,
    MaintenanceWindow,
    Monitor,
    ProbeResultRow,
    RollupArchive,
    RollupFine,
    Server,
    WorkerItemFailure,
)
from monitor.models import Service as ServiceRow
from monitor.rollups import DAY, FINE_S, HOUR, Bucket, pack
from monitor.settings import load_settings
from monitor.work import MAX_ITEM_ATTEMPTS
from negahban.service import Service, build_service
from probes import Outcome, ProbeResult
from tests.incident_support import add, channel, count, flip, server_with_monitor
from tickets.models import Ticket

# --- the environment: the real service and one loopback peer (probe target, webhook, Alertmanager API) ------


@dataclass
class Peer:
    """An HTTP server on 127.0.0.1: ``/`` answers 200 (a probe target), ``/hook`` records webhooks, and
    ``/api/v2/alerts`` answers Alertmanager's list (empty: every alert is gone)."""

    runner: web.AppRunner | None = None
    hooks: list[dict] = field(default_factory=list)

    async def start(self) -> str:
        async def hook(request):
            self.hooks.append(await request.json())
            return web.Response(text="ok")

        async def target(request):
            return web.Response(text="hello")

        async def alerts(request):
            return web.json_response([])

        app = web.Application()
        app.router.add_get("/", target)
        app.router.add_post("/hook", hook)
        app.router.add_get("/api/v2/alerts", alerts)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"


@dataclass
class Env:
    service: Service
    db: object
    clock: object
    registry: CollectorRegistry
    url: str
    peer: Peer

    @property
    def sm(self):
        return self.service.sessionmaker

    def loop(self, name: str):
        return next(loop for loop in self.service.loops() if loop.name == name)

    async def run(self, name: str, times: int = 1) -> list:
        """Run the loop's own pass ``times`` times; a pass that raised would end the test here."""
        return [await self.loop(name).run_pass() for _ in range(times)]

    def failures(self, worker: str, outcome: str) -> float:
        return self.registry.get_sample_value("negahban_worker_item_failures_total",
                                              {"worker": worker, "outcome": outcome})

    async def ledger(self, worker: str) -> dict[str, WorkerItemFailure]:
        async with self.sm() as s:
            rows = (await s.execute(select(WorkerItemFailure).where(WorkerItemFailure.worker == worker))).scalars()
            return {r.item: r for r in rows}


@pytest.fixture
async def env(db, clock):
    peer = Peer()
    url = await peer.start()
    registry = CollectorRegistry()
    settings = load_settings({}, database_url=db.url, alertmanager_url=url, listen_port=0)
    service = await build_service(settings, clock=clock, registry=registry)
    try:
        yield Env(service, db, clock, registry, url, peer)
    finally:
        await service.probe_ctx.close()
        await service.extras["http"].close()
        if service.extras["incident_db"] is not service.engine:
            await service.extras["incident_db"].dispose()
        await service.engine.dispose()
        await peer.runner.cleanup()


async def refuse(env: Env, table: str, op: str, condition: str, why: str) -> None:
    """Make the database refuse ``op`` (UPDATE or DELETE) of the rows of ``table`` matching ``condition``
    (written over ``OLD``), until ``allow`` drops the trigger."""
    async with env.db.engine.begin() as conn:
        if env.db.kind == "sqlite":
            await conn.execute(text(f"CREATE TRIGGER refuse_{table} BEFORE {op} ON {table} WHEN {condition} "
                                    f"BEGIN SELECT RAISE(ABORT, '{why}'); END"))
        else:
            await conn.execute(text(
                f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {condition} THEN RAISE EXCEPTION '{why}'; END IF; RETURN COALESCE(NEW, OLD); END $$"))
            await conn.execute(text(f"CREATE TRIGGER refuse_{table} BEFORE {op} ON {table} FOR EACH ROW "
                                    f"EXECUTE FUNCTION refuse_{table}()"))


async def allow(env: Env, table: str) -> None:
    async with env.db.engine.begin() as conn:
        if env.db.kind == "sqlite":
            await conn.execute(text(f"DROP TRIGGER IF EXISTS refuse_{table}"))
        else:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS refuse_{table} ON {table}"))
            await conn.execute(text(f"DROP FUNCTION IF EXISTS refuse_{table}()"))


async def http_monitors(env: Env, names: list[str], interval: int = 60) -> dict[str, int]:
    """HTTP monitors of the peer, one customer service each; returns name -> monitor id."""
    customers = "\n".join(f"  - {{name: c-{n}, verified: true, services: [{{name: s-{n}}}]}}" for n in names)
    monitors = "\n".join(f'  - {{name: {n}, kind: http, target: "{env.url}/", service: s-{n}, '
                         f"interval: {interval}}}" for n in names)
    inv, specs = parse_inventory(f"customers:\n{customers}\nmonitors:\n{monitors}\n")
    await apply_inventory(env.sm, inv, specs, env.clock.now())
    async with env.sm() as s:
        return dict((await s.execute(select(Monitor.name, Monitor.id).where(Monitor.name.in_(names)))).all())


def assert_set_aside(entry: WorkerItemFailure | None, error: str) -> None:
    assert entry is not None and entry.attempts == MAX_ITEM_ATTEMPTS and entry.gave_up_at is not None
    assert error in entry.error


# --- the poison cases, one per loop ------------------------------------------------------------------------


async def poison_checks(env: Env) -> None:
    """A monitor deleted while the scheduler still has it: its flip cannot be written (the foreign key), and
    it must not fail the flips written in the same group commit."""
    ids = await http_monitors(env, ["web-a", "web-b", "web-c", "gone"])
    scheduler = env.service.scheduler
    await scheduler.reload(force=True)
    async with env.sm() as s, s.begin():
        await s.execute(delete(Monitor).where(Monitor.id == ids["gone"]))
    for rounds in (1, 2):
        env.clock.advance(60)  # every planned start is due, none is armed for later
        await env.run("checks")
        await scheduler.wait_idle()
        assert env.registry.get_sample_value("negahban_checks_total", {"outcome": "up"}) == 3 * rounds
        assert env.failures("checks", "retry") == rounds  # the deleted one is tried again, counted each time
    async with env.sm() as s:
        flipped = set((await s.execute(select(Flip.monitor_id))).scalars())
    assert flipped == {ids["web-a"], ids["web-b"], ids["web-c"]}


async def poison_catalog_reload(env: Env) -> None:
    """A monitor row whose spec is not an object (written by hand): reading it raised out of the whole reload."""
    ids = await http_monitors(env, ["web-a", "web-b", "broken"])
    async with env.sm() as s, s.begin():
        await s.execute(update(Monitor).where(Monitor.id == ids["broken"]).values(spec=[1, 2]))
    await env.run("catalog_reload")
    catalog = env.service.scheduler.catalog
    assert ids["web-a"] in catalog and ids["web-b"] in catalog and ids["broken"] not in catalog
    assert env.failures("catalog_reload", "gave_up") == 1
    later = await http_monitors(env, ["web-later"])
    await env.run("catalog_reload")
    assert later["web-later"] in env.service.scheduler.catalog


async def poison_result_flush(env: Env) -> None:
    """A failed check whose details hold a value JSON cannot carry (a probe breaking its contract: a
    certificate's not-after as a datetime, not ISO text): the flush failed as a whole and kept everything
    buffered, for ever, so no result of any monitor was written again."""
    ids = await http_monitors(env, ["web-a", "web-b", "odd"])
    scheduler, runner = env.service.scheduler, env.service.runner
    await scheduler.reload(force=True)
    for mid in ids.values():
        await runner.apply(scheduler.catalog[mid], ProbeResult(Outcome.UP, "ok", "", 0.01))  # UNKNOWN -> UP
    for name, mid in ids.items():
        details = {"not_after": datetime(2027, 1, 1, tzinfo=UTC)} if name == "odd" else {"status": 503}
        await runner.apply(scheduler.catalog[mid], ProbeResult(Outcome.DOWN, "status_mismatch", "503", 0.02,
                                                               details=details))
    await env.run("result_flush")
    async with env.sm() as s:
        stored = set((await s.execute(select(ProbeResultRow.monitor_id).where(
            ProbeResultRow.outcome == "down"))).scalars())
        fine = set((await s.execute(select(RollupFine.monitor_id))).scalars())
    assert stored == {ids["web-a"], ids["web-b"]} and fine == {ids["web-a"], ids["web-b"]}
    assert env.failures("result_flush", "retry") == 1 and runner.store.buffered() > 0  # kept for later
    await env.run("result_flush", MAX_ITEM_ATTEMPTS - 1)
    assert env.failures("result_flush", "gave_up") == 1 and runner.store.buffered() == 0  # then dropped
    assert_set_aside((await env.ledger("result_flush")).get(f"monitor:{ids['odd']}"), "not JSON serializable")
    await runner.apply(scheduler.catalog[ids["odd"]], ProbeResult(Outcome.DOWN, "timeout", "", 5.0))
    await env.run("result_flush")
    assert await count(env.sm, ProbeResultRow.id, ProbeResultRow.monitor_id == ids["odd"],
                       ProbeResultRow.outcome == "down") == 1  # its next, ordinary check is written


async def _monitor_ids(env: Env, n: int) -> list[int]:
    return [(await server_with_monitor(env.sm, f"m{i}")).id for i in range(n)]


async def poison_rollups_hourly(env: Env) -> None:
    """A monitor whose archive row of the day is corrupt (a truncated blob): unpacking it raised and no
    monitor's hourly rollups were compacted."""
    bad, *good = await _monitor_ids(env, 3)
    hour = int(env.clock.now().timestamp()) // HOUR - 1  # the last closed hour
    await add(env.sm, *[RollupFine(monitor_id=m, bucket=hour * 12 + 1, checks=10, up=9, down=1, latency_min=0.1,
                                   latency_sum=2.0, latency_max=0.5) for m in (bad, *good)],
              RollupArchive(monitor_id=bad, resolution=HOUR, period=hour // 24, slots=b"\x01\x02\x03"))
    await env.run("rollups_hourly", MAX_ITEM_ATTEMPTS + 1)
    async with env.sm() as s:
        written = set((await s.execute(select(RollupArchive.monitor_id).where(
            RollupArchive.resolution == HOUR, RollupArchive.slots != b"\x01\x02\x03"))).scalars())
    assert written == set(good)
    assert env.failures("rollups_hourly", "retry") == MAX_ITEM_ATTEMPTS - 1
    assert env.failures("rollups_hourly", "gave_up") == 1  # and the fourth pass skipped it
    assert_set_aside((await env.ledger("rollups_hourly")).get(f"monitor:{bad}"), "struct.error")


async def poison_rollups_daily(env: Env) -> None:
    """A monitor whose hourly archive row of yesterday is corrupt: no monitor's daily rollup was written."""
    bad, *good = await _monitor_ids(env, 3)
    day = int(env.clock.now().timestamp()) // DAY - 1
    hours = pack([Bucket(12, 12, 0, 0, 0.1, 1.2, 0.2)] * 24)
    await add(env.sm, RollupArchive(monitor_id=bad, resolution=HOUR, period=day, slots=b"\x00" * 29),
              *[RollupArchive(monitor_id=m, resolution=HOUR, period=day, slots=hours) for m in good])
    await env.run("rollups_daily", MAX_ITEM_ATTEMPTS + 1)
    async with env.sm() as s:
        written = set((await s.execute(select(RollupArchive.monitor_id).where(
            RollupArchive.resolution == DAY))).scalars())
    assert written == set(good)
    assert env.failures("rollups_daily", "gave_up") == 1
    assert_set_aside((await env.ledger("rollups_daily")).get(f"monitor:{bad}"), "error")


async def poison_retention(env: Env) -> None:
    """The 5-minute rollups cannot be deleted (the database refuses): the purge of every table failed with
    it, in its one transaction."""
    (mid,) = await _monitor_ids(env, 1)
    now = env.clock.now()
    old = int((now - timedelta(days=100)).timestamp())
    await add(env.sm, RollupFine(monitor_id=mid, bucket=old // FINE_S, checks=1, up=1),
              RollupArchive(monitor_id=mid, resolution=HOUR, period=old // DAY, slots=b""),
              ProbeResultRow(monitor_id=mid, at=now - timedelta(days=30), outcome="down", reason="timeout",
                             message="", latency_s=5.0, details={}))
    await refuse(env, "rollups_fine", "DELETE", "OLD.checks > 0", "rollups_fine is being archived")
    try:
        await env.run("retention", MAX_ITEM_ATTEMPTS + 1)
    finally:
        await allow(env, "rollups_fine")
    assert await count(env.sm, ProbeResultRow.id) == 0 and await count(env.sm, RollupArchive.monitor_id) == 0
    assert await count(env.sm, RollupFine.monitor_id) == 1
    assert env.failures("retention", "retry") == MAX_ITEM_ATTEMPTS - 1
    assert env.failures("retention", "gave_up") == 1
    assert_set_aside((await env.ledger("retention")).get("table:rollups_fine"), "being archived")


async def poison_incident_engine(env: Env) -> None:
    """A server whose maintenance window has a corrupt RRULE: deciding its flip raises. And, for the recovery
    sweep of the same loop, a recovered incident the database will not let change."""
    stuck, healed = await _recovered(env, "stuck"), await _recovered(env, "healed")
    await refuse(env, "incidents", "UPDATE", f"OLD.id = {stuck}", "incident row locked")
    try:
        await _poison_flips(env)
    finally:
        await allow(env, "incidents")
    async with env.sm() as s:
        status = dict((await s.execute(select(Incident.id, Incident.status))).all())
    assert status[healed] == Status.RESOLVED and status[stuck] != Status.RESOLVED
    assert env.failures("incident_recovery", "gave_up") == 1
    assert_set_aside((await env.ledger("incident_recovery")).get(f"incident:{stuck}"), "incident row locked")


async def _recovered(env: Env, name: str) -> int:
    mon = await server_with_monitor(env.sm, name)
    async with env.sm() as s, s.begin():
        incident = await open_incident(s, key=f"monitor:{mon.id}", source=Source.MONITOR, severity=Severity.URGENT,
                                       title=name, opened_at=env.clock.now() - timedelta(hours=2),
                                       now=env.clock.now(), monitor_id=mon.id)
        incident.recovering_since = env.clock.now() - timedelta(hours=1)
    return incident.id


async def _poison_flips(env: Env) -> None:
    before = await count(env.sm, Incident.id)
    mon = await server_with_monitor(env.sm, "poisoned")
    await add(env.sm, MaintenanceWindow(title="corrupt", starts_at=env.clock.now() - timedelta(days=1),
                                        rrule="FREQ=NONSENSE", duration_s=60, server_id=mon.server_id))
    poisoned = await flip(env.sm, mon.id, env.clock.now(), "UP", "DOWN")
    for i in range(5):
        other = await server_with_monitor(env.sm, f"web-{i}")
        await flip(env.sm, other.id, env.clock.now() + timedelta(seconds=1), "UP", "DOWN")
    await env.run("incident_engine", MAX_ITEM_ATTEMPTS + 1)
    assert await count(env.sm, Incident.id) == before + 5
    async with env.sm() as s:
        bad = await s.get(Flip, poisoned)
    assert bad.processed_at is not None and bad.attempts == MAX_ITEM_ATTEMPTS and "FREQ" in bad.error
    assert env.failures("incident_engine", "gave_up") == 1
    later = await server_with_monitor(env.sm, "later")
    await flip(env.sm, later.id, env.clock.now(), "UP", "DOWN")
    await env.run("incident_engine")
    assert await count(env.sm, Incident.id) == before + 6


async def poison_dispatcher(env: Env) -> None:
    """An e-mail channel whose address holds a line break (pasted by hand): the real EmailNotifier raises
    ValueError building the message, which is no DeliveryFailed."""
    broken = await channel(env.sm, "pasted", kind=ChannelKind.EMAIL, address="noc@example.com\nBcc: x@example.com")
    hook = await channel(env.sm, "hook", address=f"{env.url}/hook")
    now = env.clock.now()
    rows = [Notification(dedup_key=f"n{i}", channel_id=(broken if i == 0 else hook).id, kind="opened",
                         subject="s", body="b", created_at=now, next_attempt_at=now) for i in range(4)]
    await add(env.sm, *rows)
    await env.run("dispatcher")
    assert len(env.peer.hooks) == 3
    max_attempts = env.service.extras["incidents"].dispatcher.config.max_attempts
    for _ in range(max_attempts - 1):
        env.clock.advance(3600)  # past its backoff
        await env.run("dispatcher")
    async with env.sm() as s:
        failed = await s.get(Notification, rows[0].id)
    assert failed.status == NoticeStatus.FAILED and "ValueError" in failed.last_error
    assert env.failures("dispatcher", "retry") == max_attempts - 1 and env.failures("dispatcher", "gave_up") == 1


async def _urgent(env: Env, name: str, source: Source = Source.MONITOR) -> int:
    async with env.sm() as s, s.begin():
        incident = await open_incident(s, key=f"{source}:{name}", source=source, severity=Severity.URGENT,
                                       title=name, opened_at=env.clock.now() - timedelta(minutes=10),
                                       now=env.clock.now())
    return incident.id


async def poison_escalation(env: Env) -> None:
    """An incident the database will not let change: its escalation step fails every time."""
    noc = await channel(env.sm, "noc-hook", Audience.NOC, address=f"{env.url}/hook")
    await set_policy(env.sm, env.service.settings.escalation_policy, [(0, noc.id)])
    bad, *good = [await _urgent(env, f"outage-{i}") for i in range(3)]
    await refuse(env, "incidents", "UPDATE", f"OLD.id = {bad}", "incident row locked")
    try:
        assert await env.run("escalation", MAX_ITEM_ATTEMPTS + 1) == [2, 0, 0, 0]
        later = await _urgent(env, "outage-later")
        assert await env.run("escalation") == [1]
    finally:
        await allow(env, "incidents")
    async with env.sm() as s:
        levels = dict((await s.execute(select(Incident.id, Incident.escalation_level))).all())
    assert levels == {bad: 0, good[0]: 1, good[1]: 1, later: 1}
    assert env.failures("escalation", "gave_up") == 1
    assert_set_aside((await env.ledger("escalation")).get(f"incident:{bad}"), "incident row locked")


async def poison_alertmanager_reconcile(env: Env) -> None:
    """Three alert incidents whose alerts are gone from Alertmanager; one cannot be changed. Before, one
    transaction resolved all of them, so the two others stayed open for ever."""
    bad, *good = [await _urgent(env, f"alert-{i}", Source.ALERTMANAGER) for i in range(3)]
    await refuse(env, "incidents", "UPDATE", f"OLD.id = {bad}", "incident row locked")
    try:
        assert await env.run("alertmanager_reconcile", MAX_ITEM_ATTEMPTS + 1) == [2, 0, 0, 0]
        later = await _urgent(env, "alert-later", Source.ALERTMANAGER)
        assert await env.run("alertmanager_reconcile") == [1]
    finally:
        await allow(env, "incidents")
    async with env.sm() as s:
        rows = {i.id: i for i in (await s.execute(select(Incident))).scalars()}
    assert rows[bad].status != Status.RESOLVED
    for incident_id in (*good, later):
        assert rows[incident_id].status == Status.RESOLVED
        assert rows[incident_id].resolved_at == env.clock.now()  # resolved at the reconcile moment
    assert env.failures("alertmanager_reconcile", "retry") == MAX_ITEM_ATTEMPTS - 1
    assert env.failures("alertmanager_reconcile", "gave_up") == 1
    assert_set_aside((await env.ledger("alertmanager_reconcile")).get(f"incident:{bad}"), "incident row locked")


async def _incident_with_service(env: Env, name: str, severity: str) -> int:
    mon = await server_with_monitor(env.sm, name)
    async with env.sm() as s, s.begin():
        service_id = (await s.get(Server, mon.server_id)).service_id
        incident = await open_incident(s, key=f"monitor:{mon.id}", source=Source.MONITOR,
                                       severity=Severity.URGENT, title=name, opened_at=env.clock.now(),
                                       now=env.clock.now(), monitor_id=mon.id, service_id=service_id)
        incident.severity = severity  # "bogus": a value the desk cannot render
    return incident.id


async def poison_auto_ticketing(env: Env) -> None:
    """An incident whose severity the desk cannot render."""
    bad = await _incident_with_service(env, "bad", "bogus")
    for i in range(3):
        await _incident_with_service(env, f"ok-{i}", "urgent")
    assert await env.run("auto_ticketing", MAX_ITEM_ATTEMPTS + 1) == [3, 0, 0, 0]
    async with env.sm() as s:
        incident = await s.get(Incident, bad)
    assert incident.ticket_opened_at is None and incident.desk_attempts == MAX_ITEM_ATTEMPTS
    assert "bogus" in incident.desk_error and env.failures("auto_ticketing", "gave_up") == 1
    await _incident_with_service(env, "later", "important")
    assert await env.run("auto_ticketing") == [1] and await count(env.sm, Ticket.id) == 4


async def poison_heartbeat_sweep(env: Env) -> None:
    """A silent heartbeat monitor whose late result the database refuses (its flip cannot be written): the
    sweep still gives the other silent monitors theirs, counts the one it could not, and gives it its result
    on a later pass once it can be written."""
    from monitor.heartbeat import Ping, Signal

    names = ["backup-a", "backup-b", "backup-bad"]
    customers = "\n".join(f"  - {{name: c-{n}, verified: true, services: [{{name: s-{n}}}]}}" for n in names)
    monitors = "\n".join(f"  - {{name: {n}, kind: heartbeat, period_s: 3600, grace_s: 600, service: s-{n}}}"
                         for n in names)
    inv, specs = parse_inventory(f"customers:\n{customers}\nmonitors:\n{monitors}\n")
    tokens = (await apply_inventory(env.sm, inv, specs, env.clock.now()))["new_ping_tokens"]
    await env.service.scheduler.reload(force=True)
    heartbeats = env.service.extras["heartbeats"]
    for name in names:
        assert await heartbeats.receive(tokens[name], Ping(Signal.SUCCESS, env.clock.now()))
    async with env.sm() as s:
        ids = dict((await s.execute(select(Monitor.name, Monitor.id).where(Monitor.name.in_(names)))).all())
    await refuse(env, "flips", "INSERT", f"NEW.monitor_id = {ids['backup-bad']}", "poisoned flip")
    env.clock.advance(3600 + 600 + 60)
    try:
        assert await env.run("heartbeat_sweep") == [2]
        assert env.failures("heartbeat_sweep", "retry") == 1
    finally:
        await allow(env, "flips")
    async with env.sm() as s:
        late = set((await s.execute(select(Flip.monitor_id).where(Flip.new_state == "DOWN"))).scalars())
    assert late == {ids["backup-a"], ids["backup-b"]}
    assert await env.run("heartbeat_sweep") == [1]


async def poison_maintenance_notices(env: Env) -> None:
    """Three planned windows on a public service; the database refuses the notices of one. Its window is set
    aside after a few passes; the two others are announced on the first pass, once."""
    ids = await http_monitors(env, ["pub-a"])
    async with env.sm() as s, s.begin():
        await s.execute(update(ServiceRow).values(public_status=True, display_name="پرتال"))
    await subscribe_email(env.sm, "ali@example.com", "http://status.test", env.clock.now(),
                          new_token=lambda: "t" * 40)
    await confirm(env.sm, "t" * 40, env.clock.now())
    start = env.clock.now() + timedelta(days=1)
    bad, *good = [(await create_window(env.sm, starts_at=start + timedelta(hours=i), now=env.clock.now(),
                                       ends_at=start + timedelta(hours=i, minutes=30),
                                       monitor_id=ids["pub-a"])).id for i in range(3)]
    await refuse(env, "notifications", "INSERT", f"NEW.dedup_key LIKE 'status:maintenance:{bad}:%'",
                 "notice refused")
    try:
        assert await env.run("maintenance_notices", MAX_ITEM_ATTEMPTS + 1) == [2, 0, 0, 0]
    finally:
        await allow(env, "notifications")
    assert env.failures("maintenance_notices", "gave_up") == 1
    assert_set_aside((await env.ledger("maintenance_notices")).get(f"window:{bad}"), "notice refused")
    async with env.sm() as s:
        keys = sorted((await s.execute(select(Notification.dedup_key).where(
            Notification.dedup_key.like("status:maintenance:%")))).scalars())
    assert [k.split(":")[2] for k in keys] == sorted(str(g) for g in good)


POISONS: dict[str, Callable[[Env], Awaitable[None]]] = {
    "checks": poison_checks,
    "catalog_reload": poison_catalog_reload,
    "result_flush": poison_result_flush,
    "rollups_hourly": poison_rollups_hourly,
    "rollups_daily": poison_rollups_daily,
    "retention": poison_retention,
    "incident_engine": poison_incident_engine,
    "dispatcher": poison_dispatcher,
    "escalation": poison_escalation,
    "alertmanager_reconcile": poison_alertmanager_reconcile,
    "auto_ticketing": poison_auto_ticketing,
    "heartbeat_sweep": poison_heartbeat_sweep,
    "maintenance_notices": poison_maintenance_notices,
}


async def test_every_loop_of_the_service_has_a_poison_case(env):
    assert {loop.name for loop in env.service.loops()} == set(POISONS)


@pytest.mark.parametrize("name", sorted(POISONS))
async def test_the_loop_survives_a_poisoned_item(env, name):
    await POISONS[name](env)


async def test_every_worker_series_exists_at_zero_before_the_first_failure(env):
    workers = env.service.worker_names()
    assert {loop.name for loop in env.service.loops()} <= workers
    assert {"incident_recovery", "alertmanager"} <= workers
    for worker in workers:
        for outcome in ("retry", "gave_up"):
            assert env.failures(worker, outcome) == 0.0, (worker, outcome)


async def test_the_started_service_runs_exactly_the_loops_it_names(env):
    service = env.service
    await service.start()
    try:
        jobs = {job.id for job in service.scheduler.aps.get_jobs()}
        tasks = {task.get_name() for task in service.extras["incidents"]._tasks if not task.done()}
        named = {loop.name: loop for loop in service.loops()}
        assert jobs | tasks == set(named)
        assert tasks == {name for name, loop in named.items() if loop.task is not None}
    finally:
        await service.stop()
        assert all(task.done() for task in asyncio.all_tasks() if task.get_name() in named)


async def test_a_set_aside_item_is_forgotten_once_it_goes_through(env):
    """An item that failed, then succeeded, starts again from zero attempts (no later give-up by old count)."""
    bad, *_ = await _monitor_ids(env, 2)
    hour = int(env.clock.now().timestamp()) // HOUR - 1
    await add(env.sm, RollupFine(monitor_id=bad, bucket=hour * 12, checks=1, up=1),
              RollupArchive(monitor_id=bad, resolution=HOUR, period=hour // 24, slots=b"\x01"))
    await env.run("rollups_hourly")
    assert (await env.ledger("rollups_hourly"))[f"monitor:{bad}"].attempts == 1
    async with env.sm() as s, s.begin():
        await s.execute(delete(RollupArchive).where(RollupArchive.monitor_id == bad))
    assert await env.run("rollups_hourly") == [1]
    assert await env.ledger("rollups_hourly") == {}
    assert await count(env.sm, RollupArchive.monitor_id, func.length(RollupArchive.slots) > 0) == 1


async def _token(env: Env, name: str, role: Role, customer_id: int | None = None) -> dict[str, str]:
    async with env.sm() as s, s.begin():
        user = await create_user(s, name, role, customer_id=customer_id)
        return {"Authorization": f"Bearer {await issue_token(s, user.id, name, env.clock.now())}"}


async def test_the_noc_reads_the_set_aside_items_and_a_customer_cannot(env):
    await poison_retention(env)
    await _poison_flips(env)
    async with env.sm() as s:
        customer_id = (await s.execute(select(Customer.id).limit(1))).scalar()
    noc = await _token(env, "noc-1", Role.NOC)
    customer = await _token(env, "cust-1", Role.CUSTOMER, customer_id)
    async with TestClient(TestServer(env.service.app, host="127.0.0.1")) as client:
        page = await client.get("/api/v1/worker-failures", params={"set_aside": "true", "limit": "1"}, headers=noc)
        first = await page.json()
        rest = await (await client.get("/api/v1/worker-failures", params={"set_aside": "true", "page": "2",
                                                                           "limit": "1"}, headers=noc)).json()
        refused = await client.get("/api/v1/worker-failures", headers=customer)
        bad = await client.get("/api/v1/worker-failures", params={"limit": "0"}, headers=noc)
        bad_text = await bad.text()
    assert page.status == 200 and 'rel="next"' in page.headers["Link"]
    items = {(r["worker"], r["item"].split(":")[0]): r for r in first + rest}
    assert set(items) == {("retention", "table"), ("incident_engine", "flip")}
    assert items[("retention", "table")]["item"] == "table:rollups_fine"
    assert "being archived" in items[("retention", "table")]["error"]
    assert all(r["set_aside"] and r["attempts"] == MAX_ITEM_ATTEMPTS for r in items.values())
    assert refused.status == 403
    assert bad.status == 400 and "limit" in bad_text
