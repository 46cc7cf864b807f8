"""Escalation: an urgent incident nobody acknowledged reaches the next contact of its policy, and one that
reached nobody raises "page not delivered" to the NOC by every channel still enabled.

A policy (``incidents.escalation_policy``, from ``NEGAHBAN_ESCALATION_POLICIES``) is chosen by the incident's
severity and customer; without one, urgent incidents follow the policy stored under the worker's policy name
(``set_policy``: absolute delays since opening, no acknowledgement limit). ``escalate_due(now)`` is run by the
escalation loop; it is idempotent (the incident's ``escalation_level`` counts the steps taken, each step's
notice has its own outbox key, and "page not delivered" is recorded once as an incident event).

A step whose channel is disabled (or unknown) is skipped, and a step whose notice failed for good does not
wait: the next step is taken at once. The page was not delivered when every step was taken and none of their
notices was sent (all failed or skipped), or when the policy's limit passed without an acknowledgement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.escalation_policy import EscalationConfig, Policy, Step, on_call
from incidents.messages import noc_notice
from incidents.metrics import IncidentMetrics
from incidents.models import (
    Audience,
    EscalationPolicy,
    EscalationStep,
    Incident,
    IncidentEvent,
    NoticeStatus,
    Notification,
    NotificationChannel,
    Severity,
    Status,
)
from incidents.outbox import enqueue
from incidents.store import add_event
from monitor.errors import InvalidInput
from monitor.models import Customer
from monitor.work import WorkerFailures, isolate

__all__ = ["set_policy", "escalate_due", "steps_due", "PAGE_NOT_DELIVERED"]

log = logging.getLogger("negahban.incidents")

PAGE_NOT_DELIVERED = "page-not-delivered"  # the notice kind (and, with underscores, the event kind)
_EVENT = "page_not_delivered"
_DEAD = (NoticeStatus.FAILED, NoticeStatus.SKIPPED)


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


async def _stored_policy(session: AsyncSession, policy_name: str) -> Policy | None:
    rows = list((await session.execute(
        select(EscalationStep).join(EscalationPolicy, EscalationPolicy.id == EscalationStep.policy_id)
        .where(EscalationPolicy.name == policy_name).order_by(EscalationStep.position))).scalars())
    if not rows:
        return None
    return Policy(Severity.URGENT, tuple(Step(0, channel_id=r.channel_id) for r in rows),
                  offsets=tuple(r.delay_s for r in rows))


async def escalate_due(sessionmaker: async_sessionmaker, policy_name: str, now: datetime,
                       failures: WorkerFailures | None = None, config: EscalationConfig | None = None,
                       metrics: IncidentMetrics | None = None) -> int:
    """Take every escalation step that is due for unacknowledged incidents and raise "page not delivered"
    where it is due. Return steps taken (and pages raised). An incident whose step fails is counted and
    retried on the next pass (and set aside after ``MAX_ITEM_ATTEMPTS``); the others still escalate."""
    config = config or EscalationConfig()
    async with sessionmaker() as session:
        stored = await _stored_policy(session, policy_name)
        if stored is None and not config.policies:
            return 0
        customers = dict((await session.execute(select(Customer.id, Customer.name))).all()) \
            if any(p.customer for p in config.policies) else {}
        raised = exists().where(IncidentEvent.incident_id == Incident.id, IncidentEvent.kind == _EVENT)
        rows = (await session.execute(select(Incident.id, Incident.severity, Incident.customer_id).where(
            Incident.status == Status.TRIGGERED, ~raised).order_by(Incident.id))).all()
    work = []
    for incident_id, severity, customer_id in rows:
        policy = config.policy_for(severity, customers.get(customer_id))
        if policy is None and severity == Severity.URGENT:
            policy = stored
        if policy is not None:
            work.append((incident_id, policy))

    def step(incident_id: int, policy: Policy):
        return lambda: _escalate_one(sessionmaker, incident_id, policy, config, now, metrics)

    done = await isolate("escalation", ((f"incident:{i}", step(i, p)) for i, p in work),
                         failures or WorkerFailures())
    return done.done


async def _target(session: AsyncSession, step: Step, config: EscalationConfig, now: datetime,
                  ) -> tuple[str, NotificationChannel | None]:
    if step.channel_id is not None:
        channel = await session.get(NotificationChannel, step.channel_id)
        return (channel.name if channel else f"channel {step.channel_id}"), channel
    name = step.channel or on_call((config.rotations or {})[step.rotation], now)
    channel = (await session.execute(select(NotificationChannel).where(NotificationChannel.name == name))
               ).scalar_one_or_none()
    return name, channel


async def _notice_status(session: AsyncSession, incident_id: int, position: int) -> list[str]:
    return list((await session.execute(select(Notification.status).where(
        Notification.incident_id == incident_id, Notification.kind == f"escalation-{position}"))).scalars())


async def _escalate_one(sessionmaker: async_sessionmaker, incident_id: int, policy: Policy,
                        config: EscalationConfig, now: datetime, metrics: IncidentMetrics | None) -> int:
    schedule = policy.schedule()
    async with sessionmaker() as session, session.begin():
        incident = await session.get(Incident, incident_id, with_for_update=True)
        if incident.status != Status.TRIGGERED:
            return 0
        start = level = incident.escalation_level
        elapsed = (now - incident.opened_at).total_seconds()
        # The last step taken reached nobody (its notice failed for good): the next one does not wait.
        hurry = level > 0 and _all_dead(await _notice_status(session, incident.id, level))
        while level < len(schedule) and (schedule[level][0] <= elapsed or hurry):
            position, step = level + 1, schedule[level][1]
            name, channel = await _target(session, step, config, now)
            level += 1
            if channel is None or not channel.enabled:
                why = "unknown channel" if channel is None else f"channel disabled: {channel.disabled_reason}"
                add_event(session, incident.id, now, "escalation_skipped", f"step {position} -> {name}: {why}")
                log.warning("escalation_step_skipped incident_id=%s step=%s channel=%s reason=%r", incident.id,
                            position, name, why)
                hurry = True
                continue
            subject, body = noc_notice(f"escalation {position}", incident, "unacknowledged")
            await enqueue(session, incident, f"escalation-{position}", [channel], now, subject, body)
            add_event(session, incident.id, now, "escalated", f"step {position} -> {channel.name}")
            log.info("incident_escalated incident_id=%s step=%s channel=%s", incident.id, position, channel.name)
            hurry = False
        incident.escalation_level = level
        reason = await _undelivered(session, incident, policy, len(schedule), elapsed)
        if reason:
            await _raise_page_not_delivered(session, incident, reason, now)
    if reason and metrics is not None:
        metrics.pages_not_delivered.labels(reason).inc()
    return level - start + (1 if reason else 0)


def _all_dead(statuses: list[str]) -> bool:
    return all(s in _DEAD for s in statuses)


async def _undelivered(session: AsyncSession, incident: Incident, policy: Policy, steps: int,
                       elapsed: float) -> str:
    """Why this incident's page was not delivered ("" while it may still be): every step failed, or the
    policy's limit passed without an acknowledgement."""
    if incident.escalation_level < steps or incident.severity != Severity.URGENT:
        return ""  # an important incident escalates by its policy but is not a page
    limit = policy.limit_s()
    if limit is not None and elapsed >= limit:
        return "unacknowledged"
    statuses = list((await session.execute(select(Notification.status).where(
        Notification.incident_id == incident.id, Notification.kind.like("escalation-%")))).scalars())
    if _all_dead(statuses):  # none sent, none still trying (no notice at all: every step was skipped)
        return "every_step_failed"
    return ""


async def _raise_page_not_delivered(session: AsyncSession, incident: Incident, reason: str, now: datetime) -> None:
    channels = list((await session.execute(select(NotificationChannel).where(
        NotificationChannel.enabled.is_(True),
        NotificationChannel.audience.in_([Audience.NOC, Audience.ESCALATION])).order_by(NotificationChannel.id)
    )).scalars())
    subject, body = noc_notice("PAGE NOT DELIVERED", incident, f"reason: {reason}; nobody acknowledged")
    sent = await enqueue(session, incident, PAGE_NOT_DELIVERED, channels, now, subject, body,
                         f"#{incident.id} page not delivered: {incident.title}"[:60])
    add_event(session, incident.id, now, _EVENT, f"{reason}; told {sent} channels")
    log.error("page_not_delivered incident_id=%s reason=%s channels=%s", incident.id, reason, sent)


