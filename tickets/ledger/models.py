"""The ledger's tables: datacenter tariffs and visits, the module catalogue and installs, priced items
(out-of-scope work and packages), the append-only ledger itself, and stored monthly statements.

Money is a whole number of rials (``Money``, a BigInteger) everywhere. Ledger amounts follow one sign
convention: an entry's ``amount_rials`` is what it adds to the customer's debt, so charges (visit, reinstall,
out_of_scope, package, fine) are positive, payments are negative, and a reversal is the exact negation of
the entry it reverses. A customer's balance is the plain sum of their entries (positive: the customer owes).

Fines stay recorded in the desk's ``fines`` table (ticket, violation, due date); their money lives here: each
fine is posted once as a ``fine`` entry (idempotency key ``fine:<id>``) carrying its due date, and a payment
that names the fine settles it. See ``tickets.ledger.fines``.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db.base import Base, BigId, Money, UTCDateTime, fk_id

__all__ = ["Cause", "EntryKind", "CHARGE_KINDS", "DatacenterTariff", "DatacenterVisit", "VisitTechnician",
           "Module", "ModuleInstall", "ItemKind", "PricedItem", "LedgerEntry", "Statement"]


class Cause(enum.StrEnum):
    """Why technicians went to the datacenter (rule 11)."""

    CUSTOMER_SERVER = "customer_server"
    COMPANY_NETWORK = "company_network"
    UNDETERMINED = "undetermined"


class EntryKind(enum.StrEnum):
    VISIT = "visit"
    REINSTALL = "reinstall"
    OUT_OF_SCOPE = "out_of_scope"
    PACKAGE = "package"
    FINE = "fine"
    PAYMENT = "payment"
    REVERSAL = "reversal"


CHARGE_KINDS = (EntryKind.VISIT, EntryKind.REINSTALL, EntryKind.OUT_OF_SCOPE, EntryKind.PACKAGE,
                EntryKind.FINE)


class ItemKind(enum.StrEnum):
    OUT_OF_SCOPE = "out_of_scope"
    PACKAGE = "package"


class DatacenterTariff(Base):
    """The travel cost of one visit to a datacenter, from ``effective_from`` until the next tariff."""

    __tablename__ = "datacenter_tariffs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    datacenter_id: Mapped[int] = fk_id("datacenters.id")
    per_visit_rials: Mapped[int] = mapped_column(Money)
    per_technician_rials: Mapped[int] = mapped_column(Money, default=0)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("datacenter_id", "effective_from", name="uq_datacenter_tariffs_dc_from"),
        CheckConstraint("per_visit_rials >= 0 AND per_technician_rials >= 0", name="non_negative"),
    )


class DatacenterVisit(Base):
    """Technicians went to a datacenter for an incident and/or a ticket (rule 11).

    ``cause_version`` grows at every change of cause; a visit's charge is keyed by it, so that a charge that
    was reversed after a change can be charged again when the cause changes back, and never twice per version.
    """

    __tablename__ = "datacenter_visits"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    datacenter_id: Mapped[int] = fk_id("datacenters.id", ondelete="RESTRICT")
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True, ondelete="RESTRICT")
    incident_id: Mapped[int | None] = fk_id("incidents.id", nullable=True, ondelete="SET NULL")
    ticket_id: Mapped[int | None] = fk_id("tickets.id", nullable=True, ondelete="SET NULL")
    departed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(20), default=Cause.UNDETERMINED)
    cause_version: Mapped[int] = mapped_column(Integer, default=1)
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Finance refused to bill the visit (``rejection_reason`` says why): it is then never billed.
    rejected_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(Text)


class VisitTechnician(Base):
    """A technician (a user) who went on a visit; the tariff's per-technician part counts these rows."""

    __tablename__ = "datacenter_visit_technicians"
    visit_id: Mapped[int] = mapped_column(BigId, ForeignKey("datacenter_visits.id", ondelete="CASCADE"),
                                          primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)


class Module(Base):
    """A module the company provides (rule 6): installed once free, each reinstall at ``reinstall_price``."""

    __tablename__ = "ledger_modules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    reinstall_price_rials: Mapped[int] = mapped_column(Money)
    __table_args__ = (CheckConstraint("reinstall_price_rials >= 0", name="non_negative"),)


class ModuleInstall(Base):
    """One install of a module for a customer. ``sequence`` 1 is the free first install; the unique
    (customer, module, sequence) lets the database refuse two concurrent installs claiming the same number."""

    __tablename__ = "ledger_module_installs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id", ondelete="RESTRICT")
    module_id: Mapped[int] = fk_id("ledger_modules.id", ondelete="RESTRICT")
    ticket_id: Mapped[int | None] = fk_id("tickets.id", nullable=True, ondelete="SET NULL")
    sequence: Mapped[int] = mapped_column(Integer)
    # The price charged (0 for the first install), fixed when the install is recorded.
    price_rials: Mapped[int] = mapped_column(Money)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    installed_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    __table_args__ = (UniqueConstraint("customer_id", "module_id", "sequence",
                                       name="uq_ledger_module_installs_seq"),)


class PricedItem(Base):
    """Agreed paid work tied to a ticket: out-of-scope work (rule 7) or a package sold (rule 8)."""

    __tablename__ = "ledger_priced_items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id", ondelete="RESTRICT")
    ticket_id: Mapped[int] = fk_id("tickets.id", ondelete="RESTRICT")
    kind: Mapped[str] = mapped_column(String(20))
    package_id: Mapped[int | None] = fk_id("packages.id", nullable=True, ondelete="SET NULL")
    description: Mapped[str] = mapped_column(Text, default="")
    amount_rials: Mapped[int] = mapped_column(Money)
    recorded_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (CheckConstraint("amount_rials > 0", name="positive"),)


class LedgerEntry(Base):
    """One append-only line of the ledger (see the module doc for the sign convention).

    ``idempotency_key`` is unique: posting the same fact twice (an approval that arrives twice, two
    concurrent approvals, a payment file imported again) hits the constraint and leaves one entry.
    ``reverses_id`` is unique too: an entry is reversed at most once.
    """

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id", ondelete="RESTRICT")
    kind: Mapped[str] = mapped_column(String(20))
    amount_rials: Mapped[int] = mapped_column(Money)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    posted_by_id: Mapped[int | None] = fk_id("users.id", nullable=True, ondelete="SET NULL", index=False)
    visit_id: Mapped[int | None] = fk_id("datacenter_visits.id", nullable=True, ondelete="RESTRICT")
    ticket_id: Mapped[int | None] = fk_id("tickets.id", nullable=True, ondelete="SET NULL")
    incident_id: Mapped[int | None] = fk_id("incidents.id", nullable=True, ondelete="SET NULL", index=False)
    install_id: Mapped[int | None] = fk_id("ledger_module_installs.id", nullable=True, ondelete="RESTRICT")
    item_id: Mapped[int | None] = fk_id("ledger_priced_items.id", nullable=True, ondelete="RESTRICT")
    fine_id: Mapped[int | None] = fk_id("fines.id", nullable=True, ondelete="RESTRICT")
    # A fine's due date (rule 19: unpaid past it, support is suspended).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A payment's outside reference (bank tracking number), unique per payment through its idempotency key.
    reference: Mapped[str | None] = mapped_column(String(100))
    reverses_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ledger_entries.id", ondelete="RESTRICT"),
                                                    unique=True)
    __table_args__ = (
        Index("ix_ledger_entries_customer_posted", "customer_id", "posted_at"),
        CheckConstraint("amount_rials <> 0", name="non_zero"),
    )


class Statement(Base):
    """A customer's monthly statement (a Jalali month, Asia/Tehran), stored in rials when generated.

    ``closing_rials`` = ``opening_rials`` + ``charges_rials`` + ``credits_rials`` (credits are negative).
    """

    __tablename__ = "ledger_statements"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = fk_id("customers.id", ondelete="RESTRICT")
    jalali_year: Mapped[int] = mapped_column(Integer)
    jalali_month: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    opening_rials: Mapped[int] = mapped_column(Money)
    charges_rials: Mapped[int] = mapped_column(Money)
    credits_rials: Mapped[int] = mapped_column(Money)
    closing_rials: Mapped[int] = mapped_column(Money)
    entry_count: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("customer_id", "jalali_year", "jalali_month",
                                       name="uq_ledger_statements_month"),)
