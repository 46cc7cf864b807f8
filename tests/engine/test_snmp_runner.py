"""A switch declared with SNMP, checked by the real runner: its snmpd restarting is an event, not an outage."""

import asyncio
import time

from sqlalchemy import select

from monitor.catalog import load_catalog
from monitor.models import Flip, MonitorState, ProbeResultRow, State
from monitor.runner import Runner
from probes import make_context
from tests.engine.helpers import apply_yaml
from tests.probes.snmpd import SnmpAgent, requires_snmpd

INVENTORY = """\
devices:
  - name: sw1
    kind: switch
    address: 127.0.0.1
    snmp: {{port: {port}, community: public, timeout_s: 2, retries: 0}}
"""


@requires_snmpd
async def test_a_switch_restarting_its_agent_is_recorded_as_a_reboot_and_stays_up(sessionmaker, clock, tmp_path):
    agent = SnmpAgent(tmp_path / "snmpd")
    agent.start()
    # The probe context keeps real time: reboots and rates compare the agent's uptime with our clock.
    ctx = await make_context(icmp="off")
    try:
        await apply_yaml(sessionmaker, INVENTORY.format(port=agent.port), clock.now())
        (cfg,) = (await load_catalog(sessionmaker)).values()
        assert (cfg.name, cfg.kind, cfg.spec.mode) == ("sw1:snmp-uptime", "snmp", "uptime")
        runner = Runner(sessionmaker, ctx, clock)
        for _ in range(3):
            clock.advance(30)
            await runner.check(cfg)
        deadline = time.monotonic() + 15
        while runner.latest[cfg.id].result.details["uptime_s"] < 2.0 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # the agent's uptime must outgrow a restart, so "backwards" is certain
            clock.advance(30)
            await runner.check(cfg)
        agent.restart()
        clock.advance(30)
        ev = await runner.check(cfg)
        await runner.flush()
    finally:
        agent.stop()
        await ctx.close()
    assert ev.state == State.UP and ev.flip is None
    latest = runner.latest[cfg.id].result
    assert (latest.outcome, latest.reason, latest.details["event"]) == ("up", "rebooted", "reboot")
    async with sessionmaker() as s:
        rows = (await s.execute(select(ProbeResultRow).where(ProbeResultRow.monitor_id == cfg.id))).scalars().all()
        flips = (await s.execute(select(Flip).where(Flip.monitor_id == cfg.id))).scalars().all()
        state = (await s.execute(select(MonitorState).where(MonitorState.monitor_id == cfg.id))).scalar_one()
    reboots = [r for r in rows if r.reason == "rebooted"]
    assert [(r.outcome, r.details["rebooted"]) for r in reboots] == [("up", True)]
    assert all(f.new_state == State.UP for f in flips) and state.state == State.UP
