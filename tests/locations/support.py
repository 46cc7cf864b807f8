"""Queries the location and agent tests share."""

from __future__ import annotations

from sqlalchemy import select

from incidents.models import Incident
from monitor.models import Flip, Monitor


async def monitor_id(db, name: str) -> int:
    async with db.sessionmaker() as s:
        return (await s.execute(select(Monitor.id).where(Monitor.name == name))).scalar_one()


async def all_incidents(db) -> list[Incident]:
    async with db.sessionmaker() as s:
        return list((await s.execute(select(Incident).order_by(Incident.id))).scalars())


async def flips_of(db, mid: int) -> list[Flip]:
    async with db.sessionmaker() as s:
        return list((await s.execute(select(Flip).where(Flip.monitor_id == mid).order_by(Flip.id))).scalars())
