"""Builders shared by the incident tests: a small inventory, flips, channels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select

from incidents.models import Audience, ChannelKind, Incident, Notification, NotificationChannel
from monitor.models import Customer, Flip, Monitor, NetworkDevice, Server, Service


async def add(sessionmaker, *rows):
    async with sessionmaker() as s, s.begin():
        s.add_all(rows)
    return rows


async def server_with_monitor(sessionmaker, name: str, *, device_id: int | None = None,
                              customer_id: int | None = None) -> Monitor:
    """A customer (new unless given), its service, a server (behind ``device_id``) and a TCP monitor."""
    async with sessionmaker() as s, s.begin():
        if customer_id is None:
            customer = Customer(name=f"cust-{name}", display_name=f"Customer {name}")
            s.add(customer)
            await s.flush()
            customer_id = customer.id
        service = Service(name=f"svc-{name}", display_name=f"سرویس {name}", customer_id=customer_id)
        s.add(service)
        await s.flush()
        server = Server(name=name, address="127.0.0.1", service_id=service.id, parent_device_id=device_id)
        s.add(server)
        await s.flush()
        monitor = Monitor(name=f"tcp-{name}", kind="tcp", target="127.0.0.1:22", server_id=server.id,
                          service_id=service.id)
        s.add(monitor)
    return monitor


async def switch_with_monitor(sessionmaker, name: str = "sw-1") -> tuple[NetworkDevice, Monitor]:
    async with sessionmaker() as s, s.begin():
        device = NetworkDevice(name=name, kind="switch", address="127.0.0.2")
        s.add(device)
        await s.flush()
        monitor = Monitor(name=f"icmp-{name}", kind="icmp", target="127.0.0.2", device_id=device.id)
        s.add(monitor)
    return device, monitor


async def flip(sessionmaker, monitor_id: int, at: datetime, old: str, new: str, root: int | None = None) -> int:
    async with sessionmaker() as s, s.begin():
        row = Flip(monitor_id=monitor_id, at=at, old_state=old, new_state=new, reason="test",
                   root_monitor_id=root)
        s.add(row)
    return row.id


async def channel(sessionmaker, name: str, audience: Audience = Audience.CUSTOMER, *,
                  customer_id: int | None = None, kind: ChannelKind = ChannelKind.WEBHOOK,
                  address: str = "http://127.0.0.1:9/hook") -> NotificationChannel:
    (row,) = await add(sessionmaker, NotificationChannel(name=name, kind=kind, address=address,
                                                         audience=audience, customer_id=customer_id))
    return row


async def incidents(sessionmaker) -> list[Incident]:
    async with sessionmaker() as s:
        return list((await s.execute(select(Incident).order_by(Incident.id))).scalars())


async def notices(sessionmaker, **where) -> list[Notification]:
    async with sessionmaker() as s:
        stmt = select(Notification).order_by(Notification.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(Notification, k) == v)
        return list((await s.execute(stmt)).scalars())


async def count(sessionmaker, column, *where) -> int:
    async with sessionmaker() as s:
        return (await s.execute(select(func.count(column)).where(*where))).scalar_one()


async def after_passes(passed: asyncio.Event, ready: Callable[[], Awaitable[bool]], bound_s: float = 5.0) -> None:
    """Wait until ``ready()`` holds, re-checking after each pass of a stage (``passed``), within ``bound_s``."""
    async with asyncio.timeout(bound_s):
        while True:
            passed.clear()
            if await ready():
                return
            await passed.wait()
