"""Public updates: what NOC staff tell everyone about an incident, in Persian, with an optional status word.

An update is refused unless its text is Persian in Persian script (rule 1's judgement, ``monitor.persian``):
customers read it as written. Posting one also queues its notice to the incident's subscribers, in the
same transaction (``incidents.statuspage.fanout``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.errors import IncidentNotFound
from incidents.models import Incident
from incidents.statuspage.fanout import announce_update
from incidents.statuspage.models import PublicUpdate, UpdateStatus
from monitor.accounts import Principal, Role, require_role
from monitor.errors import InvalidInput
from monitor.persian import judge, normalise

__all__ = ["PUBLISHERS", "STATUS_FA", "MAX_UPDATE_CHARS", "parse_status", "post_update", "updates_of",
           "updates_for"]

# Who may speak for the company on the status page.
PUBLISHERS = frozenset({Role.ADMIN, Role.NOC})
STATUS_FA = {UpdateStatus.INVESTIGATING: "در حال بررسی", UpdateStatus.IDENTIFIED: "شناسایی شد",
             UpdateStatus.MONITORING: "در حال پایش", UpdateStatus.RESOLVED: "برطرف شد"}
MAX_UPDATE_CHARS = 5000
_FROM_WORD = {**{v: k for k, v in STATUS_FA.items()}, **{k.value: k for k in UpdateStatus}}


def parse_status(word: str | None) -> UpdateStatus | None:
    """The status of a Persian word (``در حال پایش``) or its English key (``monitoring``); None for none."""
    if word is None or not word.strip():
        return None
    found = _FROM_WORD.get(normalise(word.strip()))
    if found is None:
        raise InvalidInput("status", f"{word!r} is not one of: {', '.join(STATUS_FA.values())}")
    return found


def _checked_text(text: str) -> str:
    text = (text or "").strip()
    if len(text) > MAX_UPDATE_CHARS:
        raise InvalidInput("text", f"longer than {MAX_UPDATE_CHARS} characters")
    verdict = judge(text)
    if verdict.language != "persian":
        raise InvalidInput("text", f"a public update must be Persian in Persian script (read as {verdict.language})")
    return normalise(text)


async def post_update(sessionmaker: async_sessionmaker, principal: Principal, incident_id: int, text: str,
                      status: str | None, now: datetime) -> PublicUpdate:
    """Add a public update and queue its notices; refused whole (nothing written) on bad text or status."""
    require_role(principal, PUBLISHERS)
    clean, word = _checked_text(text), parse_status(status)
    async with sessionmaker() as session, session.begin():
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFound(f"incident {incident_id} does not exist")
        update = PublicUpdate(incident_id=incident.id, at=now, status=word.value if word else None, text=clean,
                              user_id=principal.user_id)
        session.add(update)
        await session.flush()
        await announce_update(session, incident, update, now)
        return update


async def updates_of(session: AsyncSession, incident_ids: list[int]) -> dict[int, list[PublicUpdate]]:
    """Each incident's public updates, newest first."""
    out: dict[int, list[PublicUpdate]] = {i: [] for i in incident_ids}
    if incident_ids:
        rows = await session.execute(select(PublicUpdate).where(PublicUpdate.incident_id.in_(incident_ids))
                                     .order_by(PublicUpdate.at.desc(), PublicUpdate.id.desc()))
        for u in rows.scalars():
            out[u.incident_id].append(u)
    return out


async def updates_for(sessionmaker: async_sessionmaker, incident_id: int) -> list[PublicUpdate]:
    """One incident's public updates, newest first (public: anyone may read what was published)."""
    async with sessionmaker() as session:
        if await session.get(Incident, incident_id) is None:
            raise IncidentNotFound(f"incident {incident_id} does not exist")
        return (await updates_of(session, [incident_id]))[incident_id]
