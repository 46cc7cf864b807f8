"""The NOC wall at 10,000 monitors in real Chromium: the problems drawn as tiles, everything else counted,
no console error, and a screenshot (test-artifacts/noc-10000.png). Speed is measured in bench/noc_wall.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect
from prometheus_client import CollectorRegistry

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.models import State
from probes.base import Outcome, ProbeResult
from tests.noc_scale import LiveState, populate

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


async def test_the_noc_wall_at_10000_monitors_draws_the_problems_and_counts_the_rest(db, clock, chromium_path):
    from playwright.async_api import async_playwright

    clock.set(NOW)
    world = await populate(db.sessionmaker, NOW)
    live = world["live"]
    runner = type("LiveStates", (), {"latest": live})()
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   services={"runner": runner})
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    problems = len(world["down"]) + len(world["degraded"])
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "nora")
            await page.fill("input[name=password]", "nora-pass-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/noc")
            await expect(page.locator("#live")).to_have_attribute("data-live", "on", timeout=15_000)
            tiles = page.locator("#problems .tile")
            await expect(tiles).to_have_count(problems)
            states = await tiles.evaluate_all("ts => ts.map(t => t.dataset.state)")
            assert states == ["DOWN"] * len(world["down"]) + ["DEGRADED"] * len(world["degraded"])
            await expect(page.locator('#summary [data-state="UP"]')).to_have_attribute(
                "data-count", str(len(world["up"])))
            await expect(page.locator("#groups .group")).to_have_count(3)  # one line per datacenter
            await expect(page.locator(".tile.s-UP")).to_have_count(0)
            first = page.locator(f'#problems .tile[data-id="{world["down"][0]}"]')
            await expect(first.locator("a.tile-incident")).to_have_attribute("href", "/incidents/1")
            await expect(first.locator(".why")).to_contain_text("HTTP 503")
            # A new outage arrives while the wall is open: its tile comes first among the DOWN ones.
            flipped = world["up"][1234]
            live[flipped] = LiveState(State.DOWN, ProbeResult(Outcome.DOWN, "timeout", "no answer in 10 s", 10.0))
            clock.set(NOW + timedelta(seconds=5))
            deps.services["noc_feed"].poke()
            await expect(tiles.first).to_have_attribute("data-id", str(flipped), timeout=15_000)
            await expect(tiles).to_have_count(problems + 1)
            await page.screenshot(path=str(ARTIFACTS / "noc-10000.png"))
            await page.screenshot(path=str(ARTIFACTS / f"noc-10000-{db.kind}-full.png"), full_page=True)
            await browser.close()
    finally:
        await server.close()
    assert errors == [], errors
