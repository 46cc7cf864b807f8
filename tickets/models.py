"""The desk's tables: tickets and their messages, departments, the office calendar's admin changes, the
knowledge base, packages, violations, fines and the audit log.

``tickets.incident_id`` is a plain integer without a foreign key because the ``incidents`` table does not
exist yet: the incidents issue adds the FK (``incidents.id``, ``ON DELETE SET NULL``) in its migration. It
is unique, so that one incident never has two tickets (NULLs do not collide on either database).

``fines`` is a table of its own until the ledger (``tickets/ledger/``) absorbs it.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db.base import Base, BigId, Money, UTCDateTime, fk_id

__all__ = ["Status", "Priority", "Source", "Scope", "Ticket", "TicketMessage", "Department", "CalendarDay",
           "KbArticle", "Package", "Violation", "Fine", "AuditEntry", "OPEN_STATUSES", "CLOSED_STATUSES"]


class Status(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    CLOSED = "closed"
    CLOSED_WITHOUT_ANSWER = "closed_without_answer"


OPEN_STATUSES = (Status.OPEN, Status.ANSWERED, Status.WAITING_ON_CUSTOMER)
CLOSED_STATUSES = (Status.CLOSED, Status.CLOSED_WITHOUT_ANSWER)


class Priority(enum.StrEnum):
    URGENT = "urgent"
    IMPORTANT = "important"
    NORMAL = "normal"


class Source(enum.StrEnum):
    CUSTOMER = "customer"
    MONITORING = "monitoring"
    ALERTMANAGER = "alertmanager"


class Scope(enum.StrEnum):
    IN = "in"
    OUT = "out"


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id")
    service_id: Mapped[int | None] = fk_id("services.id", nullable=True, ondelete="SET NULL")
    department: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(20), default=Source.CUSTOMER)
    # Added as an FK by the incidents issue (see the module doc).
    incident_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    # The department's own fields (server address, when it started, invoice number, ...).
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(30), default=Status.OPEN, index=True)
    close_reason: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10), default=Priority.NORMAL)
    requested_priority: Mapped[str] = mapped_column(String(10), default=Priority.NORMAL)
    # Rule 14: e.g. "urgent_but_service_up", for staff to review; cleared when staff decide.
    priority_flag: Mapped[str | None] = mapped_column(String(40))
    scope: Mapped[str | None] = mapped_column(String(10))
    package_id: Mapped[int | None] = fk_id("packages.id", nullable=True, ondelete="SET NULL")
    references_ticket_id: Mapped[int | None] = fk_id("tickets.id", nullable=True, ondelete="SET NULL")
    opened_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    assignee_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sla_band: Mapped[str] = mapped_column(String(10))
    first_response_due: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shown_article_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    __table_args__ = (UniqueConstraint("incident_id"),)


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = fk_id("tickets.id")
    author_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    author_kind: Mapped[str] = mapped_column(String(20))  # customer | staff | system
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Department(Base):
    """A department's configuration; rows override the built-in defaults of the same ``key``."""

    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(30), unique=True)
    name_fa: Mapped[str] = mapped_column(String(100))
    required_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    forced_priority: Mapped[str | None] = mapped_column(String(10))
    # Persian names of the department's own fields, shown when one is missing.
    field_labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CalendarDay(Base):
    """An admin's change to the office calendar: a ``closure`` added, or a seeded holiday ``removed``."""

    __tablename__ = "calendar_days"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("day", "kind", name="uq_calendar_days_day_kind"),)


class KbArticle(Base):
    __tablename__ = "kb_articles"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(30))
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Package(Base):
    """Rules 8-9: a management or troubleshooting package a customer bought (work still needs tickets)."""

    __tablename__ = "packages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id")
    kind: Mapped[str] = mapped_column(String(20))  # management | troubleshooting
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Violation(Base):
    """Rule 19: staff record which rule of the support terms a ticket violated."""

    __tablename__ = "violations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = fk_id("tickets.id")
    rule: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Fine(Base):
    """Rule 19: a fine in rials. The ledger absorbs this table once it exists."""

    __tablename__ = "fines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id")
    ticket_id: Mapped[int | None] = fk_id("tickets.id", nullable=True, ondelete="SET NULL")
    violation_id: Mapped[int | None] = fk_id("violations.id", nullable=True, ondelete="SET NULL")
    amount_rials: Mapped[int] = mapped_column(Money)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Rule 4: who read or exported whose data, and every disclosure with its judicial letter."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL")
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True, ondelete="SET NULL")
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200), default="")
    letter_reference: Mapped[str | None] = mapped_column(String(200))
    recipient: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
