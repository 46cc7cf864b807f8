"""The engine end to end on loopback with a manual clock: dependencies, self-check canaries, maintenance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor.maintenance import create_window
from monitor.models import Flip, Monitor
from monitor.selfcheck import SELF_CHECK_NAME, ensure_selfcheck
from tests.engine.helpers import Engine, Target, apply_yaml

SERVERS = ("s1", "s2", "s3")


def _inventory(t: Target) -> str:
    servers = "\n".join(f"  - {{name: {s}, address: 127.0.0.1, parent: sw}}" for s in SERVERS)
    mons = "\n".join(f'  - {{name: {s}-web, kind: http, target: "{t.url(s)}", interval: 10, timeout_s: 2, '
                     f"server: {s}}}" for s in SERVERS)
    return f"""
devices:
  - {{name: sw, kind: switch, address: 127.0.0.1}}
servers:
{servers}
monitors:
  - {{name: sw-mgmt, kind: http, target: "{t.url('sw')}", interval: 10, timeout_s: 2, device: sw}}
{mons}
"""


@pytest.fixture
async def target():
    t = await Target().start()
    yield t
    await t.close()


@pytest.fixture
async def engine(sessionmaker, clock, target):
    await apply_yaml(sessionmaker, _inventory(target), clock.now())
    e = await Engine.create(sessionmaker, clock)
    yield e
    await e.close()


async def _run(engine: Engine, seconds: int) -> None:
    for _ in range(seconds):
        await engine.step(1)


def _states(engine: Engine) -> dict[str, str]:
    return {n: engine.state(n) for n in ("sw-mgmt", *(f"{s}-web" for s in SERVERS))}


async def _flips(sessionmaker) -> list[tuple[str, str, str, int | None]]:
    async with sessionmaker() as s:
        rows = await s.execute(select(Monitor.name, Flip.old_state, Flip.new_state, Flip.root_monitor_id)
                               .join(Monitor, Monitor.id == Flip.monitor_id).order_by(Flip.id))
        return [tuple(r) for r in rows.all()]


async def test_a_dead_switch_is_down_and_its_servers_are_unreachable(engine, target, sessionmaker):
    await engine.scheduler.reload(force=True)
    await _run(engine, 20)
    assert set(_states(engine).values()) == {"UP"}
    for path in ("sw", *SERVERS):
        target.status[path] = 503
    await _run(engine, 40)
    assert _states(engine) == {"sw-mgmt": "DOWN", "s1-web": "UNREACHABLE", "s2-web": "UNREACHABLE",
                               "s3-web": "UNREACHABLE"}
    sw = engine.id("sw-mgmt")
    outages = [f for f in await _flips(sessionmaker) if f[1] == "UP"]
    # no server reported an outage of its own first: each went straight to UNREACHABLE, naming the switch
    assert sorted(outages) == [("s1-web", "UP", "UNREACHABLE", sw), ("s2-web", "UP", "UNREACHABLE", sw),
                               ("s3-web", "UP", "UNREACHABLE", sw), ("sw-mgmt", "UP", "DOWN", None)]
    target.status.clear()
    await _run(engine, 40)
    assert set(_states(engine).values()) == {"UP"}


async def test_failing_canaries_hold_every_customer_state_and_raise_one_self_check_alert(
        engine, target, sessionmaker, clock):
    await ensure_selfcheck(sessionmaker, [target.url("gateway"), target.url("resolver")], clock.now(),
                           interval_s=2)
    await engine.scheduler.reload(force=True)
    await _run(engine, 20)
    assert set(_states(engine).values()) == {"UP"}
    for path in ("gateway", "resolver", "sw", *SERVERS):  # our own uplink is cut: nothing answers
        target.status[path] = 503
    await _run(engine, 60)
    assert set(_states(engine).values()) == {"UP"}
    assert engine.runner.selfcheck.blind
    blind_flips = [f for f in await _flips(sessionmaker) if f[0] == SELF_CHECK_NAME]
    assert blind_flips == [(SELF_CHECK_NAME, "UNKNOWN", "UP", None), (SELF_CHECK_NAME, "UP", "DOWN", None)]
    target.status.clear()
    await _run(engine, 30)
    assert set(_states(engine).values()) == {"UP"} and not engine.runner.selfcheck.blind
    flips = await _flips(sessionmaker)
    assert [f for f in flips if f[0] == SELF_CHECK_NAME][-1][2] == "UP"
    assert not [f for f in flips if f[2] in ("DOWN", "UNREACHABLE") and f[0] != SELF_CHECK_NAME]


async def test_a_switch_in_maintenance_opens_no_outage_for_it_or_behind_it(engine, target, sessionmaker, clock):
    await engine.scheduler.reload(force=True)
    await _run(engine, 20)
    async with sessionmaker() as s:
        sw_device = (await s.execute(select(Monitor.device_id).where(Monitor.name == "sw-mgmt"))).scalar()
    await create_window(sessionmaker, starts_at=clock.now(), ends_at=clock.now() + timedelta(seconds=60),
                        device_id=sw_device, now=clock.now())
    await engine.scheduler.reload()
    for path in ("sw", *SERVERS):
        target.status[path] = 503
    await _run(engine, 50)
    assert set(_states(engine).values()) == {"MAINTENANCE"}
    target.status.clear()
    await _run(engine, 30)
    assert set(_states(engine).values()) == {"UP"}
    assert not [f for f in await _flips(sessionmaker) if f[2] in ("DOWN", "UNREACHABLE")]
