"""Heartbeat monitors through the real HTTP route (/hb/...), the runner, evaluate, flips and incidents, with a
manual clock: on time, late, failed, slow, rate-limited, unknown tokens, oversized bodies, a restart."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, select

from incidents.models import Status
from monitor.inventory import apply_inventory, export_inventory, parse_inventory
from monitor.models import Flip, Heartbeat, Monitor
from monitor.settings import load_settings
from negahban.service import build_service
from tests.incident_support import incidents

PERIOD, GRACE = 3600, 300
HOLD_S = 120


def _inventory(*monitors: str) -> str:
    rows = "\n".join(f"  - {m}" for m in monitors)
    return f"""
customers: [{{name: acme, verified: true, services: [{{name: acme-backup}}]}}]
monitors:
{rows}
"""


BACKUP = f"{{name: acme-backup, kind: heartbeat, service: acme-backup, period_s: {PERIOD}, grace_s: {GRACE}}}"


async def _world(db, clock, text: str = _inventory(BACKUP), **settings):
    inv, specs = parse_inventory(text)
    counts = await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    registry = CollectorRegistry()
    service = await build_service(load_settings({}, database_url=db.url, incident_recovery_hold_seconds=HOLD_S,
                                                **settings), clock=clock, registry=registry)
    await service.runner.load_states()
    await service.scheduler.reload(force=True)
    client = TestClient(TestServer(service.app, host="127.0.0.1"))
    await client.start_server()
    return service, client, counts.get("new_ping_tokens", {}), registry


async def _close(service, client) -> None:
    await client.close()
    await service.probe_ctx.close()
    await service.extras["http"].close()
    await service.engine.dispose()


async def _flips(db) -> list[tuple[str, str]]:
    async with db.sessionmaker() as s:
        return [(f.new_state, f.reason) for f in (await s.execute(select(Flip).order_by(Flip.id))).scalars()]


def _state(service, name: str) -> str:
    mid = next(m for m, c in service.scheduler.catalog.items() if c.name == name)
    return service.runner.memories[mid].state.value


async def test_a_ping_on_time_is_up_and_silence_past_the_grace_is_down_late_with_an_incident(db, clock):
    service, client, tokens, _ = await _world(db, clock)
    sweep, engine = service.extras["heartbeats"].sweep, service.extras["incidents"].engine
    try:
        token = tokens["acme-backup"]
        assert (await client.get(f"/hb/{token}")).status == 200
        assert _state(service, "acme-backup") == "UP"
        clock.advance(PERIOD - 10)
        assert (await client.post(f"/hb/{token}", data=b"backup done: 12 GB")).status == 200
        clock.advance(PERIOD + GRACE - 1)  # one second inside the grace
        assert await sweep() == 0
        clock.advance(2)
        assert await sweep() == 1
        assert await _flips(db) == [("UP", "first_check"), ("DOWN", "heartbeat_late")]
        await engine.process_pending()
        (inc,) = await incidents(db.sessionmaker)
        assert inc.status == Status.TRIGGERED
        clock.advance(60)
        assert await sweep() == 0  # already DOWN: no verdict every sweep, no second flip
        assert (await client.get(f"/hb/{token}/0")).status == 200
        assert (await _flips(db))[-1] == ("UP", "recovered")
        await engine.process_pending()
        assert len(await incidents(db.sessionmaker)) == 1
    finally:
        await _close(service, client)


@pytest.mark.parametrize("suffix, code", [("/fail", None), ("/2", 2)])
async def test_a_failure_signal_or_a_non_zero_exit_status_is_down_heartbeat_failed(db, clock, suffix, code):
    service, client, tokens, _ = await _world(db, clock)
    try:
        token = tokens["acme-backup"]
        assert (await client.get(f"/hb/{token}")).status == 200
        resp = await client.post(f"/hb/{token}{suffix}", data="tar: /var/backups: No space left on device")
        assert resp.status == 200
        assert await _flips(db) == [("UP", "first_check"), ("DOWN", "heartbeat_failed")]
        async with db.sessionmaker() as s:
            flip = (await s.execute(select(Flip).order_by(Flip.id.desc()))).scalars().first()
        assert "No space left on device" in flip.message
        latest = next(iter(service.runner.latest.values())).result
        assert latest.details["exit_code"] == code and latest.details["log"].startswith("tar:")
        await service.extras["incidents"].engine.process_pending()
        assert len(await incidents(db.sessionmaker)) == 1
    finally:
        await _close(service, client)


async def test_start_then_success_measures_the_run_and_a_run_over_the_maximum_is_degraded(db, clock):
    slow = (f"{{name: acme-dump, kind: heartbeat, service: acme-backup, period_s: {PERIOD}, grace_s: {GRACE}, "
            "max_run_s: 600}")
    service, client, tokens, registry = await _world(db, clock, _inventory(BACKUP, slow))
    sweep = service.extras["heartbeats"].sweep
    try:
        for name, run_s in (("acme-backup", 125), ("acme-dump", 125)):
            assert (await client.get(f"/hb/{tokens[name]}/start")).status == 200
            clock.advance(run_s)
            assert (await client.get(f"/hb/{tokens[name]}")).status == 200
        mid = next(m for m, c in service.scheduler.catalog.items() if c.name == "acme-backup")
        result = service.runner.latest[mid].result
        assert result.phases["run"] == 125 and result.details["run_s"] == 125 and result.latency_s == 125
        labels = {"monitor": "acme-backup", "service": "acme-backup", "customer": "acme"}
        assert registry.get_sample_value("negahban_heartbeat_run_seconds", labels) == 125
        assert _state(service, "acme-dump") == "UP"  # 125 s is under its 600 s
        token = tokens["acme-dump"]
        assert (await client.get(f"/hb/{token}/start")).status == 200
        clock.advance(601)
        assert await sweep() == 1  # still running past max_run_s
        assert _state(service, "acme-dump") == "DEGRADED"
        clock.advance(100)
        assert (await client.get(f"/hb/{token}/0")).status == 200  # finished, but took 701 s
        assert _state(service, "acme-dump") == "DEGRADED"
        assert service.runner.latest[next(m for m, c in service.scheduler.catalog.items()
                                          if c.name == "acme-dump")].result.reason == "heartbeat_slow"
        assert (await client.get(f"/hb/{token}/start")).status == 200
        clock.advance(30)
        assert (await client.get(f"/hb/{token}")).status == 200
        assert _state(service, "acme-dump") == "UP"
        assert [f for f in await _flips(db) if f[0] == "DEGRADED"] == [("DEGRADED", "heartbeat_slow")]
    finally:
        await _close(service, client)


async def test_pings_over_the_rate_are_429_for_known_and_unknown_tokens_alike(db, clock):
    service, client, tokens, _ = await _world(db, clock, heartbeat_pings_per_token_per_minute=3,
                                              heartbeat_pings_per_address_per_minute=8)
    try:
        for token in (tokens["acme-backup"], "no-such-token-" + "x" * 20):
            assert [(await client.get(f"/hb/{token}")).status for _ in range(4)] == [200, 200, 200, 429]
        limited = await client.get(f"/hb/{tokens['acme-backup']}")
        assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
        assert set(await limited.json()) == {"error", "field", "reason"}
        # Eight pings from this address so far (six answered, two refused): other tokens are refused too.
        assert (await client.get("/hb/another-token-entirely")).status == 429
        clock.advance(60)
        assert (await client.get(f"/hb/{tokens['acme-backup']}")).status == 200
    finally:
        await _close(service, client)


def _shape(resp, body: bytes) -> tuple:
    headers = {k: v for k, v in resp.headers.items() if k not in ("Date",)}
    return resp.status, headers, body


async def test_an_unknown_token_is_answered_exactly_like_a_known_one(db, clock):
    service, client, tokens, _ = await _world(db, clock)
    try:
        known, unknown = tokens["acme-backup"], "Zq" * 16  # the same length and alphabet as a real token
        for method, suffix, data in (("GET", "", None), ("GET", "/start", None), ("POST", "/fail", b"oops"),
                                     ("POST", "/0", b"")):
            answers = []
            for token in (known, unknown):
                resp = await client.request(method, f"/hb/{token}{suffix}", data=data)
                answers.append(_shape(resp, await resp.read()))
            assert answers[0] == answers[1], (method, suffix)
        assert (await client.get("/hb/x/256")).status == 400  # a bad status is refused whatever the token
        # Only the known token's monitor saw pings.
        assert [state for state, _ in await _flips(db)] == ["UP", "DOWN", "UP"]
    finally:
        await _close(service, client)


async def test_a_body_over_10_kb_is_413_and_changes_nothing(db, clock):
    service, client, tokens, _ = await _world(db, clock)
    try:
        token = tokens["acme-backup"]
        big = await client.post(f"/hb/{token}/fail", data=b"x" * (10 * 1024 + 1))
        assert big.status == 413 and (await big.json())["field"] == "<body>"
        assert await _flips(db) == []
        assert (await client.post(f"/hb/{token}/fail", data=b"x" * (10 * 1024))).status == 200
        assert await _flips(db) == [("DOWN", "heartbeat_failed")]
    finally:
        await _close(service, client)


async def test_after_an_hour_away_the_service_opens_no_storm_and_a_silent_job_is_late_a_period_later(db, clock):
    jobs = [f"{{name: job-{i}, kind: heartbeat, service: acme-backup, period_s: 600, grace_s: 60}}" for i in range(5)]
    service, client, tokens, _ = await _world(db, clock, _inventory(*jobs))
    for token in tokens.values():
        assert (await client.get(f"/hb/{token}")).status == 200
    await service.runner.flush()
    await _close(service, client)
    clock.advance(3600)  # every deadline falls while nobody listens
    service, client, _, _ = await _world(db, clock, _inventory(*jobs))
    sweep = service.extras["heartbeats"].sweep
    try:
        assert await sweep() == 0
        clock.advance(300)
        assert (await client.get(f"/hb/{tokens['job-0']}")).status == 200  # this job pings again
        clock.advance(600 + 60 - 300 - 1)
        assert await sweep() == 0
        clock.advance(2)
        assert await sweep() == 4  # the four still silent, one period after we came back
        late = sorted(s for s, r in await _flips(db) if r == "heartbeat_late")
        assert late == ["DOWN"] * 4
    finally:
        await _close(service, client)


async def test_the_export_carries_the_token_digest_never_the_token_and_applying_it_keeps_the_url(db, clock):
    inv, specs = parse_inventory(_inventory(BACKUP))
    token = (await apply_inventory(db.sessionmaker, inv, specs, clock.now()))["new_ping_tokens"]["acme-backup"]
    assert len(token) >= 32  # 192 bits, URL-safe
    exported = await export_inventory(db.sessionmaker)
    assert token not in exported
    (mon,) = yaml.safe_load(exported)["monitors"]
    assert mon["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert "interval" not in mon and "target" not in mon
    again, again_specs = parse_inventory(exported)
    assert "new_ping_tokens" not in await apply_inventory(db.sessionmaker, again, again_specs, clock.now())
    async with db.sessionmaker() as s, s.begin():  # as in a fresh database: the rows are gone
        await s.execute(delete(Heartbeat))
        await s.execute(delete(Monitor))
    assert "new_ping_tokens" not in await apply_inventory(db.sessionmaker, again, again_specs, clock.now())
    assert yaml.safe_load(await export_inventory(db.sessionmaker)) == yaml.safe_load(exported)
    service, client, _, _ = await _world(db, clock, exported)
    try:
        assert (await client.get(f"/hb/{token}/fail")).status == 200
        assert await _flips(db) == [("DOWN", "heartbeat_failed")]
    finally:
        await _close(service, client)


async def test_staff_rotate_a_token_and_the_old_one_stops_counting(db, clock):
    from monitor.accounts import Role, create_user, issue_token

    service, client, tokens, _ = await _world(db, clock)
    async with db.sessionmaker() as s, s.begin():
        nora = await create_user(s, "nora", Role.NOC)
        bearer = await issue_token(s, nora.id, "t", clock.now())
        mid = (await s.execute(select(Monitor.id).where(Monitor.name == "acme-backup"))).scalar_one()
    try:
        resp = await client.post(f"/api/v1/monitors/{mid}/ping-token", headers={"Authorization": f"Bearer {bearer}"})
        assert resp.status == 200
        new = await resp.json()
        assert new["ping_url"].endswith(f"/hb/{new['token']}") and new["token"] != tokens["acme-backup"]
        assert (await client.get(f"/hb/{tokens['acme-backup']}/fail")).status == 200  # looks the same ...
        assert await _flips(db) == []  # ... but counts for nothing
        assert (await client.get(f"/hb/{new['token']}")).status == 200
        assert await _flips(db) == [("UP", "first_check")]
    finally:
        await _close(service, client)


async def test_the_scheduler_never_starts_a_heartbeat(db, clock):
    service, client, _, _ = await _world(db, clock)
    try:
        assert len(service.scheduler.catalog) == 1
        clock.advance(7200)
        assert service.scheduler.dispatch_due() == 0
    finally:
        await _close(service, client)


async def test_a_job_silent_inside_a_maintenance_window_is_down_late_only_once_the_window_ends(db, clock):
    from datetime import timedelta

    from monitor.maintenance import create_window

    service, client, tokens, _ = await _world(db, clock)
    sweep = service.extras["heartbeats"].sweep
    try:
        assert (await client.get(f"/hb/{tokens['acme-backup']}")).status == 200
        mid = next(iter(service.scheduler.catalog))
        start = clock.now() + timedelta(seconds=PERIOD)
        await create_window(db.sessionmaker, starts_at=start, ends_at=start + timedelta(hours=2), now=clock.now(),
                            monitor_id=mid)
        await service.scheduler.reload(force=True)
        clock.advance(PERIOD + GRACE + 60)  # late, inside the window
        assert await sweep() == 1
        assert _state(service, "acme-backup") == "MAINTENANCE"
        await service.extras["incidents"].engine.process_pending()
        assert await incidents(db.sessionmaker) == []
        clock.advance(2 * 3600)  # the window is over and the job is still silent
        assert await sweep() == 1
        assert (await _flips(db))[-1] == ("DOWN", "heartbeat_late")
    finally:
        await _close(service, client)
