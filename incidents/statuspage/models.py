"""The public status page's own rows: staff-written public updates on incidents, and visitors' subscriptions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db.base import Base, BigId, UTCDateTime, fk_id

__all__ = ["UpdateStatus", "PublicUpdate", "SubscriptionKind", "SubscriptionState", "StatusSubscription"]


class UpdateStatus(enum.StrEnum):
    """Where an incident stands, as the public update says it (Statuspage's four words, in Persian)."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class PublicUpdate(Base):
    """What staff tell everyone about an incident, in Persian. Never the incident's internal title."""

    __tablename__ = "incident_public_updates"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = fk_id("incidents.id", index=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    __table_args__ = (Index("ix_incident_public_updates_incident_at", "incident_id", "at"),)


class SubscriptionKind(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class SubscriptionState(enum.StrEnum):
    PENDING = "pending"  # waiting for the e-mail's confirm link; receives nothing else
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"


class StatusSubscription(Base):
    """One visitor's subscription: an e-mail address or a webhook URL, to chosen services (``service_ids``,
    empty for all). Notices go through the outbox on ``channel_id``, a channel of its own, which an
    unsubscribe disables (so a notice already queued is skipped, not sent). The confirm token is kept only
    as its SHA-256."""

    __tablename__ = "status_subscriptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(500))
    service_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(20), default=SubscriptionState.PENDING)
    channel_id: Mapped[int | None] = fk_id("notification_channels.id", nullable=True, ondelete="SET NULL",
                                           index=False)
    confirm_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    confirm_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The site's address when the visitor subscribed and a random token of this subscription: every notice
    # carries ``<site_url>/status/unsubscribe/<id>/<manage_token>`` (one click, no login).
    site_url: Mapped[str] = mapped_column(String(300))
    manage_token: Mapped[str] = mapped_column(String(64))
    # Confirmation mails sent, and when the last went: a repeated form does not become a mail bomb.
    confirm_sends: Mapped[int] = mapped_column(Integer, default=0)
    confirm_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("kind", "address"),)
