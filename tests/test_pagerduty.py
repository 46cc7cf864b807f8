"""PagerDuty's alert follows the incident: trigger on open, acknowledge on ack, resolve on resolve, one
dedup_key per incident; against a loopback Events API v2 that checks the documented event shape."""

from __future__ import annotations

import aiohttp
import pytest

from incidents.dispatcher import DispatchConfig, Dispatcher
from incidents.engine import EngineConfig, IncidentEngine
from incidents.lifecycle import acknowledge
from incidents.models import Audience, ChannelKind, NoticeStatus, NotificationChannel
from incidents.notifiers import RecordingNotifier
from incidents.pagerduty import PagerDutyNotifier, event_action
from monitor.accounts import Principal, Role, create_user
from tests.channel_servers import PagerDuty, start
from tests.incident_support import channel, flip, incidents, notices, server_with_monitor

ROUTING_KEY = "R0UT1NGK3Y0000000000000000000000"


@pytest.fixture
async def pagerduty():
    runners = []
    provider = PagerDuty()
    url = await start(provider, runners)
    async with aiohttp.ClientSession() as http:
        yield provider, PagerDutyNotifier(http, base_url=url, source="negahban-test")
    for runner in runners:
        await runner.cleanup()


async def noc_user(sessionmaker) -> Principal:
    async with sessionmaker() as s, s.begin():
        u = await create_user(s, "sara", Role.NOC)
    return Principal(u.id, u.username, Role.NOC)


@pytest.mark.parametrize(("kind", "action"), [
    ("opened", "trigger"), ("upgraded", "trigger"), ("escalation-2", "trigger"),
    ("acknowledged", "acknowledge"), ("resolved", "resolve")])
def test_each_notice_kind_has_its_event_action(kind, action):
    assert event_action(kind) == action


async def test_an_incident_triggers_acknowledges_and_resolves_one_pagerduty_alert(
        sessionmaker, clock, pagerduty, monkeypatch):
    provider, notifier = pagerduty
    monkeypatch.setenv("NGB_TEST_PD_KEY", ROUTING_KEY)
    await channel(sessionmaker, "noc-pd", Audience.NOC, kind=ChannelKind.PAGERDUTY, address="env:NGB_TEST_PD_KEY")
    await channel(sessionmaker, "noc-mail", Audience.NOC, kind=ChannelKind.EMAIL, address="noc@example.test")
    mail = RecordingNotifier()
    dispatcher = Dispatcher(sessionmaker, clock, {"pagerduty": notifier, "email": mail})
    engine = IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=0))
    mon = await server_with_monitor(sessionmaker, "web-1")

    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await engine.process_pending()
    await dispatcher.dispatch_due()
    (incident,) = await incidents(sessionmaker)
    clock.advance(60)
    await acknowledge(sessionmaker, await noc_user(sessionmaker), incident.id, clock.now())
    await dispatcher.dispatch_due()
    clock.advance(60)
    await flip(sessionmaker, mon.id, clock.now(), "DOWN", "UP")
    await engine.process_pending()
    await dispatcher.dispatch_due()

    assert provider.errors == []
    assert [e["event_action"] for e in provider.requests] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in provider.requests} == {f"negahban-incident-{incident.id}"}
    assert {e["routing_key"] for e in provider.requests} == {ROUTING_KEY}
    payload = provider.requests[0]["payload"]
    assert (payload["severity"], payload["source"]) == ("critical", "negahban-test")
    assert payload["summary"].startswith(f"[URGENT] #{incident.id} opened") and "short" not in payload["custom_details"]
    # The acknowledgement is for PagerDuty only; the mailbox hears of the opening and the resolution.
    assert [m.data["event"] for _, m in mail.sent] == ["opened", "resolved"]
    assert all(n.status == NoticeStatus.SENT for n in await notices(sessionmaker))


async def test_a_resolve_waits_for_the_trigger_still_being_retried(sessionmaker, clock, pagerduty):
    provider, notifier = pagerduty
    provider.statuses = [(503, {"status": "unavailable"})]
    await channel(sessionmaker, "noc-pd", Audience.NOC, kind=ChannelKind.PAGERDUTY, address=ROUTING_KEY)
    dispatcher = Dispatcher(sessionmaker, clock, {"pagerduty": notifier}, DispatchConfig(base_backoff_s=30))
    engine = IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=0))
    mon = await server_with_monitor(sessionmaker, "web-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await engine.process_pending()
    await dispatcher.dispatch_due()          # the trigger answers 503: retried in 30 s
    clock.advance(5)
    await flip(sessionmaker, mon.id, clock.now(), "DOWN", "UP")
    await engine.process_pending()
    assert await dispatcher.dispatch_due() == 0  # the resolve is due, but its trigger is not through
    clock.advance(30)
    await dispatcher.dispatch_due()          # the trigger
    await dispatcher.dispatch_due()          # then the resolve
    assert [e["event_action"] for e in provider.requests] == ["trigger", "trigger", "resolve"]
    assert [n.status for n in await notices(sessionmaker)] == [NoticeStatus.SENT, NoticeStatus.SENT]


async def test_an_invalid_routing_key_disables_the_channel(sessionmaker, clock, pagerduty):
    provider, notifier = pagerduty
    provider.statuses = [(400, {"status": "invalid event", "message": "Event object is invalid",
                                "errors": ["Invalid routing key"]})]
    await channel(sessionmaker, "noc-pd", Audience.NOC, kind=ChannelKind.PAGERDUTY, address="bad")
    mon = await server_with_monitor(sessionmaker, "web-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await IncidentEngine(sessionmaker, clock).process_pending()
    await Dispatcher(sessionmaker, clock, {"pagerduty": notifier}).dispatch_due()
    async with sessionmaker() as s:
        ch = await s.get(NotificationChannel, 1)
    assert not ch.enabled and "Invalid routing key" in ch.disabled_reason


async def test_a_routing_key_reference_to_an_unset_variable_is_permanent_and_names_it(sessionmaker, clock,
                                                                                      pagerduty, monkeypatch):
    provider, notifier = pagerduty
    monkeypatch.delenv("NGB_TEST_PD_MISSING", raising=False)
    await channel(sessionmaker, "noc-pd", Audience.NOC, kind=ChannelKind.PAGERDUTY, address="env:NGB_TEST_PD_MISSING")
    mon = await server_with_monitor(sessionmaker, "web-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await IncidentEngine(sessionmaker, clock).process_pending()
    await Dispatcher(sessionmaker, clock, {"pagerduty": notifier}).dispatch_due()
    (notice,) = await notices(sessionmaker)
    assert notice.status == NoticeStatus.FAILED and "NGB_TEST_PD_MISSING is not set" in notice.last_error
    assert provider.requests == []


async def test_a_pagerduty_service_reached_by_an_escalation_step_is_resolved_too(sessionmaker, clock, pagerduty):
    from incidents.escalation import escalate_due, set_policy

    provider, notifier = pagerduty
    pd = await channel(sessionmaker, "oncall-pd", Audience.ESCALATION, kind=ChannelKind.PAGERDUTY,
                       address=ROUTING_KEY)
    await set_policy(sessionmaker, "noc", [(300, pd.id)])
    dispatcher = Dispatcher(sessionmaker, clock, {"pagerduty": notifier})
    engine = IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=0))
    mon = await server_with_monitor(sessionmaker, "web-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await engine.process_pending()
    await dispatcher.dispatch_due()
    assert provider.requests == []  # not a NOC channel: it waits for its escalation step
    clock.advance(300)
    assert await escalate_due(sessionmaker, "noc", clock.now()) == 1
    await dispatcher.dispatch_due()
    await flip(sessionmaker, mon.id, clock.now(), "DOWN", "UP")
    await engine.process_pending()
    await dispatcher.dispatch_due()
    assert provider.errors == []
    assert [e["event_action"] for e in provider.requests] == ["trigger", "resolve"]
    assert len({e["dedup_key"] for e in provider.requests}) == 1
