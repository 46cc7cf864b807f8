"""Rule 14: urgent / important / normal, checked against what monitoring sees.

Financial and sales tickets (any department with a ``forced_priority``) are normal whatever the customer
chose. A customer's *urgent* ticket is flagged ``urgent_but_service_up`` for staff when every enabled
monitor of the service (directly, or through one of its servers) is UP and the service has no open
incident; staff may then lower the priority. With no monitor, or any monitor not UP, nothing is flagged:
monitoring cannot contradict the customer.

Incidents do not exist yet: "has an open incident" is a parameter, an async callable
``(session, service_id) -> bool``. :func:`no_incident_known` is the default until the incidents issue
passes its own query (``incidents`` open for the service).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.models import Monitor, MonitorState, Server, State
from tickets.departments import DepartmentRule
from tickets.errors import Refusal
from tickets.models import Priority

__all__ = ["HasOpenIncident", "no_incident_known", "service_seen_up", "choose_priority", "urgent_flag",
           "URGENT_BUT_UP", "RANK"]

HasOpenIncident = Callable[[AsyncSession, int], Awaitable[bool]]
URGENT_BUT_UP = "urgent_but_service_up"
RANK = {Priority.NORMAL: 0, Priority.IMPORTANT: 1, Priority.URGENT: 2}


async def no_incident_known(session: AsyncSession, service_id: int) -> bool:
    return False


async def service_seen_up(session: AsyncSession, service_id: int) -> bool:
    servers = select(Server.id).where(Server.service_id == service_id)
    stmt = (select(MonitorState.state).join(Monitor, Monitor.id == MonitorState.monitor_id)
            .where(Monitor.enabled.is_(True),
                   or_(Monitor.service_id == service_id, Monitor.server_id.in_(servers))))
    states = (await session.execute(stmt)).scalars().all()
    return bool(states) and all(s == State.UP for s in states)


def choose_priority(requested: str | None, rule: DepartmentRule) -> str:
    """The priority a new ticket gets: the department's forced one, else what the customer chose."""
    if rule.forced_priority:
        return rule.forced_priority
    try:
        return Priority(requested or Priority.NORMAL).value
    except ValueError:
        raise Refusal("invalid_priority", "priority",
                      "اولویت باید یکی از «ضروری»، «مهم» یا «معمولی» باشد.") from None


async def urgent_flag(session: AsyncSession, priority: str, service_id: int | None,
                      has_open_incident: HasOpenIncident) -> str | None:
    if priority != Priority.URGENT or service_id is None:
        return None
    if await service_seen_up(session, service_id) and not await has_open_incident(session, service_id):
        return URGENT_BUT_UP
    return None
