"""Rule 11: datacenter visits, their travel tariff, and billing by cause.

A visit is billable to the customer only when its cause is the customer's server AND a NOC lead or finance
approved it. An undetermined cause blocks billing until someone decides it; a visit caused by the company's
network or hardware is never billed, nor one that finance rejected (with its reason). Changing the cause after billing posts a reversal; the posted charge is never
edited. Each change of cause bumps ``cause_version``, and a charge's idempotency key is
``visit:<id>:v<version>``: however often (or concurrently) an approval arrives, one version bills once.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.models import Incident
from monitor.accounts import Principal, Role, User, require_role
from monitor.errors import NotFound
from monitor.models import Customer, Datacenter
from tickets.ledger.entries import live_entries, post, require_rials, reverse
from tickets.ledger.errors import LedgerInput
from tickets.ledger.models import (
    Cause,
    DatacenterTariff,
    DatacenterVisit,
    EntryKind,
    LedgerEntry,
    VisitTechnician,
)
from tickets.models import Ticket

__all__ = ["Billing", "billing_decision", "visit_charge_rials", "set_tariff", "tariff_at", "record_visit",
           "approve_visit", "reject_visit", "set_cause", "pending_visits", "PendingVisit", "APPROVERS", "settle_visit", "visit_json", "RECORDERS", "LEADS", "TARIFF_ROLES"]

log = logging.getLogger("negahban.ledger")

RECORDERS = frozenset({Role.TECHNICIAN, Role.NOC, Role.ADMIN})
LEADS = frozenset({Role.NOC, Role.ADMIN})
# Who decides whether a visit is billed: NOC leads, and finance on the /ledger page (issue 13).
APPROVERS = frozenset({Role.NOC, Role.ADMIN, Role.FINANCE})
REASON_MAX = 2000
TARIFF_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
TECHNICIAN_ROLES = frozenset({Role.TECHNICIAN, Role.NOC, Role.ADMIN})


class Billing(enum.StrEnum):
    BILL = "bill"
    AWAITING_APPROVAL = "awaiting_approval"
    BLOCKED_UNDETERMINED = "blocked_undetermined"
    NOT_BILLABLE = "not_billable"


def billing_decision(cause: str, approved: bool, rejected: bool = False) -> Billing:
    """Whether a visit is billed to its customer now (a pure rule)."""
    if rejected:
        return Billing.NOT_BILLABLE
    if cause == Cause.UNDETERMINED:
        return Billing.BLOCKED_UNDETERMINED
    if cause != Cause.CUSTOMER_SERVER:
        return Billing.NOT_BILLABLE
    return Billing.BILL if approved else Billing.AWAITING_APPROVAL


def visit_charge_rials(per_visit_rials: int, per_technician_rials: int, technicians: int) -> int:
    return per_visit_rials + per_technician_rials * technicians


def _cause(value) -> Cause:
    try:
        return Cause(value)
    except ValueError:
        raise LedgerInput("cause", f"must be one of {', '.join(c.value for c in Cause)}") from None


async def set_tariff(sm: async_sessionmaker, principal: Principal, *, datacenter_id: int, per_visit_rials: int,
                     per_technician_rials: int = 0, effective_from: datetime) -> DatacenterTariff:
    require_role(principal, TARIFF_ROLES)
    require_rials(per_visit_rials, "per_visit_rials", positive=False)
    require_rials(per_technician_rials, "per_technician_rials", positive=False)
    try:
        async with sm.begin() as session:
            if await session.get(Datacenter, datacenter_id) is None:
                raise NotFound(f"datacenter {datacenter_id}")
            tariff = DatacenterTariff(datacenter_id=datacenter_id, per_visit_rials=per_visit_rials,
                                      per_technician_rials=per_technician_rials, effective_from=effective_from)
            session.add(tariff)
    except IntegrityError:  # the unique (datacenter, effective_from): one tariff starts at a given moment
        raise LedgerInput("effective_from", "this datacenter already has a tariff starting then") from None
    return tariff


async def tariff_at(session: AsyncSession, datacenter_id: int, at: datetime) -> DatacenterTariff | None:
    """The tariff in force at ``at`` (the latest whose ``effective_from`` is not after it)."""
    stmt = (select(DatacenterTariff).where(DatacenterTariff.datacenter_id == datacenter_id,
                                           DatacenterTariff.effective_from <= at)
            .order_by(DatacenterTariff.effective_from.desc()).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def _visit_customer(session: AsyncSession, ticket_id, incident_id, customer_id) -> int | None:
    """The customer a visit would bill: the ticket's, else the incident's, else the one given."""
    found = []
    for model, rid, field in ((Ticket, ticket_id, "ticket_id"), (Incident, incident_id, "incident_id")):
        if rid is not None:
            row = await session.get(model, rid)
            if row is None:
                raise LedgerInput(field, f"no such {field[:-3]} {rid}")
            if row.customer_id is not None:
                found.append((field, row.customer_id))
    for field, cid in found:
        if customer_id is not None and cid != customer_id:
            raise LedgerInput("customer_id", f"the {field[:-3]} belongs to customer {cid}, not {customer_id}")
    return found[0][1] if found else customer_id


async def _check_technicians(session: AsyncSession, ids: list[int]) -> list[int]:
    ids = sorted(set(ids or []))
    if not ids:
        raise LedgerInput("technician_ids", "at least one technician went")
    rows = (await session.execute(select(User.id, User.role).where(User.id.in_(ids)))).all()
    staff = {uid for uid, role in rows if role in TECHNICIAN_ROLES}
    missing = [i for i in ids if i not in staff]
    if missing:
        raise LedgerInput("technician_ids", f"not technicians: {missing}")
    return ids


def _check_visit_input(incident_id, ticket_id, departed_at: datetime, returned_at: datetime) -> None:
    if incident_id is None and ticket_id is None:
        raise LedgerInput("ticket_id", "a visit is recorded against an incident or a ticket")
    if returned_at < departed_at:
        raise LedgerInput("returned_at", "is before departed_at")


async def record_visit(sm: async_sessionmaker, principal: Principal, *, datacenter_id: int,
                       technician_ids: list[int], departed_at: datetime, returned_at: datetime,
                       incident_id: int | None = None, ticket_id: int | None = None,
                       customer_id: int | None = None, cause: str = Cause.UNDETERMINED, notes: str = "",
                       now: datetime) -> DatacenterVisit:
    """A technician records a visit (not billed until a NOC lead approves a customer-server cause)."""
    require_role(principal, RECORDERS)
    cause = _cause(cause)
    _check_visit_input(incident_id, ticket_id, departed_at, returned_at)
    async with sm.begin() as session:
        if await session.get(Datacenter, datacenter_id) is None:
            raise LedgerInput("datacenter_id", f"no such datacenter {datacenter_id}")
        ids = await _check_technicians(session, technician_ids)
        customer_id = await _visit_customer(session, ticket_id, incident_id, customer_id)
        if cause == Cause.CUSTOMER_SERVER and customer_id is None:
            raise LedgerInput("customer_id", "a visit caused by a customer's server names that customer")
        visit = DatacenterVisit(datacenter_id=datacenter_id, customer_id=customer_id, incident_id=incident_id,
                                ticket_id=ticket_id, departed_at=departed_at, returned_at=returned_at,
                                cause=cause, cause_version=1, notes=notes, recorded_by_id=principal.user_id,
                                recorded_at=now)
        session.add(visit)
        await session.flush()
        session.add_all([VisitTechnician(visit_id=visit.id, user_id=i) for i in ids])
    log.info("visit_recorded visit=%s datacenter=%s cause=%s", visit.id, datacenter_id, cause)
    return visit


async def _visit(session: AsyncSession, visit_id: int, *, for_update: bool = False) -> DatacenterVisit:
    stmt = select(DatacenterVisit).where(DatacenterVisit.id == visit_id).execution_options(populate_existing=True)
    if for_update:
        stmt = stmt.with_for_update()
    visit = (await session.execute(stmt)).scalar_one_or_none()
    if visit is None:
        raise NotFound(f"visit {visit_id}")
    return visit


async def approve_visit(sm: async_sessionmaker, principal: Principal, visit_id: int, *,
                        now: datetime, decided_only: bool = False) -> DatacenterVisit:
    """A NOC lead or finance approves the visit; approving again (or concurrently) changes nothing and bills
    once. A rejected visit cannot be approved (``LedgerInput`` on ``visit``); with ``decided_only`` neither can
    one whose cause is still undetermined (``LedgerInput`` on ``cause``)."""
    require_role(principal, APPROVERS)
    async with sm.begin() as session:
        if decided_only and (await _visit(session, visit_id)).cause == Cause.UNDETERMINED:
            raise LedgerInput("cause", "the visit's cause is undetermined")
        await session.execute(update(DatacenterVisit).where(DatacenterVisit.id == visit_id,
                                                            DatacenterVisit.approved_at.is_(None),
                                                            DatacenterVisit.rejected_at.is_(None))
                              .values(approved_at=now, approved_by_id=principal.user_id))
        visit = await _visit(session, visit_id)
        if visit.rejected_at is not None:
            raise LedgerInput("visit", f"visit {visit_id} was rejected: {visit.rejection_reason}")
        await settle_visit(session, visit, now=now, posted_by_id=principal.user_id)
    return visit


async def reject_visit(sm: async_sessionmaker, principal: Principal, visit_id: int, reason: str, *,
                       now: datetime) -> DatacenterVisit:
    """Finance (or a NOC lead) refuses to bill the visit, saying why; a charge already posted is reversed.
    Rejecting again changes nothing (the first reason stays); an approved visit can still be rejected."""
    require_role(principal, APPROVERS)
    reason = (reason or "").strip()
    if not reason:
        raise LedgerInput("reason", "a rejection says why")
    if len(reason) > REASON_MAX:
        raise LedgerInput("reason", f"at most {REASON_MAX} characters")
    async with sm.begin() as session:
        visit = await _visit(session, visit_id, for_update=True)
        if visit.rejected_at is None:
            visit.rejected_at, visit.rejected_by_id, visit.rejection_reason = now, principal.user_id, reason
            await session.flush()
            log.info("visit_rejected visit=%s by=%s", visit.id, principal.user_id)
        await settle_visit(session, visit, now=now, posted_by_id=principal.user_id)
    return visit


async def set_cause(sm: async_sessionmaker, principal: Principal, visit_id: int, cause: str, *,
                    now: datetime, note: str = "") -> DatacenterVisit:
    """Decide or change a visit's cause. Technicians may do so until approval; NOC leads at any time."""
    require_role(principal, RECORDERS)
    cause = _cause(cause)
    async with sm.begin() as session:
        # The row lock orders concurrent changes of one visit, so each version is settled on its own.
        visit = await _visit(session, visit_id, for_update=True)
        if visit.approved_at is not None and principal.role not in LEADS:
            raise LedgerInput("cause", "the visit is approved; only a NOC lead may change its cause")
        if cause == Cause.CUSTOMER_SERVER and visit.customer_id is None:
            raise LedgerInput("cause", "the visit has no customer to bill for a customer-server cause")
        if cause != visit.cause:
            visit.cause, visit.cause_version = cause, visit.cause_version + 1
            if note:
                visit.notes = f"{visit.notes}\n{note}".strip()
            await session.flush()
            log.info("visit_cause_changed visit=%s cause=%s version=%s", visit.id, cause, visit.cause_version)
        await settle_visit(session, visit, now=now, posted_by_id=principal.user_id)
    return visit


async def _technician_count(session: AsyncSession, visit_id: int) -> int:
    return int((await session.execute(select(func.count()).select_from(VisitTechnician)
                                      .where(VisitTechnician.visit_id == visit_id))).scalar_one())


async def _charge_amount(session: AsyncSession, visit: DatacenterVisit) -> int:
    tariff = await tariff_at(session, visit.datacenter_id, visit.departed_at)
    if tariff is None:
        raise LedgerInput("datacenter_id", f"datacenter {visit.datacenter_id} has no travel tariff in force "
                                           f"at {visit.departed_at.isoformat()}")
    count = await _technician_count(session, visit.id)
    return visit_charge_rials(tariff.per_visit_rials, tariff.per_technician_rials, count)


async def settle_visit(session: AsyncSession, visit: DatacenterVisit, *, now: datetime,
                       posted_by_id: int | None = None) -> Billing:
    """Bring the ledger in line with the visit: charge it once if billable, reverse its charge if not."""
    decision = billing_decision(visit.cause, visit.approved_at is not None, visit.rejected_at is not None)
    charges = await live_entries(session, LedgerEntry.visit_id == visit.id)
    if decision is Billing.BILL:
        if not charges:
            amount = await _charge_amount(session, visit)
            if amount > 0:
                await post(session, key=f"visit:{visit.id}:v{visit.cause_version}", customer_id=visit.customer_id,
                           kind=EntryKind.VISIT, amount_rials=amount, now=now, visit_id=visit.id,
                           ticket_id=visit.ticket_id, incident_id=visit.incident_id, posted_by_id=posted_by_id,
                           description=f"datacenter visit {visit.id}")
        return decision
    for entry in charges:
        why = "rejected" if visit.rejected_at is not None else f"cause changed to {visit.cause}"
        await reverse(session, entry, now=now, posted_by_id=posted_by_id, reason=f"visit {visit.id} {why}")
    return decision


def visit_json(v: DatacenterVisit, technician_ids: list[int] | None = None) -> dict:
    return {"id": v.id, "datacenter_id": v.datacenter_id, "customer_id": v.customer_id,
            "incident_id": v.incident_id, "ticket_id": v.ticket_id, "departed_at": v.departed_at.isoformat(),
            "returned_at": v.returned_at.isoformat(), "cause": v.cause, "notes": v.notes,
            "approved_at": v.approved_at.isoformat() if v.approved_at else None,
            "approved_by_id": v.approved_by_id, "technician_ids": technician_ids,
            "rejected_at": v.rejected_at.isoformat() if v.rejected_at else None,
            "rejection_reason": v.rejection_reason,
            "billing": billing_decision(v.cause, v.approved_at is not None, v.rejected_at is not None).value}


@dataclass(frozen=True, slots=True)
class PendingVisit:
    """A visit awaiting approval, as finance decides on it: what it would bill (None: no tariff in force)."""

    visit: DatacenterVisit
    datacenter: str
    customer: str | None
    technicians: int
    charge_rials: int | None


async def pending_visits(sm: async_sessionmaker, principal: Principal, *, limit: int = 100) -> list[PendingVisit]:
    """Visits neither approved nor rejected whose cause is not the company's (those are never billed),
    oldest first, with the charge approving each would post."""
    require_role(principal, APPROVERS)
    async with sm() as session:
        rows = (await session.execute(
            select(DatacenterVisit, Datacenter.name, Customer.display_name, Customer.name)
            .join(Datacenter, Datacenter.id == DatacenterVisit.datacenter_id)
            .outerjoin(Customer, Customer.id == DatacenterVisit.customer_id)
            .where(DatacenterVisit.approved_at.is_(None), DatacenterVisit.rejected_at.is_(None),
                   DatacenterVisit.cause != Cause.COMPANY_NETWORK)
            .order_by(DatacenterVisit.departed_at, DatacenterVisit.id).limit(limit))).all()
        out = []
        for visit, dc_name, display, name in rows:
            count = await _technician_count(session, visit.id)
            tariff = await tariff_at(session, visit.datacenter_id, visit.departed_at)
            charge = (visit_charge_rials(tariff.per_visit_rials, tariff.per_technician_rials, count)
                      if tariff is not None else None)
            out.append(PendingVisit(visit, dc_name, display or name, count, charge))
    return out
