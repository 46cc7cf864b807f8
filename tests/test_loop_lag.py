"""The event-loop lag monitor: a loop held on purpose shows as lag, and the series reach /metrics."""

from __future__ import annotations

import asyncio
import gc
import socket
import time

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor.accounts import Role, create_user, issue_token
from monitor.looplag import LoopLag
from monitor.settings import load_settings
from negahban.service import build_service


def _lag_above(registry: CollectorRegistry, bound: str) -> float:
    total = registry.get_sample_value("negahban_event_loop_lag_seconds_count")
    return total - registry.get_sample_value("negahban_event_loop_lag_seconds_bucket", {"le": bound})


async def test_a_loop_held_for_300_ms_is_recorded_as_lag_of_at_least_250_ms():
    registry = CollectorRegistry()
    lag = LoopLag(registry, every_s=0.02)
    lag.start()
    try:
        await asyncio.wait_for(lag.next_wake(), 5)  # the timer is armed
        assert _lag_above(registry, "0.25") == 0
        # Held right after a wake: the next one, planned 20 ms later, can only come after the 300 ms.
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)
        late = await asyncio.wait_for(lag.next_wake(), 5)
    finally:
        await lag.stop()
    assert late >= 0.25
    assert _lag_above(registry, "0.25") == 1
    assert registry.get_sample_value("negahban_event_loop_lag_max_seconds") >= 0.25
    # The maximum is per scrape window: the collection just made started a new one.
    assert registry.get_sample_value("negahban_event_loop_lag_max_seconds") == 0.0
    assert lag.wakes == registry.get_sample_value("negahban_event_loop_lag_seconds_count")


async def test_garbage_collections_are_timed_while_running_and_not_after_stop():
    registry = CollectorRegistry()
    lag = LoopLag(registry)

    def full_collections() -> float:
        return registry.get_sample_value("negahban_gc_pause_seconds_count", {"generation": "2"})

    lag.start()
    gc.collect()
    gc.collect()
    assert full_collections() == 2
    await lag.stop()
    gc.collect()
    assert full_collections() == 2
    assert lag._on_gc not in gc.callbacks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_service_measures_its_loop_and_exports_the_lag_on_metrics(tmp_path):
    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/ngb.db", listen_port=_free_port(),
                             cookie_secure=False, metrics_cache_seconds=0)
    service = await build_service(settings)
    await service.start()
    try:
        lag = service.extras["loop_lag"]
        await asyncio.wait_for(lag.next_wake(), 5)
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)
        await asyncio.wait_for(lag.next_wake(), 5)
        async with service.sessionmaker() as s, s.begin():
            scraper = await create_user(s, "prometheus", Role.NOC)
            token = await issue_token(s, scraper.id, "scrape", service.clock.now())
        url = f"http://127.0.0.1:{settings.listen_port}/metrics"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as anonymous:
                assert anonymous.status == 401
                assert "negahban_event_loop_lag" not in await anonymous.text()
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
                text = await resp.text()
    finally:
        await service.stop()
    samples = {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if not s.labels or s.labels == {"le": "+Inf"}}
    assert samples["negahban_event_loop_lag_seconds_count"] >= 2
    # The held loop is in this scrape's window (the default period is 100 ms, so at least 200 ms late).
    assert samples["negahban_event_loop_lag_max_seconds"] >= 0.2
    assert "negahban_gc_pause_seconds" in text
