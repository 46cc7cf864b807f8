"""Escalation through the real outbox and dispatcher to webhook servers on loopback, with an injected clock:
a dead first channel, a repeated last step, "page not delivered", and an acknowledgement that stops it."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from incidents.dispatcher import Dispatcher
from incidents.escalation import PAGE_NOT_DELIVERED, escalate_due
from incidents.escalation_policy import parse_escalation
from incidents.lifecycle import acknowledge
from incidents.metrics import IncidentMetrics
from incidents.models import Audience, IncidentEvent, NoticeStatus, NotificationChannel
from incidents.notifiers import WebhookNotifier
from monitor.accounts import Role
from monitor.errors import SettingsError
from monitor.settings import load_settings
from negahban.service import build_service
from tests.incident_support import channel, incidents, notices
from tests.test_incident_lifecycle import user
from tests.test_notifications import Receiver, open_incident


@pytest.fixture
async def hook_server():
    """Start one webhook receiver on loopback per call; give its base URL."""
    runners = []

    async def start(receiver: Receiver) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


class Pager:
    """The escalation loop and the dispatcher, run one after the other as the service runs them."""

    def __init__(self, sessionmaker, clock, http, policies: str) -> None:
        self.sm, self.clock = sessionmaker, clock
        self.config = parse_escalation(policies)
        self.registry = CollectorRegistry()
        self.metrics = IncidentMetrics(self.registry)
        self.dispatcher = Dispatcher(sessionmaker, clock, {"webhook": WebhookNotifier(http)})

    async def tick(self, minutes: float = 0) -> int:
        self.clock.advance(minutes * 60)
        taken = await escalate_due(self.sm, "noc", self.clock.now(), config=self.config, metrics=self.metrics)
        await self.dispatcher.dispatch_due()
        return taken

    def pages_not_delivered(self, reason: str) -> float:
        return self.registry.get_sample_value("negahban_pages_not_delivered_total", {"reason": reason})


async def hooks(sessionmaker, hook_server, **statuses) -> dict[str, Receiver]:
    out = {}
    for name, answers in statuses.items():
        out[name] = Receiver(answers)
        audience = Audience.NOC if name.startswith("noc") else Audience.ESCALATION
        await channel(sessionmaker, name, audience, address=f"{await hook_server(out[name])}/{name}")
    return out


def events(receiver: Receiver) -> list[str]:
    return [b["event"] for b in receiver.bodies]


async def timeline(sessionmaker, kind: str) -> list[str]:
    async with sessionmaker() as s:
        return list((await s.execute(select(IncidentEvent.text).where(IncidentEvent.kind == kind)
                                     .order_by(IncidentEvent.id))).scalars())


async def test_a_dead_first_channel_is_disabled_and_the_second_is_paged_without_waiting(
        sessionmaker, clock, hook_server):
    rx = await hooks(sessionmaker, hook_server, first=[404], second=[])
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        pager = Pager(sessionmaker, clock, http, "urgent: first 5, second 10")
        assert await pager.tick() == 1  # step 1: first answers 404 and is disabled
        assert events(rx["first"]) == ["escalation-1"] and events(rx["second"]) == []
        assert await pager.tick() == 1  # its notice failed for good: step 2 does not wait its 5 minutes
        assert events(rx["second"]) == ["escalation-2"]
        assert await pager.tick(9) == 0  # delivered: now it waits for an acknowledgement
    async with sessionmaker() as s:
        first = (await s.execute(select(NotificationChannel).where(NotificationChannel.name == "first"))).scalar_one()
    assert not first.enabled and first.disabled_reason.startswith("HTTP 404")
    assert [(n.kind, n.status) for n in await notices(sessionmaker)] == [
        ("escalation-1", NoticeStatus.FAILED), ("escalation-2", NoticeStatus.SENT)]
    assert await timeline(sessionmaker, "page_not_delivered") == []


async def test_an_unacknowledged_urgent_incident_repeats_the_last_step_then_pages_the_noc_everywhere(
        sessionmaker, clock, hook_server):
    rx = await hooks(sessionmaker, hook_server, noc=[], first=[], second=[])
    await channel(sessionmaker, "noc-dead", Audience.NOC, address="http://127.0.0.1:9/never")
    async with sessionmaker() as s, s.begin():
        dead = (await s.execute(select(NotificationChannel).where(NotificationChannel.name == "noc-dead"))
                ).scalar_one()
        dead.enabled, dead.disabled_reason = False, "HTTP 401"
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        pager = Pager(sessionmaker, clock, http, "urgent: first 5, second 10 x3")
        assert pager.pages_not_delivered("unacknowledged") == 0
        assert await pager.tick() == 1
        assert await pager.tick(4) == 0
        assert await pager.tick(1) == 1  # 5 min: second
        assert await pager.tick(10) == 1  # 15 min: second again
        assert await pager.tick(10) == 1  # 25 min: and the last time
        assert await pager.tick(9) == 0  # 34 min: the last wait is not over
        assert await timeline(sessionmaker, "page_not_delivered") == []
        assert await pager.tick(1) == 1  # 35 min: nobody acknowledged within the policy's limit
        assert await pager.tick(60) == 0  # raised once
    assert events(rx["first"]) == ["escalation-1", PAGE_NOT_DELIVERED]
    assert events(rx["second"]) == ["escalation-2", "escalation-3", "escalation-4", PAGE_NOT_DELIVERED]
    assert events(rx["noc"]) == ["opened", PAGE_NOT_DELIVERED]  # the NOC's own channel heard the opening
    assert await notices(sessionmaker, channel_id=dead.id) == []  # a disabled channel is not "remaining"
    assert pager.pages_not_delivered("unacknowledged") == 1
    assert pager.pages_not_delivered("every_step_failed") == 0
    (text,) = await timeline(sessionmaker, "page_not_delivered")
    assert text == "unacknowledged; told 3 channels"
    (notice,) = await notices(sessionmaker, kind=PAGE_NOT_DELIVERED, channel_id=1)
    assert "PAGE NOT DELIVERED" in notice.subject and notice.status == NoticeStatus.SENT


async def test_every_step_failing_pages_the_noc_at_once(sessionmaker, clock, hook_server):
    rx = await hooks(sessionmaker, hook_server, noc=[], first=[410], second=[403])
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        pager = Pager(sessionmaker, clock, http, "urgent: first 5, second 10 x2")
        assert await pager.tick() == 1  # first: 410
        assert await pager.tick() == 1  # second: 403 (both disabled now)
        assert await pager.tick() == 2  # its repeat is skipped, every step failed: page not delivered
        await pager.dispatcher.dispatch_due()
    assert events(rx["noc"]) == ["opened", PAGE_NOT_DELIVERED]
    assert events(rx["first"]) == ["escalation-1"] and events(rx["second"]) == ["escalation-2"]
    assert pager.pages_not_delivered("every_step_failed") == 1
    assert await timeline(sessionmaker, "escalation_skipped") == [
        "step 3 -> second: channel disabled: HTTP 403: x"]


async def test_an_acknowledged_incident_stops_escalating_and_raises_nothing(sessionmaker, clock, hook_server):
    rx = await hooks(sessionmaker, hook_server, noc=[], first=[], second=[])
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        pager = Pager(sessionmaker, clock, http, "urgent: first 5, second 10 x3")
        assert await pager.tick() == 1
        assert await pager.tick(5) == 1
        (incident,) = await incidents(sessionmaker)
        await acknowledge(sessionmaker, await user(sessionmaker, "ali", Role.NOC), incident.id, clock.now())
        for _ in range(6):
            assert await pager.tick(10) == 0
    assert events(rx["second"]) == ["escalation-2"] and events(rx["first"]) == ["escalation-1"]
    assert PAGE_NOT_DELIVERED not in events(rx["noc"])
    assert pager.pages_not_delivered("unacknowledged") == 0


async def test_the_on_call_person_of_the_week_is_paged(sessionmaker, clock, hook_server):
    # The clock starts on Thursday 2026-01-01 03:30 Tehran: the shift that began Saturday 2025-12-27 09:00.
    rx = await hooks(sessionmaker, hook_server, ali=[], reza=[])
    await open_incident(sessionmaker, clock)
    async with aiohttp.ClientSession() as http:
        pager = Pager(sessionmaker, clock, http,
                      "rotation noc: ali reza from 2025-12-20T09:00; urgent: oncall=noc 5")
        assert await pager.tick() == 1
    assert events(rx["reza"]) == ["escalation-1"] and events(rx["ali"]) == []


async def _close(service) -> None:
    await service.probe_ctx.close()
    await service.extras["http"].close()
    if service.extras["incident_db"] is not service.engine:
        await service.extras["incident_db"].dispose()
    await service.engine.dispose()


async def test_the_setting_drives_the_services_one_escalation_loop(db, clock, hook_server):
    rx = {name: Receiver([404] if name == "first" else []) for name in ("noc", "first", "second")}
    urls = {name: await hook_server(r) for name, r in rx.items()}
    settings = load_settings(
        {}, database_url=db.url, listen_port=0,
        notification_channels=f"noc: webhook noc {urls['noc']}/n; first: webhook escalation {urls['first']}/f;"
                              f" second: webhook escalation {urls['second']}/s",
        escalation_policies="urgent: first 5, second 10 x2")
    service = await build_service(settings, clock=clock, registry=CollectorRegistry())
    try:
        loops = {loop.name: loop for loop in service.loops()}
        assert [name for name in loops if name == "escalation"] == ["escalation"]
        await open_incident(service.sessionmaker, clock)
        for minutes in (0, 0, 0, 10, 10, 10):
            clock.advance(minutes * 60)
            await loops["escalation"].run_pass()
            await loops["dispatcher"].run_pass()
    finally:
        await _close(service)
    assert events(rx["first"]) == ["escalation-1"]  # 404: disabled, so it hears nothing more
    assert events(rx["second"]) == ["escalation-2", "escalation-3", PAGE_NOT_DELIVERED]
    assert events(rx["noc"]) == ["opened", PAGE_NOT_DELIVERED]


async def test_a_policy_naming_no_known_channel_stops_the_start(db, clock):
    settings = load_settings({}, database_url=db.url, listen_port=0,
                             notification_channels="noc: webhook noc http://127.0.0.1:9/n",
                             escalation_policies="rotation noc: noc ali-sms from 2026-11-28T09:00; urgent: noc 5")
    with pytest.raises(SettingsError, match="NEGAHBAN_ESCALATION_POLICIES: no notification channel named ali-sms"):
        await build_service(settings, clock=clock, registry=CollectorRegistry())


async def test_an_important_incident_escalates_by_its_policy_but_is_never_a_page(sessionmaker, clock, hook_server):
    from incidents.engine import IncidentEngine
    from tests.incident_support import flip, server_with_monitor
    rx = await hooks(sessionmaker, hook_server, noc=[], first=[])
    mon = await server_with_monitor(sessionmaker, "web-2")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DEGRADED")
    await IncidentEngine(sessionmaker, clock).process_pending()
    async with aiohttp.ClientSession() as http:
        pager = Pager(sessionmaker, clock, http, "urgent: noc 5; important: first 30")
        assert await pager.tick() == 1
        assert await pager.tick(120) == 0
    assert events(rx["first"]) == ["escalation-1"]
    assert PAGE_NOT_DELIVERED not in events(rx["noc"])
