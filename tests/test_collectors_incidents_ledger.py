"""Incident, outbox and ledger figures on /metrics."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from dashboards.collectors import MetricsHub
from dashboards.collectors_incidents import incident_families, outbox_families
from dashboards.collectors_ledger import ledger_families, month_start
from incidents.models import Incident, Notification, NotificationChannel
from monitor.models import Customer, Datacenter
from tickets.ledger.models import DatacenterVisit, LedgerEntry


async def _registry(sm, clock, *gathers):
    registry = CollectorRegistry()
    hub = MetricsHub(registry, sm, clock)
    for i, g in enumerate(gathers):
        hub.add(f"g{i}", g)
    await hub.refresh()
    return registry.get_sample_value


def _incident(now, key, severity, status, opened_ago_min, duration_s=None):
    return Incident(dedup_key=key, source="monitor", severity=severity, status=status, title=key,
                    opened_at=now - timedelta(minutes=opened_ago_min),
                    resolved_at=now - timedelta(minutes=1) if status == "resolved" else None, duration_s=duration_s)


async def test_open_incidents_unacknowledged_age_and_resolved_durations(sessionmaker, clock):
    now = clock.now()
    async with sessionmaker.begin() as s:
        s.add_all([_incident(now, "a", "urgent", "triggered", 15), _incident(now, "b", "urgent", "acknowledged", 40),
                   _incident(now, "c", "important", "triggered", 5),
                   _incident(now, "d", "urgent", "resolved", 90, duration_s=600.0),
                   _incident(now, "e", "important", "resolved", 90, duration_s=4000.0)])
    get = await _registry(sessionmaker, clock, incident_families)
    assert get("negahban_incidents_open", {"severity": "urgent"}) == 2.0
    assert get("negahban_incidents_open", {"severity": "important"}) == 1.0
    assert get("negahban_incidents_unacknowledged_seconds", {"severity": "urgent"}) == 900.0
    assert get("negahban_incident_duration_seconds_count", {"severity": "urgent"}) == 1.0
    assert get("negahban_incident_duration_seconds_bucket", {"severity": "important", "le": "3600.0"}) == 0.0
    assert get("negahban_incident_duration_seconds_bucket", {"severity": "important", "le": "7200.0"}) == 1.0


async def test_the_outbox_depth_and_its_oldest_pending_notice(sessionmaker, clock):
    now = clock.now()
    async with sessionmaker.begin() as s:
        ch = NotificationChannel(name="noc", kind="webhook", address="http://127.0.0.1:9/", audience="noc")
        s.add(ch)
        await s.flush()
        for i, (status, age_s) in enumerate((("pending", 700), ("pending", 10), ("failed", 50), ("sent", 9000))):
            s.add(Notification(dedup_key=f"n{i}", channel_id=ch.id, kind="opened", subject="x", body="x",
                               created_at=now - timedelta(seconds=age_s), status=status, next_attempt_at=now))
    get = await _registry(sessionmaker, clock, outbox_families)
    assert get("negahban_outbox_depth", {"status": "pending"}) == 2.0
    assert get("negahban_outbox_depth", {"status": "failed"}) == 1.0
    assert get("negahban_outbox_oldest_pending_seconds") == 700.0


async def test_billed_this_jalali_month_by_kind_and_visits_by_datacenter(sessionmaker, clock):
    now = clock.now()
    start = month_start(now)
    async with sessionmaker.begin() as s:
        c, dc, dc2 = Customer(name="acme", verified=True), Datacenter(name="afranet"), Datacenter(name="asiatech")
        s.add_all([c, dc, dc2])
        await s.flush()
        rows = [("visit", 2_500_000, start + timedelta(hours=1)), ("visit", 1_000_000, start - timedelta(hours=1)),
                ("fine", 500_000, now), ("payment", 9_000_000, now)]
        s.add_all([LedgerEntry(customer_id=c.id, kind=k, amount_rials=a, idempotency_key=f"k{i}", posted_at=at)
                   for i, (k, a, at) in enumerate(rows)])
        s.add_all([DatacenterVisit(datacenter_id=dc.id, customer_id=c.id, departed_at=now - timedelta(days=d),
                                   returned_at=now - timedelta(days=d) + timedelta(hours=2), recorded_at=now)
                   for d in (1, 5, 45)])
    get = await _registry(sessionmaker, clock, ledger_families)
    assert get("negahban_billed_rials_month", {"kind": "visit"}) == 2_500_000.0   # last month's is not counted
    assert get("negahban_billed_rials_month", {"kind": "fine"}) == 500_000.0
    assert get("negahban_billed_rials_month", {"kind": "payment"}) is None      # a payment is not billed
    assert get("negahban_datacenter_visits_30d", {"datacenter": "afranet"}) == 2.0
    assert get("negahban_datacenter_visits_30d", {"datacenter": "asiatech"}) == 0.0
