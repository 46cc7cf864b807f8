"""The public status page and its Atom feed: the services customers opted in (grouped, with 90-day bars),
the overall banner, incidents with the updates staff published, planned maintenance, and the other ways to
reach support while the portal is down (rule 18). Public, so it shows display names and states only.

What is shown is read by ``dashboards.status`` (plain data); here it is rendered, and the rendering is
shared: the body once for everyone every few seconds, the feed's entries likewise."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from dashboards.status import FeedEntry, feed_entries, status_view
from dashboards.web.cache import RenderCache
from dashboards.web.deps import DEPS
from dashboards.web.fa import STATE_FA
from dashboards.web.portal_sections import SEVERITY_FA
from dashboards.web.routing import HTML, JSON, RouteTable
from dashboards.web.templating import gettext as _
from dashboards.web.templating import render, render_string
from incidents.statuspage.notices import public_name
from incidents.statuspage.updates import STATUS_FA
from monitor.models import Service

__all__ = ["routes", "STATUS_CACHE", "status_cache", "status_response", "atom_feed", "ATOM"]

routes = RouteTable()
ATOM = "application/atom+xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
_UPDATE_WORDS = {k.value: v for k, v in STATUS_FA.items()}

# The page costs hundreds of milliseconds at a few dozen services and is public: under load every caller
# shares one render, at most STATUS_TTL_S seconds old; for STATUS_STALE_S after that the old page is still
# answered at once while one render in the background replaces it, so no visitor waits on a render.
STATUS_TTL_S = 5.0
STATUS_STALE_S = 60.0
STATUS_CACHE = web.AppKey("status_cache", RenderCache)


def status_cache(clock) -> RenderCache:
    # Four keys: the page's body, the whole page as sent on a GET, the feed and the components of the webhook
    # form (never anything a caller chooses, such as its Host, so that no caller can push the page out).
    return RenderCache(clock.monotonic, ttl_s=STATUS_TTL_S, max_entries=4, stale_s=STATUS_STALE_S)


def _words() -> dict[str, Mapping[str, str]]:
    return {"state_words": STATE_FA, "severity_words": SEVERITY_FA, "update_words": _UPDATE_WORDS}


async def _status_body(app: web.Application) -> str:
    deps = app[DEPS]
    view = await status_view(deps.sessionmaker, deps.clock.now())
    ctx: dict[str, Any] = {"view": view, "channels": deps.support_channels, "company": deps.company, **_words()}
    # Visitors always read Persian (``templating.language_of``), so one render serves them all; in a thread,
    # as the view's arithmetic, so the loop answers the cached page meanwhile.
    return await asyncio.to_thread(render_string, "_status_body.html", ctx, lang="fa",
                                   env=aiohttp_jinja2.get_env(app))


async def _components(app: web.Application) -> list[tuple[int, str]]:
    """The services a webhook may follow: those on the status page, by their public names."""
    async with app[DEPS].sessionmaker() as s:
        rows = (await s.execute(select(Service.id, Service.display_name).where(Service.public_status.is_(True))
                                .order_by(Service.display_name, Service.id))).all()
    return [(sid, public_name(name)) for sid, name in rows]


async def status_response(request: web.Request, *, email: str = "", error: str = "", field: str | None = None,
                          done: bool = False, status: int = 200, webhook: dict[str, Any] | None = None
                          ) -> web.Response:
    """The status page (its shared body) with the subscription form, as given. The page carries no token
    and no cookie: on a GET it is the same for every visitor (``dashboards.web.subscribe_routes`` says why
    the form needs none). It does not reload itself: a timed refresh is an accessibility failure (WCAG 2.2.1,
    axe's ``meta-refresh``); its "last updated" line says how old it is."""
    body = await request.app[STATUS_CACHE].get("status", lambda: _status_body(request.app))
    hooks = "status_webhook_allow" in request.app[DEPS].services  # offered when deliveries can be signed
    components = await request.app[STATUS_CACHE].get("components", lambda: _components(request.app)) \
        if hooks else []
    return render(request, "status.html", {"body": body, "form_email": email, "form_error": error,
                                           "form_field": field, "form_done": done, "webhooks": hooks,
                                           "components": components,
                                           "hook": {"url": "", "chosen": [], "error": "", "field": "",
                                                    "done": False, **(webhook or {})}},
                  status=status, title="وضعیت سرویس‌ها")


@dataclass(frozen=True, slots=True)
class _Page:
    """The whole page of a GET, encoded once, and gzipped once: at 200 services it is over a megabyte of
    HTML that compresses twentyfold, and a visitor on a phone should not wait for the rest."""

    raw: bytes
    gz: bytes
    content_type: str


async def _whole_page(request: web.Request) -> _Page:
    resp = await status_response(request)
    raw = bytes(resp.body or b"")
    # zlib lets go of the GIL: compressing a megabyte in a thread costs the loop nothing.
    gz = await asyncio.to_thread(gzip.compress, raw, compresslevel=6, mtime=0)
    return _Page(raw, gz, resp.headers["Content-Type"])


@routes.get("/status", public=True, produces=HTML)
async def status_page(request: web.Request) -> web.Response:
    """The public status page: the overall banner, opted-in services with 90-day bars, current and recent
    incidents with public updates, planned maintenance, other ways to reach support, and the form to
    subscribe by e-mail."""
    # The same bytes for everyone (a public page names no user and carries no token; see ``render``).
    page = await request.app[STATUS_CACHE].get("page", lambda: _whole_page(request))
    resp = web.Response(headers={"Content-Type": page.content_type, "Vary": "Accept-Encoding"})
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        resp.body, resp.headers["Content-Encoding"] = page.gz, "gzip"
    else:
        resp.body = page.raw
    return resp


def _rfc3339(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def atom_feed(entries: list[FeedEntry], base: str, now: datetime, company: str = "") -> bytes:
    """Pure: the Atom document (RFC 4287) of ``entries`` (newest first); ``base`` is the site's address,
    ``company`` its author ("" for the product's name). Built with ElementTree, which escapes every text and
    attribute."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "fa"})
    sub(feed, "id", f"{base}/status/feed.atom")
    sub(feed, "title", _("Service status updates"))
    sub(feed, "updated", _rfc3339(entries[0].at if entries else now))
    sub(feed, "link", rel="self", type=ATOM, href=f"{base}/status/feed.atom")
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/status")
    author = sub(feed, "author")
    sub(author, "name", company or _("Negahban"))
    for e in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{base}/status/updates/{e.id}")
        word = _UPDATE_WORDS.get(e.status or "", _("Update"))
        sub(entry, "title", f"{SEVERITY_FA.get(e.severity, _('Incident'))}: {word}")
        sub(entry, "updated", _rfc3339(e.at))
        sub(entry, "published", _rfc3339(e.at))
        sub(entry, "link", rel="alternate", type="text/html", href=f"{base}/status#incident-{e.incident_id}")
        sub(entry, "content", e.text, type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


@dataclass(slots=True)
class _Feed:
    entries: list[FeedEntry]
    documents: dict[str, bytes] = field(default_factory=dict)  # by the site's address, a few at most


@routes.get("/status/feed.atom", public=True, produces=ATOM)
async def status_feed(request: web.Request) -> web.Response:
    """The public updates of the status page as an Atom feed, newest first."""
    deps = request.app[DEPS]
    feed = await request.app[STATUS_CACHE].get("feed", lambda: _load_feed(deps.sessionmaker))
    base = deps.public_url or f"{request.scheme}://{request.host}"
    doc = feed.documents.get(base)
    if doc is None:
        if len(feed.documents) >= 4:   # a caller's Host header is no reason to keep many
            feed.documents.clear()
        doc = feed.documents[base] = atom_feed(feed.entries, base, deps.clock.now(), deps.company.name)
    return web.Response(body=doc, content_type=ATOM, charset="utf-8")


async def _load_feed(sm) -> _Feed:
    return _Feed(await feed_entries(sm))


# An SVG logo is an image, never a document: opened on its own it runs nothing and loads nothing.
LOGO_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
LOGO_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")


@routes.get("/status/logo", public=True, produces="image/*",
            errors={404: ("no logo is set (NEGAHBAN_COMPANY_LOGO)", (JSON, HTML))})
async def company_logo(request: web.Request) -> web.Response:
    """The company's logo (``NEGAHBAN_COMPANY_LOGO``), with the type its first bytes told at start-up; its
    address names its content (``?v=``), so it may be cached for a long time."""
    company = request.app[DEPS].company
    if not company.logo or company.logo_type not in LOGO_TYPES:
        raise web.HTTPNotFound(text="no logo")
    return web.Response(body=company.logo, headers={
        "Content-Type": company.logo_type, "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": LOGO_CSP, "Content-Disposition": "inline"})
