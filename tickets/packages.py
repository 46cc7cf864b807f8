"""Rules 5, 7-9: a ticket's scope, and management or troubleshooting packages.

Staff set a ticket's scope. In scope (network, server uptime, the company's modules) is free. Out of scope
(CMS, the customer's own site or server software) is offered to the customer as paid work or a package.
A package bought is recorded per customer but starts no work by itself (rule 9): work under it is always a
ticket, to which the customer's active package is attached when staff mark the ticket out of scope.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import STAFF, Principal, require_role
from monitor.errors import NotFound
from monitor.models import Customer
from tickets.errors import Refusal
from tickets.models import Package, Scope, Ticket

__all__ = ["KINDS", "record_package", "active_package", "set_scope", "OUT_OF_SCOPE_OFFER", "package_json"]

KINDS = ("management", "troubleshooting")
OUT_OF_SCOPE_OFFER = {
    "offers": ["paid_work", *KINDS],
    "message": ("این درخواست خارج از محدودهٔ پشتیبانی رایگان است (مشکلات CMS یا نرم‌افزار سایت و سرور شما). "
                "می‌توانیم پس از توافق آن را به‌صورت کار پولی انجام دهیم، یا می‌توانید بستهٔ مدیریت یا "
                "رفع اشکال بخرید؛ در هر حال هر درخواست باید با یک تیکت ثبت شود."),
}


async def record_package(sm: async_sessionmaker, principal: Principal, *, customer_id: int, kind: str,
                         starts_on: date, ends_on: date, note: str = "", now: datetime) -> Package:
    require_role(principal, STAFF)
    draft = {"customer_id": customer_id, "kind": kind, "starts_on": str(starts_on), "ends_on": str(ends_on)}
    if kind not in KINDS:
        raise Refusal("invalid_package_kind", "kind", "نوع بسته باید «مدیریت» یا «رفع اشکال» باشد.", draft=draft)
    if ends_on < starts_on:
        raise Refusal("invalid_period", "ends_on", "پایان بسته نمی‌تواند پیش از شروع آن باشد.", draft=draft)
    package = Package(customer_id=customer_id, kind=kind, starts_on=starts_on, ends_on=ends_on, note=note,
                      created_at=now)
    async with sm.begin() as session:
        if await session.get(Customer, customer_id) is None:
            raise Refusal("unknown_customer", "customer_id", "چنین مشتری‌ای ثبت نشده است.", draft=draft)
        session.add(package)
    return package


async def active_package(session: AsyncSession, customer_id: int, on: date) -> Package | None:
    stmt = (select(Package).where(Package.customer_id == customer_id, Package.starts_on <= on,
                                  Package.ends_on >= on).order_by(Package.ends_on.desc()).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_scope(sm: async_sessionmaker, principal: Principal, ticket_id: int, scope: str, *,
                    today: date) -> dict:
    """Set the ticket's scope; out of scope returns the offer and attaches an active package if any."""
    require_role(principal, STAFF)
    try:
        scope = Scope(scope).value
    except ValueError:
        raise Refusal("invalid_scope", "scope", "محدوده باید «in» یا «out» باشد.", draft={"scope": scope}) from None
    async with sm.begin() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"ticket {ticket_id}")
        ticket.scope = scope
        package = await active_package(session, ticket.customer_id, today) if scope == Scope.OUT else None
        ticket.package_id = package.id if package else None
    if scope == Scope.IN:
        return {"scope": scope}
    return {"scope": scope, "package_id": package.id if package else None, **OUT_OF_SCOPE_OFFER}


def package_json(p: Package) -> dict:
    return {"id": p.id, "customer_id": p.customer_id, "kind": p.kind, "starts_on": p.starts_on.isoformat(),
            "ends_on": p.ends_on.isoformat(), "note": p.note}
