"""The public status page under load: concurrent callers share one render, kept for a few seconds."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from dashboards.web.status_routes import STATUS_CACHE, STATUS_STALE_S, STATUS_TTL_S
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
    # Past its time the page is still answered at once, while one render in the background replaces it.
    stale = await asyncio.gather(*(client.get("/status") for _ in range(20)))
    assert {p.status for p in stale} == {200}
    await client.app[STATUS_CACHE].settled()
    assert len(renders) == 2   # twenty callers, one background render
    assert (await client.get("/status")).status == 200 and len(renders) == 2   # the new page, fresh again
    # After a long quiet (past the stale window) the first caller waits for a render, as before.
    clock.advance(seconds=STATUS_TTL_S + STATUS_STALE_S + 1)
    assert (await client.get("/status")).status == 200 and len(renders) == 3


async def test_a_background_render_that_fails_keeps_the_old_page_and_is_tried_again(portal, db, clock):  # noqa: F811
    client = portal["client"]
    first = await (await client.get("/status")).text()
    cache = client.app[STATUS_CACHE]
    calls = []

    async def broken():
        calls.append(1)
        raise RuntimeError("database away")

    clock.advance(seconds=STATUS_TTL_S + 1)
    assert await cache.get("page", broken) is not None          # the old page, at once
    await cache.settled()
    assert calls == [1] and (await (await client.get("/status")).text()) == first
