"""The runner's view of the inventory: each enabled monitor with its parsed spec, policy and labels."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased

from monitor.heartbeat import policy_for
from monitor.models import (
    CENTRAL,
    Customer,
    Datacenter,
    MaintenanceWindow,
    Monitor,
    NetworkDevice,
    Server,
    Service,
)
from monitor.policy import Policy, Thresholds, load_policy, load_thresholds
from monitor.topology import Node
from monitor.work import WorkerFailures
from probes import PUSH_KINDS, SPECS, SpecBase

__all__ = ["MonitorConfig", "load_catalog", "spec_for", "load_links", "fingerprint"]

log = logging.getLogger("negahban.catalog")


# weakref_slot: a test shows a removed monitor's config is freed after the service froze it (gc.freeze).
@dataclass(frozen=True, slots=True, weakref_slot=True)
class MonitorConfig:
    id: int
    name: str
    kind: str
    spec: SpecBase
    interval_s: float
    policy: Policy
    labels: dict[str, str] = field(default_factory=dict)
    thresholds: Thresholds = Thresholds()
    server_id: int | None = None
    device_id: int | None = None
    customer_id: int | None = None
    locations: tuple[str, ...] = ()  # empty: the central location alone (not voted)
    quorum: int | None = None

    @property
    def assigned(self) -> tuple[str, ...]:
        """The locations that check this monitor."""
        return self.locations or (CENTRAL,)

    @property
    def voted(self) -> bool:
        """Judged by the location vote (``monitor.quorum``) rather than from the central checks alone."""
        return self.assigned != (CENTRAL,)

    def same_schedule(self, other: MonitorConfig) -> bool:
        return self.interval_s == other.interval_s

    @property
    def node(self) -> Node:
        return Node(self.id, self.kind, self.server_id, self.device_id, self.customer_id)


def spec_for(monitor: Monitor) -> SpecBase:
    """Build the kind's spec from a stored monitor row (validated on the way in by the inventory)."""
    data = dict(monitor.spec or {})
    data.update(kind=monitor.kind, target=monitor.target, timeout_s=monitor.timeout_s)
    return SPECS[monitor.kind].model_validate(data)


async def load_catalog(sessionmaker: async_sessionmaker, only: Iterable[int] | None = None,
                       failures: WorkerFailures | None = None) -> dict[int, MonitorConfig]:
    """Return every enabled monitor keyed by id (or those of ``only``). A row that cannot be read is left out and
    counted (worker ``catalog_reload``, ``gave_up``: it stays out until the row is edited, which makes the next
    reload read it)."""
    dev_dc = aliased(Datacenter)
    stmt = (
        select(Monitor, Service.name, Customer.name, Datacenter.location, dev_dc.location, Customer.id,
               Server.service_id)
        .outerjoin(Service, Monitor.service_id == Service.id)
        .outerjoin(Customer, Service.customer_id == Customer.id)
        .outerjoin(Server, Monitor.server_id == Server.id)
        .outerjoin(Datacenter, Server.datacenter_id == Datacenter.id)
        .outerjoin(NetworkDevice, Monitor.device_id == NetworkDevice.id)
        .outerjoin(dev_dc, NetworkDevice.datacenter_id == dev_dc.id)
        .where(Monitor.enabled.is_(True), Monitor.kind.in_(list(SPECS)))
    )
    if only is not None:
        stmt = stmt.where(Monitor.id.in_(list(only)))
    async with sessionmaker() as session:
        rows = (await session.execute(stmt)).all()
    customer_of_service = await _service_customers(sessionmaker)
    catalog = {}
    for mon, service, customer, location, dev_location, customer_id, server_service in rows:
        try:
            spec = spec_for(mon)
            # ``instance`` is the probed target, as a blackbox_exporter /probe job's relabelling makes it.
            labels = {"customer": customer or "", "instance": spec.target, "kind": mon.kind,
                      "location": location or dev_location or "", "monitor": mon.name, "service": service or ""}
            catalog[mon.id] = MonitorConfig(
                mon.id, mon.name, mon.kind, spec, mon.interval_s,
                load_policy(policy_for(mon.kind in PUSH_KINDS, mon.policy)), labels,
                load_thresholds(mon.thresholds), mon.server_id, mon.device_id,
                customer_id or customer_of_service.get(server_service), tuple(mon.locations or ()), mon.quorum)
        except Exception as exc:  # InvalidInput, ValidationError, or a row corrupt in a way nobody foresaw
            # One broken row must not stop the other 9,999 monitors: it is left out and logged.
            log.error("monitor_invalid monitor=%s error=%s", mon.name, str(exc).replace("\n", " "))
            if failures is not None:
                failures.record("catalog_reload", f"monitor:{mon.id}", exc, gave_up=True)
    return catalog


async def _service_customers(sessionmaker: async_sessionmaker) -> dict[int, int]:
    async with sessionmaker() as session:
        return dict((await session.execute(select(Service.id, Service.customer_id))).all())


async def load_links(sessionmaker: async_sessionmaker) -> tuple[dict[int, int | None], dict[int, int | None]]:
    """(server id -> its device, device id -> its parent device), for the dependency topology."""
    async with sessionmaker() as session:
        servers = dict((await session.execute(select(Server.id, Server.parent_device_id))).all())
        devices = dict((await session.execute(select(NetworkDevice.id, NetworkDevice.parent_id))).all())
    return servers, devices


async def fingerprint(sessionmaker: async_sessionmaker) -> tuple:
    """A cheap summary that changes whenever monitors, links or maintenance windows change.

    Checked every few seconds instead of reloading 10,000 rows: a monitor added, removed, paused or edited
    changes its count, id sum or ``max(updated_at)``; a re-parented server or device changes the link sums.
    """
    queries = [
        select(func.count(), func.sum(Monitor.id), func.max(Monitor.updated_at)).where(Monitor.enabled.is_(True)),
        select(func.count(), func.sum(Server.id * 7 + func.coalesce(Server.parent_device_id, 0))),
        select(func.count(), func.sum(NetworkDevice.id * 7 + func.coalesce(NetworkDevice.parent_id, 0))),
        select(func.count(), func.sum(MaintenanceWindow.id), func.max(MaintenanceWindow.created_at)),
    ]
    async with sessionmaker() as session:
        return tuple([tuple((await session.execute(q)).one()) for q in queries])
