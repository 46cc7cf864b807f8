"""Every response carries the security headers; every HTML page runs under a CSP without inline script."""

from __future__ import annotations

import re

import pytest

from dashboards.web.app import ROUTE_TABLES
from monitor.accounts import Role
from tests.test_portal import portal  # noqa: F401  (the fixture is used by name)

# Streams and Chromium-rendered documents are not pages (the PDF's headers are checked by the same hook).
SKIP = {"/api/v1/noc/events", "/portal/services/{service_id}/report.pdf"}
GET_PATHS = [e for t in ROUTE_TABLES for e in t.entries if e.method == "GET" and e.path not in SKIP]


def _fill(path: str, portal) -> str:  # noqa: F811
    values = {"service_id": portal["a"], "year": 1405, "month": 9}
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), 1)), path)


def _assert_protected(resp, body: str) -> None:
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers.get("X-Frame-Options") == "DENY"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert resp.headers.get("Referrer-Policy") == "same-origin"
    if resp.content_type == "text/html":
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), "inline script"
        assert not re.search(r"\son[a-z]+=|javascript:", body), "inline handler"
        nonces = set(re.findall(r"<style nonce=\"([^\"]+)\"", body))
        assert body.count("<style") == len(nonces) and all(f"'nonce-{n}'" in csp for n in nonces)


@pytest.mark.parametrize("entry", GET_PATHS, ids=[e.path for e in GET_PATHS])
async def test_every_get_route_answers_with_the_security_headers(portal, entry):  # noqa: F811
    who = portal["as_alice"] if Role.CUSTOMER in entry.roles else {"Authorization": f"Bearer {portal['nora']}"}
    resp = await portal["client"].get(_fill(entry.path, portal), headers={**who, "Accept": "text/html"},
                                      allow_redirects=False)
    assert resp.status < 500 or entry.path == "/readyz"   # not started in this fixture: 503
    _assert_protected(resp, await resp.text(errors="replace"))  # a PDF is bytes


@pytest.mark.parametrize("path", ["/static/app.css", "/static/noc.js", "/no-such-page", "/login?next=//x"])
async def test_static_files_and_errors_carry_the_headers_too(portal, path):  # noqa: F811
    resp = await portal["client"].get(path, allow_redirects=False)
    _assert_protected(resp, await resp.text())


async def test_the_report_page_is_not_framable_and_its_style_nonce_changes_per_response(portal):  # noqa: F811
    url = f"/portal/services/{portal['a']}/report?month=1405-08"
    first, second = [await portal["client"].get(url, headers=portal["as_alice"]) for _ in range(2)]
    assert first.status == second.status == 200
    assert first.headers["X-Frame-Options"] == "DENY"
    assert first.headers["Content-Security-Policy"] != second.headers["Content-Security-Policy"]
