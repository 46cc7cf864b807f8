"""The service freezes its long-lived objects (``gc.freeze``) at start and after a reload that changed the
catalog, so full collections stop walking them; a monitor removed at a reload is still freed, even when its
config is caught in a reference cycle (what a frozen cycle would otherwise keep forever)."""

from __future__ import annotations

import gc
import socket
import weakref

from sqlalchemy import update

from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import Monitor
from monitor.settings import load_settings
from negahban.service import build_service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frozen(obj) -> bool:
    """Tracked by the collector but in none of its generations: in the permanent one (``gc.freeze``)."""
    return gc.is_tracked(obj) and not any(o is obj for o in gc.get_objects())


def _inventory(names: list[str], port: int):
    rows = "\n".join(f"  - {{name: {n}, kind: tcp, target: \"127.0.0.1:{port}\", interval: 60}}" for n in names)
    return parse_inventory(f"monitors:\n{rows}\n")


async def test_start_and_a_changing_reload_freeze_and_a_removed_monitor_is_still_freed(db, clock):
    port = _free_port()  # nothing listens: a check is a quick "refused"
    inv, specs = _inventory(["kept", "removed", "cyclic"], port)
    await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    gc.unfreeze()
    thresholds = gc.get_threshold()
    service = await build_service(load_settings({}, database_url=db.url, listen_port=_free_port(),
                                                cookie_secure=False), clock=clock)
    await service.start()
    try:
        by_name = {c.name: c for c in service.scheduler.catalog.values()}
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[2] == 100  # and full collections ten times rarer
        assert _frozen(by_name["kept"]) and _frozen(by_name["removed"])
        # Something (a traceback, a closure) ties a config into a cycle: reference counting alone cannot free it.
        by_name["cyclic"].labels["_cycle"] = by_name["cyclic"]
        gone = {n: weakref.ref(by_name[n]) for n in ("removed", "cyclic")}
        kept_id = by_name["kept"].id
        del by_name
        await service.scheduler.wait_idle()

        inv, specs = _inventory(["kept", "removed", "cyclic", "added"], port)
        await apply_inventory(db.sessionmaker, inv, specs, clock.now())
        async with db.sessionmaker() as s, s.begin():
            await s.execute(update(Monitor).where(Monitor.name.in_(["removed", "cyclic"])).values(enabled=False))
        assert await service.scheduler.reload()
        catalog = service.scheduler.catalog
        assert {c.name for c in catalog.values()} == {"kept", "added"}
        added = next(c for c in catalog.values() if c.name == "added")
        assert _frozen(added) and _frozen(catalog[kept_id])  # the reload froze what it built
        await service.scheduler.wait_idle()
        gc.collect()
        assert gone["removed"]() is None
        assert gone["cyclic"]() is None  # the reload unfroze and collected before freezing again
        # A reload that finds nothing changed does not freeze (nor collect) again.
        made_after = [object()]
        assert not await service.scheduler.reload()
        assert not _frozen(made_after)
    finally:
        await service.stop()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds  # stopping undoes both
