"""A browser's side of the HTML forms, for tests that drive the pages with an aiohttp test client: log in
through the real login form, read a page as a browser asks for it, and take the page's CSRF token."""

from __future__ import annotations

import re

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def login(client, username: str, password: str | None = None) -> None:
    """Sign in through /login (its CSRF cookie and field) and keep the session cookie on ``client``."""
    client.session.cookie_jar.clear()
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    resp = await client.post("/login", data={"username": username, "password": password or f"{username}-pass-1",
                                             "csrf": token}, cookies={"ngb_login_csrf": token},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    client.session.cookie_jar.update_cookies({"ngb_session": resp.cookies["ngb_session"].value})


async def get_page(client, path: str) -> tuple[int, str]:
    resp = await client.get(path, headers=HTML, allow_redirects=False)
    return resp.status, await resp.text()


def csrf(html: str) -> str:
    """The page's CSRF token (its ``<meta name="csrf-token">``), as its forms send it."""
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
