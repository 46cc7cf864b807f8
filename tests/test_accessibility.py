"""Accessibility of the pages customers and visitors see: axe-core (the build shipped by the
axe-playwright-python wheel) injected by Playwright into real Chromium, on every customer page. A serious or
critical violation fails the test and names the rule, the element and axe's help."""

from __future__ import annotations

import re
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


LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
# What a customer may read in Latin letters: addresses (URLs, host names, e-mail, IPs) and the brand in them.
ADDRESS = re.compile(r"\bhttps?://\S+|\b[\w.+-]+@[\w-]+(\.[\w-]+)+|\b([\w-]+\.)+[A-Za-z]{2,}\b|\b\d{1,3}(\.\d{1,3}){3}\b")


def _latin_words(text: str, own_username: str) -> list[str]:
    return sorted(set(LATIN_WORD.findall(ADDRESS.sub(" ", text))) - {own_username})


async def test_a_customer_s_pages_contain_no_latin_words_other_than_addresses(site, browser):  # noqa: F811
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    base = site["base"]
    await _login(page, base, "alice", "alice-pass-1")
    await page.wait_for_url(f"{base}/portal")
    found: dict[str, list[str]] = {}
    for path in ("/portal", f"/portal/services/{site['a']}", "/portal/tickets", "/portal/tickets/new", "/status"):
        await page.goto(base + path)
        found[path] = _latin_words(await page.inner_text("body"), "alice")
    await page.goto(f"{base}/portal/services/{site['a']}")
    await page.click("table.months a >> nth=0")
    await page.wait_for_selector("main.report")
    found["report"] = _latin_words(await page.inner_text("body"), "alice")
    assert {p: w for p, w in found.items() if w} == {}
