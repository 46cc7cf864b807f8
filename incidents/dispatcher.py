"""The dispatcher: sends outbox rows through the channel kind's ``Notifier``.

A row is leased with a conditional UPDATE (so several dispatchers can share the outbox), sent outside any
transaction, then marked sent, rescheduled with exponential backoff, or failed. A permanent failure also
disables the channel with its reason, so a dead address is visible instead of retried forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased

from incidents.errors import DeliveryFailed
from incidents.metrics import IncidentMetrics
from incidents.models import NoticeStatus, Notification, NotificationChannel
from incidents.notifiers import Message, Notifier
from incidents.statuspage.fanout import SUBSCRIBER
from incidents.wakeloop import run_woken
from monitor.clock import Clock
from monitor.work import WorkerFailures, error_text

__all__ = ["DispatchConfig", "Dispatcher", "backoff_s"]

log = logging.getLogger("negahban.notify")


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    max_attempts: int = 8
    base_backoff_s: float = 5.0
    max_backoff_s: float = 900.0
    lease_s: float = 60.0
    batch: int = 100
    concurrency: int = 20
    sweep_interval_s: float = 5.0


def backoff_s(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: base, 2*base, 4*base ... capped."""
    return min(cap, base * 2 ** max(0, attempts - 1))


class Dispatcher:
    def __init__(self, sessionmaker: async_sessionmaker, clock: Clock, notifiers: Mapping[str, Notifier],
                 config: DispatchConfig | None = None, metrics: IncidentMetrics | None = None,
                 failures: WorkerFailures | None = None) -> None:
        self.sessionmaker, self.clock, self.notifiers = sessionmaker, clock, dict(notifiers)
        self.failures = failures or WorkerFailures()
        self.config = config or DispatchConfig()
        self.metrics = metrics
        self.wake = asyncio.Event()
        self._stopping = False

    async def dispatch_due(self) -> int:
        """Send every notice that is due now. Return how many were attempted by this dispatcher."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            ids = list((await session.execute(
                select(Notification.id).where(Notification.status == NoticeStatus.PENDING,
                                              Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at, Notification.id).limit(self.config.batch))).scalars())
        limit = asyncio.Semaphore(self.config.concurrency)

        async def one(notice_id: int) -> bool:
            async with limit:
                try:
                    return await self._dispatch_one(notice_id, now)
                except Exception as exc:  # its lease expires and it is retried; the others are sent
                    self.failures.record("dispatcher", f"notification:{notice_id}", exc, gave_up=False)
                    return False

        return sum(await asyncio.gather(*(one(i) for i in ids)))

    async def _claim(self, notice_id: int, now: datetime) -> tuple[Notification, NotificationChannel] | None:
        # One channel hears of one incident in order: a resolve must not reach PagerDuty (or a phone) before
        # the trigger that is still being retried, or the alert it resolves would open after it and stay open.
        earlier = aliased(Notification)
        waits = exists().where(earlier.channel_id == Notification.channel_id,
                               earlier.incident_id == Notification.incident_id,
                               earlier.id < Notification.id, earlier.status == NoticeStatus.PENDING)
        async with self.sessionmaker() as session, session.begin():
            claimed = await session.execute(
                update(Notification).where(
                    Notification.id == notice_id, Notification.status == NoticeStatus.PENDING,
                    Notification.next_attempt_at <= now, ~waits,
                    or_(Notification.claimed_until.is_(None), Notification.claimed_until < now))
                .values(claimed_until=now + timedelta(seconds=self.config.lease_s),
                        attempts=Notification.attempts + 1))
            if claimed.rowcount != 1:
                return None
            notice = await session.get(Notification, notice_id)
            return notice, await session.get(NotificationChannel, notice.channel_id)

    async def _dispatch_one(self, notice_id: int, now: datetime) -> bool:
        claim = await self._claim(notice_id, now)
        if claim is None:
            return False
        notice, channel = claim
        if not channel.enabled:
            self._count(channel.kind, "skipped")
            await self._finish(notice.id, NoticeStatus.SKIPPED, f"channel disabled: {channel.disabled_reason}")
            return True
        notifier = self.notifiers.get(channel.kind)
        if notifier is None:
            await self._finish(notice.id, NoticeStatus.FAILED, f"no notifier for kind {channel.kind}")
            return True
        try:
            await notifier.send(channel.address, Message(notice.subject, notice.body, notice.data,
                                                          idempotency_key=f"negahban-{notice.dedup_key}"))
        except DeliveryFailed as exc:
            await self._failed(notice, channel, exc)
        except Exception as exc:  # a notifier's bug is a transient failure of this notice, retried and bounded
            self.failures.record("dispatcher", f"notification:{notice.id}", exc,
                                 gave_up=notice.attempts >= self.config.max_attempts)
            await self._failed(notice, channel, DeliveryFailed(error_text(exc), permanent=False))
        else:
            await self._finish(notice.id, NoticeStatus.SENT, sent_at=self.clock.now())
            self._count(channel.kind, "sent")
            log.info("notice_sent notice_id=%s channel=%s kind=%s", notice.id, channel.name, notice.kind)
        return True

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.notices.labels(kind, outcome).inc()

    async def refresh_channel_metrics(self) -> None:
        """Export which channels are disabled (a permanent failure must be visible, not silent). Status-page
        subscribers' channels are left out: one per visitor, disabled by every unsubscribe, they would be an
        alert per visitor and a series each."""
        if not self.metrics:
            return
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(NotificationChannel.name, NotificationChannel.kind,
                                                 NotificationChannel.enabled)
                                          .where(NotificationChannel.audience != SUBSCRIBER))).all()
        for name, kind, enabled in rows:
            self.metrics.channel_disabled.labels(name, kind).set(0 if enabled else 1)

    async def _finish(self, notice_id: int, status: NoticeStatus, error: str = "",
                      sent_at: datetime | None = None) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(Notification).where(Notification.id == notice_id).values(
                status=status, last_error=error, sent_at=sent_at, claimed_until=None))

    async def _failed(self, notice: Notification, channel: NotificationChannel, exc: DeliveryFailed) -> None:
        now = self.clock.now()
        log.warning("notice_failed notice_id=%s channel=%s attempts=%s permanent=%s reason=%r", notice.id,
                    channel.name, notice.attempts, exc.permanent, exc.reason)
        self._count(channel.kind, "permanent_failure" if exc.permanent else "transient_failure")
        if exc.permanent:
            await self._disable(channel.id, exc.reason, now)
            await self._finish(notice.id, NoticeStatus.FAILED, exc.reason)
        elif notice.attempts >= self.config.max_attempts:
            await self._finish(notice.id, NoticeStatus.FAILED, f"gave up after {notice.attempts}: {exc.reason}")
        else:
            delay = backoff_s(notice.attempts, self.config.base_backoff_s, self.config.max_backoff_s)
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(Notification).where(Notification.id == notice.id).values(
                    last_error=exc.reason, claimed_until=None,
                    next_attempt_at=now + timedelta(seconds=delay)))

    async def _disable(self, channel_id: int, reason: str, now: datetime) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(NotificationChannel).where(NotificationChannel.id == channel_id)
                                  .values(enabled=False, disabled_reason=reason[:1000], disabled_at=now))
        log.error("channel_disabled channel_id=%s reason=%r", channel_id, reason)

    async def one_pass(self) -> int:
        """Send the notices that are due, then export which channels are disabled."""
        sent = await self.dispatch_due()
        if sent:
            # A notice that waited for an earlier one of its channel and incident may be due now.
            self.wake.set()
        await self.refresh_channel_metrics()
        return sent

    async def run(self) -> None:
        """Send due notices when woken and at least every ``sweep_interval_s``, until ``stop``."""
        await run_woken(self.one_pass, self.wake, self.config.sweep_interval_s, lambda: self._stopping, log,
                        "dispatch_pass_failed")

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()
