"""The NOC wall at 10,000 monitors: first-screen latency and flip-to-screen latency, in real Chromium.

* HTTP first screen: time until the full HTML of ``/noc`` is read (the first request reads the inventory
  from the database; later ones hit the 10 s inventory cache), and of ``/noc/wall`` (the fragment a live
  screen fetches after each change); the JSON list of the old screen (``/api/v1/noc/monitors``, first page)
  is measured alongside as the peer.
* Browser first screen: Chromium's own navigation timing for ``/noc`` (response end, first contentful paint,
  DOMContentLoaded, load) and the wall time of ``page.goto`` until ``load``.
* Flip to screen: with the wall open, a monitor's state changes in the runner's memory and the feed is
  nudged as the runner's ``on_flip`` does (coalesced, at most one poke per 0.2 s); the time until its tile is
  in the page (Playwright waiting on the selector, so an upper bound by its polling), over ``--flips`` flips.
  Each flipped monitor is set back to UP (and its tile awaited gone) before the next.

The data is tests/noc_scale.py's: 10,000 monitors, 250 customers, 3 datacenters, 100 switches, 20 DOWN and 12
DEGRADED with 20 open incidents. The app and Playwright share this process's event loop (Chromium is its own
process), as a NOC screen and one web node would.

Usage: ``python bench/noc_wall.py [DATABASE_URL] [--flips 50] [--rounds 20]`` (default: a scratch SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from aiohttp import ClientSession  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from all_models import load_all  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from sqlalchemy import select  # noqa: E402

from dashboards.pdf import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from dashboards.web.app import build_app  # noqa: E402
from dashboards.web.deps import WebDeps  # noqa: E402
from monitor.accounts import User, issue_token  # noqa: E402
from monitor.clock import ManualClock  # noqa: E402
from monitor.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from monitor.models import State  # noqa: E402
from probes.base import Outcome, ProbeResult  # noqa: E402
from tests.noc_scale import LiveState, populate  # noqa: E402

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
NAV_TIMING = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  const fcp = performance.getEntriesByType("paint").find(p => p.name === "first-contentful-paint");
  return {response_end: n.responseEnd, fcp: fcp ? fcp.startTime : null, dcl: n.domContentLoadedEventEnd,
          load: n.loadEventEnd, bytes: n.transferSize};
}"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def fmt(name: str, values: list[float], target: float | None = None) -> str:
    tail = f" (target <= {target:g})" if target else ""
    if not values:  # Chromium reports no first paint for a load it served from an unchanged frame
        return f"{name} n=0{tail}"
    return (f"{name} n={len(values)} first={values[0]:.1f} p50={statistics.median(values):.1f} "
            f"p99={pct(values, 99):.1f} max={max(values):.1f}{tail}")


async def timed_get(http: ClientSession, url: str, headers: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        async with http.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, (url, resp.status)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def browser_figures(base: str, world: dict, deps: WebDeps, rounds: int, flips: int) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", "nora")
        await page.fill("input[name=password]", "nora-pass-1")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/noc")
        goto, nav = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            await page.goto(f"{base}/noc", wait_until="load")
            goto.append((time.perf_counter() - t) * 1000)
            nav.append(await page.evaluate(NAV_TIMING))
        print(f"html_bytes={nav[-1]['bytes']}")
        print(fmt("browser_goto_to_load_ms", goto, 1000))
        for key in ("response_end", "fcp", "dcl", "load"):
            print(fmt(f"browser_{key}_ms", [n[key] for n in nav if n[key] is not None]))
        await expect(page.locator("#live")).to_have_attribute("data-live", "on", timeout=15_000)
        live, feed, up = world["live"], deps.services["noc_feed"], world["up"]
        times = []
        for k in range(flips):
            mid = up[(k * 197) % len(up)]
            t = time.perf_counter()
            live[mid] = LiveState(State.DOWN, ProbeResult(Outcome.DOWN, "timeout", "no answer", 10.0))
            feed.nudge()
            await page.wait_for_selector(f'#problems .tile[data-id="{mid}"]', timeout=15_000)
            times.append((time.perf_counter() - t) * 1000)
            live[mid] = LiveState(State.UP, ProbeResult(Outcome.UP, "ok", "", 0.01))
            feed.nudge()
            await page.wait_for_selector(f'#problems .tile[data-id="{mid}"]', state="detached", timeout=15_000)
        print(fmt("flip_to_screen_ms", times, 1000) + " (includes the feed's 200 ms coalescing)")
        await browser.close()


async def main(url: str | None, rounds: int, flips: int) -> None:
    load_all()
    print("load average before " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite+aiosqlite:///{tmp}/bench.db")
        await upgrade(engine)
        sm = make_sessionmaker(engine)
        world = await populate(sm, NOW)
        async with sm.begin() as s:
            uid = (await s.execute(select(User.id).where(User.username == "nora"))).scalar_one()
            token = await issue_token(s, uid, "bench", NOW)
        runner = type("R", (), {"latest": world["live"]})()
        deps = WebDeps(sessionmaker=sm, clock=ManualClock(NOW), registry=CollectorRegistry(), cookie_secure=False,
                       services={"runner": runner})
        server = TestServer(build_app(deps), host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
        print(f"database={engine.dialect.name} monitors={world['n']} problems="
              f"{len(world['down']) + len(world['degraded'])}")
        try:
            async with ClientSession() as http:
                print(fmt("http_noc_full_html_ms", await timed_get(http, f"{base}/noc", headers, rounds), 1000)
                      + " (first = inventory read from the database)")
                print(fmt("http_noc_wall_fragment_ms", await timed_get(http, f"{base}/noc/wall", headers, rounds)))
                print(fmt("http_noc_search_ms", await timed_get(http, f"{base}/noc?q=mon-0999", headers, rounds)))
                print(fmt("peer_api_first_page_ms", await timed_get(
                    http, f"{base}/api/v1/noc/monitors?page=1&per_page=200", headers, rounds)))
            await browser_figures(base, world, deps, rounds, flips)
        finally:
            await server.close()
            await engine.dispose()
    print("load average after " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--flips", type=int, default=50)
    a = ap.parse_args()
    asyncio.run(main(a.url, a.rounds, a.flips))
