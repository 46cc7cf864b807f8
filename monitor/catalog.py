"""The runner's view of the inventory: each enabled monitor with its parsed spec, policy and labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased

from monitor.models import Customer, Datacenter, Monitor, NetworkDevice, Server, Service
from monitor.policy import Policy
from probes import SPECS, SpecBase

__all__ = ["MonitorConfig", "load_catalog", "spec_for"]


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    id: int
    name: str
    kind: str
    spec: SpecBase
    interval_s: float
    policy: Policy
    labels: dict[str, str] = field(default_factory=dict)

    def same_schedule(self, other: MonitorConfig) -> bool:
        return self.interval_s == other.interval_s


def spec_for(monitor: Monitor) -> SpecBase:
    """Build the kind's spec from a stored monitor row (validated on the way in by the inventory)."""
    data = dict(monitor.spec or {})
    data.update(kind=monitor.kind, target=monitor.target, timeout_s=monitor.timeout_s)
    return SPECS[monitor.kind].model_validate(data)


async def load_catalog(sessionmaker: async_sessionmaker) -> dict[int, MonitorConfig]:
    """Return every enabled monitor keyed by id."""
    dev_dc = aliased(Datacenter)
    stmt = (
        select(Monitor, Service.name, Customer.name, Datacenter.location, dev_dc.location)
        .outerjoin(Service, Monitor.service_id == Service.id)
        .outerjoin(Customer, Service.customer_id == Customer.id)
        .outerjoin(Server, Monitor.server_id == Server.id)
        .outerjoin(Datacenter, Server.datacenter_id == Datacenter.id)
        .outerjoin(NetworkDevice, Monitor.device_id == NetworkDevice.id)
        .outerjoin(dev_dc, NetworkDevice.datacenter_id == dev_dc.id)
        .where(Monitor.enabled.is_(True))
    )
    async with sessionmaker() as session:
        rows = (await session.execute(stmt)).all()
    catalog = {}
    for mon, service, customer, location, dev_location in rows:
        labels = {"monitor": mon.name, "service": service or "", "customer": customer or "",
                  "location": location or dev_location or "", "kind": mon.kind}
        catalog[mon.id] = MonitorConfig(mon.id, mon.name, mon.kind, spec_for(mon), mon.interval_s,
                                        Policy.model_validate(mon.policy or {}), labels)
    return catalog
