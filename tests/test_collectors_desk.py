"""Desk figures on /metrics: open tickets by priority and band, overdue first responses, first-response
times and SLA breaches over 30 days."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from dashboards.collectors import MetricsHub
from dashboards.collectors_desk import desk_families
from monitor.models import Customer
from tickets.models import Ticket


def _ticket(cid, now, *, opened_ago_h, band="office", priority="normal", answered_after_h=None,
            status="open", target_h=1):
    opened = now - timedelta(hours=opened_ago_h)
    return Ticket(customer_id=cid, department="technical", subject="x", opened_at=opened, sla_band=band,
                  priority=priority, status=status, first_response_due=opened + timedelta(hours=target_h),
                  first_response_at=opened + timedelta(hours=answered_after_h) if answered_after_h is not None
                  else None)


async def test_desk_figures_count_open_overdue_breached_and_response_times(sessionmaker, clock):
    now = clock.now()
    async with sessionmaker.begin() as s:
        c = Customer(name="acme", verified=True)
        s.add(c)
        await s.flush()
        s.add_all([
            _ticket(c.id, now, opened_ago_h=0.5, priority="urgent"),                      # open, not due yet
            _ticket(c.id, now, opened_ago_h=2, priority="urgent"),                        # open, overdue
            _ticket(c.id, now, opened_ago_h=5, band="outside", target_h=3, answered_after_h=2,
                    status="answered"),                                                   # answered in time
            _ticket(c.id, now, opened_ago_h=10, answered_after_h=1.5, status="closed"),   # late: a breach
            _ticket(c.id, now, opened_ago_h=24 * 40, answered_after_h=5, status="closed"),  # outside 30 days
        ])
    registry = CollectorRegistry()
    hub = MetricsHub(registry, sessionmaker, clock)
    hub.add("desk", desk_families)
    await hub.refresh()
    get = registry.get_sample_value
    assert get("negahban_tickets_open", {"priority": "urgent", "band": "office"}) == 2.0
    assert get("negahban_tickets_open", {"priority": "normal", "band": "outside"}) == 1.0
    assert get("negahban_tickets_open", {"priority": "important", "band": "office"}) == 0.0
    assert get("negahban_tickets_first_response_overdue", {"priority": "urgent", "band": "office"}) == 1.0
    assert get("negahban_sla_breaches_30d", {"band": "office"}) == 2.0   # the late answer and the overdue one
    assert get("negahban_sla_breaches_30d", {"band": "outside"}) == 0.0
    assert get("negahban_first_response_seconds_count", {"band": "office"}) == 1.0
    assert get("negahban_first_response_seconds_sum", {"band": "office"}) == 5400.0
    assert get("negahban_first_response_seconds_bucket", {"band": "outside", "le": "7200.0"}) == 1.0
    assert get("negahban_first_response_seconds_bucket", {"band": "outside", "le": "5400.0"}) == 0.0
