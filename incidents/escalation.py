"""Escalation: an urgent incident nobody acknowledged reaches the next contact of the policy.

A policy is an ordered list of steps (delay since opening, channel). ``escalate_due(now)`` is run by a
periodic job; it is idempotent (the incident's ``escalation_level`` records the steps already taken, and
each step's notice has its own outbox key).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.messages import noc_notice
from incidents.models import EscalationPolicy, EscalationStep, Incident, NotificationChannel, Severity, Status
from incidents.outbox import enqueue
from incidents.store import add_event
from monitor.errors import InvalidInput
from monitor.work import WorkerFailures, isolate

__all__ = ["set_policy", "escalate_due", "steps_due"]

log = logging.getLogger("negahban.incidents")


async def set_policy(sessionmaker: async_sessionmaker, name: str, steps: Sequence[tuple[float, int]]) -> int:
    """Create or replace policy ``name`` with ``steps`` = [(delay_s, channel_id), ...] in order."""
    delays = [d for d, _ in steps]
    if any(d < 0 for d in delays) or delays != sorted(delays):
        raise InvalidInput("steps", "delays must be non-negative and in increasing order")
    async with sessionmaker() as session, session.begin():
        policy = (await session.execute(select(EscalationPolicy).where(EscalationPolicy.name == name))
                  ).scalar_one_or_none()
        if policy is None:
            policy = EscalationPolicy(name=name)
            session.add(policy)
            await session.flush()
        await session.execute(delete(EscalationStep).where(EscalationStep.policy_id == policy.id))
        for position, (delay, channel_id) in enumerate(steps, start=1):
            session.add(EscalationStep(policy_id=policy.id, position=position, delay_s=delay,
                                       channel_id=channel_id))
        return policy.id


def steps_due(opened_at: datetime, level: int, delays: Sequence[float], now: datetime) -> int:
    """The escalation level an incident opened at ``opened_at`` should have reached by ``now``."""
    while level < len(delays) and opened_at + timedelta(seconds=delays[level]) <= now:
        level += 1
    return level


async def _steps(session: AsyncSession, policy_name: str) -> list[EscalationStep]:
    return list((await session.execute(
        select(EscalationStep).join(EscalationPolicy, EscalationPolicy.id == EscalationStep.policy_id)
        .where(EscalationPolicy.name == policy_name).order_by(EscalationStep.position))).scalars())


async def escalate_due(sessionmaker: async_sessionmaker, policy_name: str, now: datetime,
                       failures: WorkerFailures | None = None) -> int:
    """Take every escalation step that is due for unacknowledged urgent incidents. Return steps taken.
    An incident whose step fails is counted and retried on the next pass (and set aside after
    ``MAX_ITEM_ATTEMPTS``, its error in ``worker_item_failures``); the others still escalate."""
    async with sessionmaker() as session:
        steps = await _steps(session, policy_name)
        if not steps:
            return 0
        ids = list((await session.execute(select(Incident.id).where(
            Incident.status == Status.TRIGGERED, Incident.severity == Severity.URGENT,
            Incident.escalation_level < len(steps)))).scalars())
    def step(incident_id: int):
        return lambda: _escalate_one(sessionmaker, incident_id, steps, now)

    done = await isolate("escalation", ((f"incident:{i}", step(i)) for i in ids), failures or WorkerFailures())
    return done.done


async def _escalate_one(sessionmaker: async_sessionmaker, incident_id: int, steps: list[EscalationStep],
                        now: datetime) -> int:
    async with sessionmaker() as session, session.begin():
        incident = await session.get(Incident, incident_id, with_for_update=True)
        if incident.status != Status.TRIGGERED:
            return 0
        start = incident.escalation_level
        target = steps_due(incident.opened_at, start, [s.delay_s for s in steps], now)
        for step in steps[start:target]:
            channel = await session.get(NotificationChannel, step.channel_id)
            subject, body = noc_notice(f"escalation {step.position}", incident, "unacknowledged")
            await enqueue(session, incident, f"escalation-{step.position}", [channel], now, subject, body)
            add_event(session, incident.id, now, "escalated", f"step {step.position} -> {channel.name}")
            log.info("incident_escalated incident_id=%s step=%s channel=%s", incident.id, step.position,
                     channel.name)
        incident.escalation_level = target
        return target - start
