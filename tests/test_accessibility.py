"""Accessibility of the pages customers and visitors see: axe-core (the build shipped by the
axe-playwright-python wheel) injected by Playwright into real Chromium, on every customer page. A serious or
critical violation fails the test and names the rule, the element and axe's help."""

from __future__ import annotations

from pathlib import Path

import axe_playwright_python
import pytest

from tests.test_browser import _login, browser, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration
AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"
BLOCKING = {"serious", "critical"}


async def _violations(page) -> list[str]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v.get("impact") in BLOCKING]


async def test_the_customer_and_public_pages_have_no_serious_accessibility_violation(site, browser):  # noqa: F811
    # The pages' CSP refuses injected scripts, rightly; the audit's own context lifts it for axe alone.
    context = await browser.browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    found: dict[str, list[str]] = {}
    base = site["base"]
    for path in ("/login", "/status"):
        await page.goto(base + path)
        found[path] = await _violations(page)
    # The audit can fail: an image without a text alternative is a critical violation it must see.
    await page.evaluate("() => document.body.appendChild(document.createElement('img'))")
    assert any(v.startswith("image-alt") for v in await _violations(page))
    await _login(page, base, "alice", "alice-pass-1")
    await page.wait_for_url(f"{base}/portal")
    for path in ("/portal", f"/portal/services/{site['a']}", "/portal/tickets", "/portal/tickets/new"):
        resp = await page.goto(base + path)
        assert resp.status == 200, path
        found[path] = await _violations(page)
    await page.goto(f"{base}/portal/services/{site['a']}")
    await page.click("table.months a >> nth=0")
    await page.wait_for_selector("main.report")
    found["report"] = await _violations(page)
    await context.close()
    assert {p: v for p, v in found.items() if v} == {}

