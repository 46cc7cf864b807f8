"""What an incident affects: the failing monitor, and for a network device everything behind it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.models import IncidentAffected
from monitor.models import Monitor, NetworkDevice, Server, Service

__all__ = ["Affected", "affected_by_monitor", "add_affected", "affected_customers"]


@dataclass(frozen=True, slots=True)
class Affected:
    key: str
    monitor_id: int | None = None
    device_id: int | None = None
    server_id: int | None = None
    service_id: int | None = None
    customer_id: int | None = None


async def affected_by_monitor(session: AsyncSession, monitor: Monitor) -> list[Affected]:
    """The monitor itself, and when it watches a network device, every server behind that device."""
    server = await session.get(Server, monitor.server_id) if monitor.server_id else None
    service_id = monitor.service_id or (server.service_id if server else None)
    rows = [Affected(f"monitor:{monitor.id}", monitor.id, monitor.device_id, monitor.server_id, service_id,
                     await _customer_of(session, service_id))]
    if monitor.device_id:
        rows += await _servers_behind(session, monitor.device_id)
    return rows


async def _customer_of(session: AsyncSession, service_id: int | None) -> int | None:
    if service_id is None:
        return None
    return (await session.execute(select(Service.customer_id).where(Service.id == service_id))).scalar()


async def _device_subtree(session: AsyncSession, device_id: int) -> set[int]:
    edges = (await session.execute(select(NetworkDevice.id, NetworkDevice.parent_id))).all()
    children: dict[int, list[int]] = {}
    for child, parent in edges:
        children.setdefault(parent, []).append(child)
    seen, todo = {device_id}, [device_id]
    while todo:  # bounded: each device is visited once even if the inventory had a cycle
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


async def _servers_behind(session: AsyncSession, device_id: int) -> list[Affected]:
    devices = await _device_subtree(session, device_id)
    rows = await session.execute(
        select(Server.id, Server.parent_device_id, Server.service_id, Service.customer_id)
        .outerjoin(Service, Service.id == Server.service_id)
        .where(Server.parent_device_id.in_(devices)).order_by(Server.id))
    return [Affected(f"server:{sid}", None, dev, sid, svc, cust) for sid, dev, svc, cust in rows]


async def add_affected(session: AsyncSession, incident_id: int, rows: Iterable[Affected], now: datetime,
                       ) -> set[int]:
    """Insert the rows not listed yet; return the customers that were not affected before."""
    existing = (await session.execute(select(IncidentAffected.key, IncidentAffected.customer_id)
                                      .where(IncidentAffected.incident_id == incident_id))).all()
    keys = {k for k, _ in existing}
    before = {c for _, c in existing if c is not None}
    new_customers: set[int] = set()
    for row in rows:
        if row.key in keys:
            continue
        keys.add(row.key)
        session.add(IncidentAffected(incident_id=incident_id, key=row.key, monitor_id=row.monitor_id,
                                     device_id=row.device_id, server_id=row.server_id, service_id=row.service_id,
                                     customer_id=row.customer_id, added_at=now))
        if row.customer_id is not None and row.customer_id not in before:
            new_customers.add(row.customer_id)
    return new_customers


async def affected_customers(session: AsyncSession, incident_id: int) -> set[int]:
    rows = await session.execute(select(IncidentAffected.customer_id).distinct().where(
        IncidentAffected.incident_id == incident_id, IncidentAffected.customer_id.is_not(None)))
    return set(rows.scalars())
