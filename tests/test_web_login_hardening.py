"""Login against a hostile user: redirect targets after login, and the throttle under parallel attempts."""

from __future__ import annotations

import pytest

from tests.test_web_login import _login, site  # noqa: F401  (the fixture is used by name)

OFFSITE = ["//evil.example/", "/\\evil.example/", "\\\\evil.example", "/\t/evil.example/", "/%09/evil.example/",
           "/\n/evil.example", "/\r\n/evil.example", " //evil.example", "/%2F/evil.example", "/%2f%2fevil.example",
           "/%5Cevil.example", "/%5c/evil.example", "https://evil.example/", "http:evil.example",
           "javascript:alert(1)", "data:text/html,x", "evil.example", "///evil.example", "/\x00/evil.example",
           "/\u3000/evil.example", "//\t/evil.example", ""]


@pytest.mark.parametrize("next_path", OFFSITE)
async def test_login_never_redirects_off_the_site(site, next_path):  # noqa: F811
    client, _ = site
    resp = await _login(client, "nora", "nora-pass-1", next_path)
    assert resp.status == 303 and resp.headers["Location"] == "/noc"


@pytest.mark.parametrize("next_path", ["/portal", "/portal?x=1", "/portal/tickets/3?lang=en&q=a%2Fb",
                                       "/noc#top", "/status"])
async def test_login_follows_next_to_a_local_path(site, next_path):  # noqa: F811
    client, _ = site
    resp = await _login(client, "nora", "nora-pass-1", next_path)
    assert resp.headers["Location"] == next_path


async def test_the_login_form_drops_an_offsite_next_from_the_query(site):  # noqa: F811
    client, _ = site
    html = await (await client.get("/login?next=/%09/evil.example/")).text()
    assert 'name="next" value=""' in html
