"""Every worker of the outage path survives a poisoned item: the item is recorded and counted, the rest go on.

Poisons are real data, not mocks: a maintenance window whose recurrence rule is corrupt (a row written by
hand or by an older version; the engine's maintenance check raises on it), an incident the desk cannot render,
a channel whose notifier raises, and the PostgreSQL case that stopped every later incident (a customer notice
listing many long service names, longer than its old ``varchar(300)``).
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from incidents.dispatcher import DispatchConfig, Dispatcher
from incidents.engine import EngineConfig, IncidentEngine
from incidents.models import Incident, NoticeStatus, Notification, Severity, Source
from incidents.notifiers import Message
from incidents.store import open_incident
from monitor.maintenance import in_maintenance
from monitor.models import Flip, MaintenanceWindow, Server, Service
from monitor.work import MAX_ITEM_ATTEMPTS, WorkerFailures
from tests.incident_support import add, channel, count, flip, server_with_monitor, switch_with_monitor
from tickets.auto_ticketing import AutoTicketer
from tickets.models import Ticket


async def _failures_metric(registry: CollectorRegistry, worker: str, outcome: str) -> float:
    return registry.get_sample_value("negahban_worker_item_failures_total",
                                     {"worker": worker, "outcome": outcome}) or 0.0


async def _poisoned_flip(sessionmaker, clock):
    """A server whose maintenance window has a corrupt RRULE: deciding its flip raises."""
    mon = await server_with_monitor(sessionmaker, "poisoned")
    await add(sessionmaker, MaintenanceWindow(title="corrupt", starts_at=clock.now() - timedelta(days=1),
                                              rrule="FREQ=NONSENSE", duration_s=60, server_id=mon.server_id))
    return await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")


async def test_one_poisoned_flip_does_not_stop_the_fifty_outages_behind_it(sessionmaker, clock):
    registry = CollectorRegistry()
    eng = IncidentEngine(sessionmaker, clock, EngineConfig(), in_maintenance=in_maintenance,
                         failures=WorkerFailures(registry))
    poisoned = await _poisoned_flip(sessionmaker, clock)
    for i in range(50):
        mon = await server_with_monitor(sessionmaker, f"web-{i}")
        await flip(sessionmaker, mon.id, clock.now() + timedelta(seconds=1), "UP", "DOWN")

    await eng.process_pending()

    assert await count(sessionmaker, Incident.id) == 50
    async with sessionmaker() as s:
        bad = await s.get(Flip, poisoned)
    assert bad.processed_at is None and bad.attempts == 1 and "FREQ" in bad.error
    assert await _failures_metric(registry, "incident_engine", "retry") == 1
    for _ in range(MAX_ITEM_ATTEMPTS - 1):  # later passes retry it, then set it aside for good
        await eng.process_pending()
    async with sessionmaker() as s:
        bad = await s.get(Flip, poisoned)
    assert bad.processed_at is not None and bad.attempts == MAX_ITEM_ATTEMPTS
    assert await _failures_metric(registry, "incident_engine", "gave_up") == 1
    assert await count(sessionmaker, Flip.id, Flip.processed_at.is_(None)) == 0


async def test_a_switch_carrying_many_long_service_names_opens_its_incident_and_the_later_ones(
        sessionmaker, clock):
    """On PostgreSQL the customer's notice subject overflowed varchar(300) and every later flip waited."""
    device, sw = await switch_with_monitor(sessionmaker)
    first = await server_with_monitor(sessionmaker, "rack-0", device_id=device.id)
    customer_id = await _customer(sessionmaker, first)
    for i in range(1, 12):
        await server_with_monitor(sessionmaker, f"rack-{i}", device_id=device.id, customer_id=customer_id)
    async with sessionmaker() as s, s.begin():
        for service in (await s.execute(select(Service))).scalars():
            service.display_name = f"سرویس میزبانی وب شرکت نمونه شماره {service.id}"
    await channel(sessionmaker, "cust-mail", customer_id=customer_id)
    await flip(sessionmaker, sw.id, clock.now(), "UP", "DOWN")
    for i in range(50):
        mon = await server_with_monitor(sessionmaker, f"later-{i}")
        await flip(sessionmaker, mon.id, clock.now() + timedelta(seconds=1), "UP", "DOWN")

    await IncidentEngine(sessionmaker, clock, EngineConfig()).process_pending()

    assert await count(sessionmaker, Incident.id) == 51
    async with sessionmaker() as s:
        notice = (await s.execute(select(Notification).where(Notification.kind == "opened"))).scalars().first()
    assert notice is not None and "سرویس دیگر" in notice.subject  # the subject names a few, the body all
    assert notice.body.count("سرویس میزبانی وب") == 12


async def _customer(sessionmaker, monitor) -> int:
    async with sessionmaker() as s:
        server = await s.get(Server, monitor.server_id)
        return (await s.get(Service, server.service_id)).customer_id


async def _incident(sessionmaker, clock, name: str, severity: str) -> int:
    mon = await server_with_monitor(sessionmaker, name)
    async with sessionmaker() as s, s.begin():
        service_id = (await s.get(Server, mon.server_id)).service_id
        incident = await open_incident(s, key=f"monitor:{mon.id}", source=Source.MONITOR,
                                       severity=Severity.URGENT, title=name, opened_at=clock.now(),
                                       now=clock.now(), affected=[], monitor_id=mon.id, service_id=service_id)
        incident.severity = severity  # "bogus": a value the desk cannot render
    return incident.id


async def test_the_desk_records_an_incident_it_cannot_ticket_and_tickets_the_others(sessionmaker, clock):
    registry = CollectorRegistry()
    ticketer = AutoTicketer(sessionmaker, clock, failures=WorkerFailures(registry))
    bad = await _incident(sessionmaker, clock, "bad", "bogus")
    for i in range(5):
        await _incident(sessionmaker, clock, f"ok-{i}", "urgent")

    assert await ticketer.run_once() == 5
    assert await count(sessionmaker, Ticket.id) == 5
    for _ in range(MAX_ITEM_ATTEMPTS):
        await ticketer.run_once()
    async with sessionmaker() as s:
        incident = await s.get(Incident, bad)
    assert incident.ticket_opened_at is None and incident.desk_attempts == MAX_ITEM_ATTEMPTS
    assert "bogus" in incident.desk_error
    assert await _failures_metric(registry, "auto_ticketing", "gave_up") == 1


class _BrokenForOneAddress:
    """A notifier with a bug for one address (raises something that is not DeliveryFailed)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, address: str, message: Message) -> None:
        if address.endswith("/broken"):
            raise KeyError("template field")
        self.sent.append(address)


async def test_the_dispatcher_sends_the_other_notices_when_one_notifier_raises(sessionmaker, clock):
    registry = CollectorRegistry()
    notifier = _BrokenForOneAddress()
    broken = await channel(sessionmaker, "broken", address="http://127.0.0.1:9/broken")
    good = await channel(sessionmaker, "good", address="http://127.0.0.1:9/good")
    rows = [Notification(dedup_key=f"n{i}", channel_id=(broken if i == 0 else good).id, kind="opened",
                         subject="s", body="b", created_at=clock.now(), next_attempt_at=clock.now())
            for i in range(6)]
    await add(sessionmaker, *rows)
    dispatcher = Dispatcher(sessionmaker, clock, {"webhook": notifier}, DispatchConfig(max_attempts=2),
                            failures=WorkerFailures(registry))

    await dispatcher.dispatch_due()
    assert len(notifier.sent) == 5
    clock.advance(3600)
    await dispatcher.dispatch_due()
    async with sessionmaker() as s:
        failed = await s.get(Notification, rows[0].id)
    assert failed.status == NoticeStatus.FAILED and "KeyError" in failed.last_error
    assert await _failures_metric(registry, "dispatcher", "retry") == 1
    assert await _failures_metric(registry, "dispatcher", "gave_up") == 1
