"""Inventory, results and flips: the tables the ``monitor`` package owns."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from monitor.db.base import Base, BigId, UTCDateTime, fk_id

__all__ = [
    "State", "DeviceKind", "Customer", "Service", "Datacenter", "NetworkDevice", "Server", "Monitor",
    "MonitorState", "ProbeResultRow", "Flip", "Heartbeat", "MaintenanceWindow", "RollupFine", "RollupArchive",
    "WorkerItemFailure", "Location", "LocationResult", "AgentBatch", "FailingLocation", "CENTRAL",
]

# The location of the central service itself (its checks, its canaries: NEGAHBAN_CANARIES); never a row.
CENTRAL = "central"


class State(enum.StrEnum):
    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"
    UNREACHABLE = "UNREACHABLE"
    MAINTENANCE = "MAINTENANCE"
    UNKNOWN = "UNKNOWN"


class DeviceKind(enum.StrEnum):
    UPLINK = "uplink"
    ROUTER = "router"
    SWITCH = "switch"


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # Rule 3: support belongs only to an owner whose identity the sales system verified.
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    services: Mapped[list[Service]] = relationship(back_populates="customer", passive_deletes=True)


class Service(Base):
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    customer_id: Mapped[int] = fk_id("customers.id")
    # The customer opted this service in to the public status page.
    public_status: Mapped[bool] = mapped_column(Boolean, default=False)
    # The heading the status page lists the service under (Persian, shown to everyone; "" for none).
    status_group: Mapped[str] = mapped_column(String(100), default="")
    customer: Mapped[Customer] = relationship(back_populates="services")


class Datacenter(Base):
    __tablename__ = "datacenters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(100), default="")


class NetworkDevice(Base):
    __tablename__ = "network_devices"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(255))
    datacenter_id: Mapped[int | None] = fk_id("datacenters.id", nullable=True, ondelete="SET NULL")
    parent_id: Mapped[int | None] = fk_id("network_devices.id", nullable=True, ondelete="SET NULL")


class Server(Base):
    __tablename__ = "servers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    datacenter_id: Mapped[int | None] = fk_id("datacenters.id", nullable=True, ondelete="SET NULL")
    parent_device_id: Mapped[int | None] = fk_id("network_devices.id", nullable=True, ondelete="SET NULL")
    # The customer's service this server runs (None for company infrastructure).
    service_id: Mapped[int | None] = fk_id("services.id", nullable=True, ondelete="SET NULL")


class Monitor(Base):
    """One check of one target. ``spec`` holds the kind's own fields (validated by ``probes.SPECS``)."""

    __tablename__ = "monitors"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(2048))
    interval_s: Mapped[float] = mapped_column(Float, default=60.0)
    timeout_s: Mapped[float] = mapped_column(Float, default=10.0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The locations that check it (empty: the central one alone) and how many must confirm a failure
    # before DOWN (None: a majority of the healthy ones); see monitor.quorum.
    locations: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    quorum: Mapped[int | None] = mapped_column(Integer)
    service_id: Mapped[int | None] = fk_id("services.id", nullable=True, ondelete="CASCADE")
    server_id: Mapped[int | None] = fk_id("servers.id", nullable=True, ondelete="CASCADE")
    device_id: Mapped[int | None] = fk_id("network_devices.id", nullable=True, ondelete="CASCADE")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MonitorState(Base):
    """The evaluated state of a monitor, carried from one check to the next (``evaluate``'s ``previous``)."""

    __tablename__ = "monitor_states"
    monitor_id: Mapped[int] = mapped_column(BigId, ForeignKey("monitors.id", ondelete="CASCADE"),
                                            primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default=State.UNKNOWN)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Flips of this monitor written so far: a flip is written only by the node whose count matches
    # (``monitor.store``), so a node that lost the monitor to another cannot write a stale flip after it.
    flip_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Heartbeat(Base):
    """A push monitor's ping token and its latest pings (see ``monitor.heartbeat``).

    Only the SHA-256 of the token is stored: a token is 192 random bits, so a fast hash is enough, and a
    copy of the database (or an ``inventory export``, which carries the digest) lets nobody ping. The ping
    times are written on every ping: the sweep judges lateness by them, also after a restart."""

    __tablename__ = "heartbeats"
    monitor_id: Mapped[int] = mapped_column(BigId, ForeignKey("monitors.id", ondelete="CASCADE"),
                                            primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ping_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last finish (success, failure or exit code): the period and the grace are counted from it.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A /start not yet followed by a finish: the run in progress.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_signal: Mapped[str | None] = mapped_column(String(10))
    last_exit_code: Mapped[int | None] = mapped_column(Integer)


class ProbeResultRow(Base):
    __tablename__ = "probe_results"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    monitor_id: Mapped[int] = fk_id("monitors.id", index=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(40), default="ok")
    message: Mapped[str] = mapped_column(Text, default="")
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (Index("ix_probe_results_monitor_at", "monitor_id", "at"),)


class Flip(Base):
    """A confirmed change of a monitor's state. Later stages read flips, never raw results."""

    __tablename__ = "flips"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    monitor_id: Mapped[int] = fk_id("monitors.id")
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    old_state: Mapped[str] = mapped_column(String(20))
    new_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    # For UNREACHABLE: the parent's monitor whose DOWN explains this one.
    root_monitor_id: Mapped[int | None] = fk_id("monitors.id", nullable=True, ondelete="SET NULL",
                                                index=False)
    # Set when the incident engine has consumed the flip (claimed with a conditional UPDATE).
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A flip whose application failed: the error, and when it last failed (the engine retries it on later
    # passes and gives up after a few attempts, so one poisoned flip never stops the flips behind it).
    error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MaintenanceWindow(Base):
    """Planned work: inside a window a monitor is MAINTENANCE, opens no outage, and the time is left out of
    uptime. Scope: exactly one of monitor, server, device (and the devices, servers and monitors behind it)
    or customer. One-off: ``starts_at``..``ends_at``. Recurring: ``rrule`` (RFC 5545 subset such as
    ``FREQ=WEEKLY;BYDAY=FR``) from ``starts_at`` in ``timezone`` (wall-clock time kept), each occurrence
    ``duration_s`` long; ``ends_at`` then ends the series. See ``monitor.maintenance``."""

    __tablename__ = "maintenance_windows"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rrule: Mapped[str | None] = mapped_column(String(200))
    duration_s: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(50), default="Asia/Tehran")
    monitor_id: Mapped[int | None] = fk_id("monitors.id", nullable=True)
    server_id: Mapped[int | None] = fk_id("servers.id", nullable=True)
    device_id: Mapped[int | None] = fk_id("network_devices.id", nullable=True)
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RollupFine(Base):
    """Per monitor, per 5-minute bucket (``bucket`` = epoch seconds // 300): kept 48 hours.

    Written by upserts that add to the row, so a batch can be written without reading anything first.
    Without a rowid on SQLite the primary key is the table itself (half the bytes)."""

    __tablename__ = "rollups_fine"
    monitor_id: Mapped[int] = mapped_column(BigId, ForeignKey("monitors.id", ondelete="CASCADE"),
                                            primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    up: Mapped[int] = mapped_column(Integer, default=0)
    degraded: Mapped[int] = mapped_column(Integer, default=0)
    down: Mapped[int] = mapped_column(Integer, default=0)
    latency_min: Mapped[float] = mapped_column(Float, default=0.0)
    latency_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency_max: Mapped[float] = mapped_column(Float, default=0.0)
    __table_args__ = ({"sqlite_with_rowid": False},)


class RollupArchive(Base):
    """Hourly buckets (``resolution`` 3600: one row per UTC day, 24 slots) kept 90 days, and daily buckets
    (``resolution`` 86400: one row per UTC month, 31 slots) kept for years. ``slots`` is packed by
    ``monitor.rollups`` (20 bytes a slot): one row per period instead of one per bucket keeps a monitor's
    year under 100 KB on PostgreSQL, whose per-row overhead would otherwise dominate."""

    __tablename__ = "rollups_archive"
    monitor_id: Mapped[int] = mapped_column(BigId, ForeignKey("monitors.id", ondelete="CASCADE"),
                                            primary_key=True)
    resolution: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    slots: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = ({"sqlite_with_rowid": False},)


class WorkerItemFailure(Base):
    """An item a worker failed on, for the workers whose items have no error column of their own (rollup
    compaction per monitor, retention per table, the result flush per monitor, escalation and Alertmanager
    reconciliation per incident): its attempts, its last error, and when it was set aside for good.

    The row is deleted when the item next succeeds; one with ``gave_up_at`` set is skipped until a person
    deletes it (``GET /api/v1/worker-failures`` lists them)."""

    __tablename__ = "worker_item_failures"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    worker: Mapped[str] = mapped_column(String(40))
    item: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("worker", "item"),)


class Location(Base):
    """A place monitors are checked from, by a ``negahban agent`` holding the location's token. Only the
    token's SHA-256 is stored (192 random bits: a fast hash is enough, as for API tokens). ``canaries`` are
    the location's own self-check targets (``kind:target`` or a URL): when every one fails the location is
    blind and is left out of the vote."""

    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    canaries: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LocationResult(Base):
    """One check of a monitor from one location (a voted monitor's every check, live or late)."""

    __tablename__ = "location_results"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location: Mapped[str] = mapped_column(String(100))
    monitor_id: Mapped[int] = fk_id("monitors.id", index=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(40), default="ok")
    message: Mapped[str] = mapped_column(Text, default="")
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    # Older than the confirmation window when it arrived: counted in uptime, never voted on.
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    batch_id: Mapped[int | None] = fk_id("agent_batches.id", nullable=True, index=False)
    __table_args__ = (Index("ix_location_results_monitor_at", "monitor_id", "at"),
                      Index("ix_location_results_location_at", "location", "at"))


class FailingLocation(Base):
    """A location whose vote saw a voted monitor fail while it was in one failing state (DOWN or DEGRADED
    since ``since``): written with the flip for the locations that confirmed it, and by the next flush for
    each location that joins later. The unique (monitor, since, location) makes a repeat a no-op; the incident
    engine claims the rows (``processed_at``) and names the locations on the monitor's open incident."""

    __tablename__ = "failing_locations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    monitor_id: Mapped[int] = fk_id("monitors.id", index=False)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # the vote that first counted this location failing
    # Written with the flip: one of the locations that confirmed it (the others joined after).
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str] = mapped_column(Text, default="")
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("monitor_id", "since", "location"),)


class AgentBatch(Base):
    """A batch of results an agent pushed. The unique (location, agent, seq) is what makes delivery
    exactly-once: a repeat fails its insert and its results are not written again (no read-then-write)."""

    __tablename__ = "agent_batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location_id: Mapped[int] = fk_id("locations.id", index=False)
    agent_id: Mapped[str] = mapped_column(String(100))
    seq: Mapped[int] = mapped_column(BigInteger)
    results: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The engine node that took it (several nodes): the others vote its results from the table.
    node: Mapped[str | None] = mapped_column(String(100))
    __table_args__ = (UniqueConstraint("location_id", "agent_id", "seq"),)


class EngineNode(Base):
    """A running ``negahban serve`` engine sharing the database with others (PostgreSQL): its heartbeat."""

    __tablename__ = "engine_nodes"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShardLease(Base):
    """Who checks the monitors of one shard (``monitor_id % shards``) until ``expires_at``. ``generation``
    grows at every change of holder; a takeover is a claim of a lease whose holder stopped renewing it."""

    __tablename__ = "shard_leases"
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node: Mapped[str | None] = mapped_column(String(100))
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
