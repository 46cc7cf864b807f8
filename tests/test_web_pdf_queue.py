"""PDF reports under load: a few real Chromium processes at once, a short queue then 503, finished months
rendered once."""

from __future__ import annotations

import asyncio
import os

import psutil

from dashboards.web.deps import DEPS
from tests.test_portal import portal  # noqa: F401  (the fixture is used by name)

CURRENT, FINISHED = "1405-09", "1405-08"   # the portal fixture's clock stands in Azar 1405


def _chromium_browsers() -> int:
    """Chromium browsers this process started and that still run (each forks helpers of its own)."""
    count = 0
    for child in psutil.Process(os.getpid()).children():
        try:
            alive, cmd = child.status() != psutil.STATUS_ZOMBIE, child.cmdline()
        except psutil.Error:
            continue
        count += alive and any("--print-to-pdf" in a for a in cmd)
    return count


async def _watch(stop: asyncio.Event, seen: list[int]) -> None:
    while not stop.is_set():  # bounded by the requests it watches; each look is a /proc scan
        seen.append(await asyncio.to_thread(_chromium_browsers))


async def _get_pdfs(portal, month, n):  # noqa: F811
    url = f"/portal/services/{portal['a']}/report.pdf?month={month}"
    stop, seen = asyncio.Event(), []
    watcher = asyncio.ensure_future(_watch(stop, seen))
    answers = await asyncio.gather(*(portal["client"].get(url, headers=portal["as_alice"]) for _ in range(n)))
    bodies = [await a.read() for a in answers]
    stop.set()
    await watcher
    return answers, bodies, max(seen, default=0)


async def test_eight_concurrent_pdfs_run_at_most_two_chromiums_and_the_rest_wait_or_get_503(portal):  # noqa: F811
    renderer = portal["client"].server.app[DEPS].pdf
    answers, bodies, most_at_once = await _get_pdfs(portal, CURRENT, 8)
    ok = [b for a, b in zip(answers, bodies, strict=True) if a.status == 200]
    busy = [a for a in answers if a.status == 503]
    assert len(ok) + len(busy) == 8 and len(ok) >= renderer.concurrency
    assert all(b.startswith(b"%PDF") for b in ok)
    assert all(int(a.headers["Retry-After"]) > 0 for a in busy)
    assert len(ok) <= renderer.concurrency + renderer.queue
    assert most_at_once <= renderer.concurrency and renderer.peak <= renderer.concurrency
    assert renderer.renders == len(ok)          # the current month is never served from the cache


async def test_a_finished_month_is_rendered_once_and_then_served_from_the_cache(portal):  # noqa: F811
    renderer = portal["client"].server.app[DEPS].pdf
    first, bodies, _ = await _get_pdfs(portal, FINISHED, 4)   # at once: they share one render
    assert {a.status for a in first} == {200} and renderer.renders == 1
    again, more, _ = await _get_pdfs(portal, FINISHED, 1)
    assert again[0].status == 200 and more[0] == bodies[0] and renderer.renders == 1
    other = await portal["client"].get(f"/portal/services/{portal['b']}/report.pdf?month={FINISHED}",
                                       headers=portal["as_alice"])
    assert other.status == 404                  # the cache never skips the access check
