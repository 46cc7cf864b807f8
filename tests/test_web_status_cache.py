"""The public status page under load: concurrent callers share one render, kept for a few seconds."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from dashboards.web.status_routes import STATUS_TTL_S
from tests.test_portal import portal  # noqa: F401  (the fixture is used by name)


def _count_status_renders(engine) -> list[str]:
    """Every query for the public services: one per render of the page, whatever the code caches."""
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, *_):
        if "WHERE services.public_status" in statement:
            seen.append(statement)
    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    return seen


async def test_fifty_concurrent_status_requests_cause_one_render(portal, db, clock):  # noqa: F811
    renders = _count_status_renders(db.engine)
    client = portal["client"]
    pages = await asyncio.gather(*(client.get("/status") for _ in range(50)))
    bodies = {await p.text() for p in pages}
    assert {p.status for p in pages} == {200} and len(bodies) == 1 and "وب آکمه" in bodies.pop()
    assert len(renders) == 1
    clock.advance(seconds=STATUS_TTL_S / 2)
    assert (await client.get("/status")).status == 200 and len(renders) == 1   # still fresh
    clock.advance(seconds=STATUS_TTL_S)
    assert (await client.get("/status")).status == 200 and len(renders) == 2   # a few seconds old at most
