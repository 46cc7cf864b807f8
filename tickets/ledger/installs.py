"""Rule 6: the module catalogue and installs per customer and module: the first is free, each reinstall is
charged at the module's reinstall price (fixed on the install row when it is recorded).

Two installs recorded at once for one customer and module cannot both be "the first": the sequence number
is unique per (customer, module), so the loser of a race retries with the next number.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role
from monitor.errors import NotFound
from monitor.models import Customer
from tickets.ledger.entries import post, require_rials
from tickets.ledger.errors import LedgerInput
from tickets.ledger.models import EntryKind, LedgerEntry, Module, ModuleInstall
from tickets.models import Ticket

__all__ = ["install_price_rials", "add_module", "record_install", "CATALOGUE_ROLES", "INSTALLER_ROLES"]

log = logging.getLogger("negahban.ledger")

CATALOGUE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
INSTALLER_ROLES = frozenset({Role.TECHNICIAN, Role.NOC, Role.ADMIN})
RACE_RETRIES = 5


def install_price_rials(sequence: int, reinstall_price_rials: int) -> int:
    """The first install (sequence 1) is free; every later one costs the reinstall price."""
    return 0 if sequence == 1 else reinstall_price_rials


async def add_module(sm: async_sessionmaker, principal: Principal, *, name: str,
                     reinstall_price_rials: int) -> Module:
    require_role(principal, CATALOGUE_ROLES)
    require_rials(reinstall_price_rials, "reinstall_price_rials", positive=False)
    if not name.strip():
        raise LedgerInput("name", "is empty")
    async with sm.begin() as session:
        if (await session.execute(select(Module.id).where(Module.name == name.strip()))).first():
            raise LedgerInput("name", f"module {name!r} exists already")
        module = Module(name=name.strip(), reinstall_price_rials=reinstall_price_rials)
        session.add(module)
    return module


async def _next_sequence(session: AsyncSession, customer_id: int, module_id: int) -> int:
    stmt = select(func.coalesce(func.max(ModuleInstall.sequence), 0)).where(
        ModuleInstall.customer_id == customer_id, ModuleInstall.module_id == module_id)
    return int((await session.execute(stmt)).scalar_one()) + 1


async def _insert_install(session: AsyncSession, module: Module, customer_id: int, ticket_id, principal,
                          now: datetime) -> ModuleInstall:
    for _ in range(RACE_RETRIES):
        seq = await _next_sequence(session, customer_id, module.id)
        install = ModuleInstall(customer_id=customer_id, module_id=module.id, ticket_id=ticket_id, sequence=seq,
                                price_rials=install_price_rials(seq, module.reinstall_price_rials),
                                installed_at=now, installed_by_id=principal.user_id)
        try:
            async with session.begin_nested():
                session.add(install)
            return install
        except IntegrityError:
            if install in session:
                session.expunge(install)
    raise LedgerInput("module_id", "too many installs of this module recorded at once; try again")


async def _check_install_refs(session: AsyncSession, customer_id: int, module_id: int, ticket_id) -> Module:
    module = await session.get(Module, module_id)
    if module is None:
        raise NotFound(f"module {module_id}")
    if await session.get(Customer, customer_id) is None:
        raise LedgerInput("customer_id", f"no such customer {customer_id}")
    if ticket_id is not None:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.customer_id != customer_id:
            raise LedgerInput("ticket_id", f"ticket {ticket_id} is not this customer's")
    return module


async def record_install(sm: async_sessionmaker, principal: Principal, *, customer_id: int, module_id: int,
                         ticket_id: int | None = None, now: datetime) -> tuple[ModuleInstall, LedgerEntry | None]:
    """Record an install; a reinstall posts its charge (``install:<id>``) in the same transaction."""
    require_role(principal, INSTALLER_ROLES)
    async with sm.begin() as session:
        module = await _check_install_refs(session, customer_id, module_id, ticket_id)
        install = await _insert_install(session, module, customer_id, ticket_id, principal, now)
        entry = None
        if install.price_rials > 0:
            entry, _ = await post(session, key=f"install:{install.id}", customer_id=customer_id,
                                  kind=EntryKind.REINSTALL, amount_rials=install.price_rials, now=now,
                                  install_id=install.id, ticket_id=ticket_id, posted_by_id=principal.user_id,
                                  description=f"reinstall #{install.sequence - 1} of {module.name}")
    log.info("module_installed customer=%s module=%s sequence=%s price_rials=%s", customer_id, module_id,
             install.sequence, install.price_rials)
    return install, entry
