"""Incidents, what they affect, their timeline, escalation policies, and the notification outbox."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db.base import Base, BigId, UTCDateTime, fk_id

__all__ = [
    "Severity", "Status", "Source", "Audience", "ChannelKind", "STATEFUL_KINDS", "NoticeStatus", "Incident", "IncidentAffected",
    "IncidentEvent", "EscalationPolicy", "EscalationStep", "NotificationChannel", "Notification",
]


class Severity(enum.StrEnum):
    """Rule 14: urgent means down, important means disrupted."""

    URGENT = "urgent"
    IMPORTANT = "important"

    @property
    def rank(self) -> int:
        return 2 if self is Severity.URGENT else 1


class Status(enum.StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Source(enum.StrEnum):
    MONITOR = "monitor"
    ALERTMANAGER = "alertmanager"


class Audience(enum.StrEnum):
    NOC = "noc"
    CUSTOMER = "customer"
    # Reached only through an escalation policy (an on-call manager's phone, for instance).
    ESCALATION = "escalation"


class ChannelKind(enum.StrEnum):
    """What a channel's ``address`` is: a URL (webhook), a mailbox (email), a mobile number (sms, kavenegar,
    ghasedak), a chat id (telegram, bale), a routing key or ``env:NAME``/``file:PATH`` naming one
    (pagerduty)."""

    WEBHOOK = "webhook"
    EMAIL = "email"
    SMS = "sms"
    KAVENEGAR = "kavenegar"
    GHASEDAK = "ghasedak"
    TELEGRAM = "telegram"
    BALE = "bale"
    PAGERDUTY = "pagerduty"


# Channels that keep their own copy of the incident's state and so are told of every change (an
# acknowledgement too), not only of openings and resolutions.
STATEFUL_KINDS = frozenset({ChannelKind.PAGERDUTY.value})


class NoticeStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Incident(Base):
    """One outage. ``open_key`` equals ``dedup_key`` while the incident is open and is NULL once it is
    resolved: a unique index on it lets the database, not the code, forbid two open incidents per cause."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(300), index=True)
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=Status.TRIGGERED, index=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    # The root cause: the monitor whose failure this is (None for Alertmanager incidents).
    monitor_id: Mapped[int | None] = fk_id("monitors.id", nullable=True, ondelete="SET NULL")
    service_id: Mapped[int | None] = fk_id("services.id", nullable=True, ondelete="SET NULL")
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True, ondelete="SET NULL")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    assigned_to: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    # Set by a recovery flip, cleared by a new failure: recovery is confirmed once this is old enough.
    recovering_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flap_count: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    resolution: Mapped[str] = mapped_column(String(40), default="")
    previous_incident_id: Mapped[int | None] = fk_id("incidents.id", nullable=True, ondelete="SET NULL",
                                                     index=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # Alertmanager alerts: identity and the labels/annotations last seen.
    alert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    alert_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Claims for the desk (tickets/ sets them with a conditional UPDATE; incidents never imports tickets).
    ticket_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ticket_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The desk's failures on this incident (opening or closing its ticket): the last error and how many.
    desk_error: Mapped[str | None] = mapped_column(Text)
    desk_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A voted monitor's incident: the locations (internal names) that saw the failure while it was open, in
    # the order they did (``monitor.models.FailingLocation``); customers are never shown these names.
    locations: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    __table_args__ = (Index("ix_incidents_status_opened", "status", "opened_at"),)


class IncidentAffected(Base):
    """What an incident affects: one row per monitor or server (``key`` is ``monitor:N`` or ``server:N``),
    carrying the server, service and customer it belongs to."""

    __tablename__ = "incident_affected"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = fk_id("incidents.id", index=False)
    key: Mapped[str] = mapped_column(String(60))
    monitor_id: Mapped[int | None] = fk_id("monitors.id", nullable=True, ondelete="SET NULL", index=False)
    device_id: Mapped[int | None] = fk_id("network_devices.id", nullable=True, ondelete="SET NULL", index=False)
    server_id: Mapped[int | None] = fk_id("servers.id", nullable=True, ondelete="SET NULL", index=False)
    service_id: Mapped[int | None] = fk_id("services.id", nullable=True, ondelete="SET NULL", index=False)
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True, ondelete="SET NULL")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("incident_id", "key"),)


class IncidentEvent(Base):
    """The incident's timeline: opened, flapped, upgraded, acknowledged, assigned, note, escalated, resolved."""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = fk_id("incidents.id")
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    text: Mapped[str] = mapped_column(Text, default="")


class NotificationChannel(Base):
    """Where notices go. A permanent delivery failure turns ``enabled`` off and records why (visible on the
    NOC screens and as a metric), instead of retrying a dead address forever."""

    __tablename__ = "notification_channels"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(500))
    audience: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True)
    user_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class EscalationStep(Base):
    """Step ``position`` notifies ``channel_id`` once an urgent incident has stayed unacknowledged for
    ``delay_s`` seconds since it opened."""

    __tablename__ = "escalation_steps"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    policy_id: Mapped[int] = fk_id("escalation_policies.id", index=False)
    position: Mapped[int] = mapped_column(Integer)
    delay_s: Mapped[float] = mapped_column(Float)
    channel_id: Mapped[int] = fk_id("notification_channels.id")
    __table_args__ = (UniqueConstraint("policy_id", "position"),)


class Notification(Base):
    """The outbox. Rows are written in the same transaction as the incident change they announce;
    ``dedup_key`` (incident, kind, channel) makes a second notice for the same event impossible."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel_id: Mapped[int] = fk_id("notification_channels.id")
    incident_id: Mapped[int | None] = fk_id("incidents.id", nullable=True, ondelete="SET NULL")
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=NoticeStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A sender's lease: other dispatchers skip the row until it expires.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)
