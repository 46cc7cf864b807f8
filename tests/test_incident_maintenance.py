"""Maintenance windows (stored by ``monitor.maintenance``) suppress incidents; outside them failures open one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.engine import EngineConfig, IncidentEngine
from monitor.maintenance import create_window, in_maintenance
from tests.incident_support import flip, incidents, server_with_monitor, switch_with_monitor


@pytest.mark.parametrize("scope", ["monitor", "server", "device", "customer"])
async def test_a_failure_inside_a_window_of_any_scope_opens_no_incident(sessionmaker, clock, scope):
    device, _ = await switch_with_monitor(sessionmaker)
    mon = await server_with_monitor(sessionmaker, "web-1", device_id=device.id)
    from monitor.models import Server, Service
    async with sessionmaker() as s:
        server = await s.get(Server, mon.server_id)
        customer_id = (await s.get(Service, mon.service_id)).customer_id
    ids = {"monitor": mon.id, "server": server.id, "device": device.id, "customer": customer_id}
    await create_window(sessionmaker, starts_at=clock.now(), ends_at=clock.now() + timedelta(hours=1),
                        now=clock.now(), **{f"{scope}_id": ids[scope]})
    eng = IncidentEngine(sessionmaker, clock, EngineConfig(), in_maintenance)
    await flip(sessionmaker, mon.id, clock.advance(60), "UP", "DOWN")
    await eng.process_pending()
    assert await incidents(sessionmaker) == []
    await flip(sessionmaker, mon.id, clock.advance(3600), "DOWN", "UP")
    await flip(sessionmaker, mon.id, clock.advance(60), "UP", "DOWN")
    await eng.process_pending()
    assert len(await incidents(sessionmaker)) == 1
