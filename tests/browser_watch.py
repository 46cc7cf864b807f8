"""What a page must not do in a real browser, watched through Playwright: write an error to the console, throw
an uncaught error, or load a same-origin sub-resource (script, style, font, image, fetch) that fails or
answers 4xx/5xx. Attach one :class:`PageWatch` to a browser context; every page opened in it is watched, and
``problems`` lists what went wrong, each with the page's address."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_AWAY_FROM_LOGIN = re.compile(r"^(?!.*/login).*$")

__all__ = ["PageWatch", "browser_login", "start_site"]


class PageWatch:
    def __init__(self, context, base: str) -> None:
        self.origin = urlsplit(base).netloc
        self.problems: list[str] = []
        # Documents that answered 400 on purpose: a refused form is the page again with status 400, and
        # Chromium logs "Failed to load resource" for it; that line is the status, not a fault of the page.
        self._refused_documents: set[str] = set()
        context.on("page", self.watch)
        for page in context.pages:
            self.watch(page)

    def _same_origin(self, url: str) -> bool:
        return urlsplit(url).netloc == self.origin

    def watch(self, page) -> None:
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.problems.append(f"page error on {page.url}: {e}"))
        page.on("requestfailed", lambda r: self._failed(page, r))
        page.on("response", self._response)

    def _console(self, page, message) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if where in self._refused_documents and message.text.startswith("Failed to load resource"):
            return
        self.problems.append(f"console error on {page.url}: {message.text}")

    def _failed(self, page, request) -> None:
        # Leaving a page aborts what it still loads (the NOC screen's event stream): the browser's doing, not
        # a fault of the server.
        if self._same_origin(request.url) and request.failure != "net::ERR_ABORTED":
            self.problems.append(f"request failed on {page.url}: {request.url} {request.failure}")

    def _response(self, response) -> None:
        request = response.request
        # The document itself may answer 400 on purpose (a refused form shown again); its sub-resources may not.
        if response.status == 400 and request.resource_type == "document":
            self._refused_documents.add(response.url)
        if response.status >= 400 and self._same_origin(response.url) and request.resource_type != "document":
            self.problems.append(f"{response.status} for {request.resource_type} {response.url}")


async def browser_login(page, base: str, username: str, password: str, landing: str | None = None) -> None:
    """Log in through the login form as a person would; wait for ``landing`` (a path), or for any page but the
    login form when it is not given."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{landing}" if landing else _AWAY_FROM_LOGIN)


async def start_site(sessionmaker, clock):
    """The web app on an ephemeral loopback port for a browser story: (server, base URL). Close the server."""
    from aiohttp.test_utils import TestServer
    from prometheus_client import CollectorRegistry

    from dashboards.web.app import build_app
    from dashboards.web.deps import WebDeps

    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")
