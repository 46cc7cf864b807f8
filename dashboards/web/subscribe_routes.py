"""Subscribing to the status page by e-mail, for visitors (no login): the form's POST, the confirm link and the
one-click unsubscribe link. Thin: parse, limit, call ``incidents.statuspage.subscriptions``, answer in Persian.

The form carries no CSRF token, unlike the login form: its only effect is a confirmation mail, which anyone
may cause by filling the form themselves, so a forged cross-site post gains nothing; the double opt-in and
the rate limits are what protect an address. A token would also make ``/status`` a page per visitor instead of
one shared render. A post whose ``Origin`` names another site is refused all the same (403).

What a visitor can learn: nothing about who is subscribed. Every valid address gets the same page whatever
its history; the rate limits count every request, so a 429 says no more than a 200.

The links of the mails follow one rule: a GET only shows where the link stands and a button, the button's POST
acts (mail scanners and link previews open every link). Those POSTs need no CSRF token: the token in the path
is the credential, and a mail client's one-click unsubscribe (RFC 8058) posts with no cookie and no page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import Field

from dashboards.web.deps import DEPS
from dashboards.web.params import Params
from dashboards.web.ratelimit import Buckets, Rate
from dashboards.web.routing import BODY, FORM, HTML, JSON, PATH, RouteTable
from dashboards.web.status_routes import status_response
from dashboards.web.templating import gettext as _
from dashboards.web.templating import render
from incidents.statuspage.subscriptions import (
    EmailRefused,
    LinkState,
    check_email,
    confirm,
    look_up_confirm,
    look_up_manage,
    subscribe_email,
    subscribe_webhook,
    unsubscribe,
)
from incidents.statuspage.webhooks import WebhookRefused
from monitor.errors import InvalidInput

__all__ = ["routes", "SubscribeLimits"]

log = logging.getLogger("negahban.web")
routes = RouteTable()
LIMITS = "subscribe_limits"


@dataclass
class SubscribeLimits:
    """Per address: three requests at once, then one per twenty minutes (so a form cannot mail-bomb anyone);
    per client address: ten a minute, twenty at once (an office behind one NAT)."""

    per_address: Buckets = field(default_factory=lambda: Buckets(Rate(3, 1 / 1200)))
    per_client: Buckets = field(default_factory=lambda: Buckets(Rate.per_minute(10, burst=20)))


class SubscribeForm(Params):
    email: str = Field("", max_length=1000, description="the visitor's e-mail address")


class WebhookForm(Params):
    url: str = Field("", max_length=2000, description="the webhook's URL (http or https)")
    services: list[int] = Field(default_factory=list, max_length=500,
                                description="the services to follow (none: every service on the status page)")


class TokenPath(Params):
    token: str = Field(min_length=1, max_length=200, description="the token of the confirm link")


class ManagePath(Params):
    sub_id: int = Field(ge=1, le=2**63 - 1, description="the subscription")
    token: str = Field(min_length=1, max_length=200, description="the subscription's unsubscribe token")


SUBSCRIBE_ERRORS = {400: ("the address is not valid: the page again, naming the field (JSON for a malformed "
                          "body)", (JSON, HTML)),
                    403: ("posted from another site's page (the form again)", HTML),
                    429: ("too many requests; see Retry-After (the form again)", HTML)}


def _site_url(request: web.Request) -> str:
    return request.app[DEPS].public_url or f"{request.scheme}://{request.host}"


def _cross_site(request: web.Request) -> bool:
    """A browser's post from a page of another host (the scheme may differ behind a TLS proxy)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    mine = {request.host.lower()} | ({urlsplit(request.app[DEPS].public_url).netloc.lower()}
                                     if request.app[DEPS].public_url else set())
    return urlsplit(origin).netloc.lower() not in mine


async def _too_many(request: web.Request, email: str, wait: int) -> web.Response:
    resp = await status_response(request, email=email, status=429,
                                 error=_("Too many requests. Please try again in a few minutes."))
    resp.headers["Retry-After"] = str(wait)
    return resp


@routes.post("/status/subscribe", public=True, body=SubscribeForm, body_media=FORM, produces=HTML,
             errors=SUBSCRIBE_ERRORS)
async def subscribe(request: web.Request) -> web.Response:
    """Subscribe an e-mail address to status notices: a confirmation mail is queued (double opt-in)."""
    deps, form = request.app[DEPS], request[BODY]
    shown = form.email if "\r" not in form.email and "\n" not in form.email else ""
    if _cross_site(request):
        return await status_response(request, status=403,
                                     error=_("This form can only be sent from our status page."))
    limits: SubscribeLimits = deps.services.setdefault(LIMITS, SubscribeLimits())
    now_s = deps.clock.monotonic()
    wait = limits.per_client.take(request.remote or "", now_s)
    if wait:
        return await _too_many(request, shown, wait)
    try:
        address = check_email(form.email)
    except EmailRefused as exc:
        return await status_response(request, email=shown, error=exc.fa, field=exc.field, status=400)
    wait = limits.per_address.take(address, now_s)
    if wait:
        return await _too_many(request, shown, wait)
    queued = await subscribe_email(deps.sessionmaker, address, _site_url(request), deps.clock.now())
    log.info("status_subscribe queued=%s", queued)
    return await status_response(request, done=True)


WEBHOOK_ERRORS = {**SUBSCRIBE_ERRORS, 404: ("webhooks are not offered here (no signing secret is set)",
                                             (JSON, HTML))}
RESOLVE = "status_webhook_resolve"  # a test's resolver; by default the system's


@routes.post("/status/subscribe/webhook", public=True, body=WebhookForm, body_media=FORM, produces=HTML,
             errors=WEBHOOK_ERRORS)
async def subscribe_hook(request: web.Request) -> web.Response:
    """Subscribe a webhook URL to chosen services: a confirmation request, carrying the confirm link and the
    signing key, is queued to the URL itself; a private or metadata address is refused (SSRF)."""
    deps, form = request.app[DEPS], request[BODY]
    allowed = deps.services.get("status_webhook_allow")
    if allowed is None:
        raise web.HTTPNotFound(text="webhooks are not offered here")
    hook = {"url": form.url if form.url.isprintable() else "", "chosen": form.services}
    if _cross_site(request):
        return await status_response(request, status=403, webhook={
            **hook, "error": _("This form can only be sent from our status page.")})
    limits: SubscribeLimits = deps.services.setdefault(LIMITS, SubscribeLimits())
    now_s = deps.clock.monotonic()
    wait = limits.per_client.take(request.remote or "", now_s) or limits.per_address.take(
        f"hook:{form.url.strip()}", now_s)
    if wait:
        resp = await status_response(request, status=429, webhook={
            **hook, "error": _("Too many requests. Please try again in a few minutes.")})
        resp.headers["Retry-After"] = str(wait)
        return resp
    kw = {"resolve": deps.services[RESOLVE]} if RESOLVE in deps.services else {}
    try:
        queued = await subscribe_webhook(deps.sessionmaker, form.url, form.services, _site_url(request),
                                         deps.clock.now(), allowed=allowed, **kw)
    except WebhookRefused as exc:
        return await status_response(request, status=400, webhook={**hook, "error": exc.fa, "field": exc.field})
    except InvalidInput as exc:
        return await status_response(request, status=400, webhook={
            **hook, "field": exc.field, "error": _("One of the chosen services is not on the status page.")})
    log.info("status_webhook_subscribe queued=%s", queued)
    return await status_response(request, webhook={"done": True})


def _link_page(request: web.Request, action: str, found: LinkState, done: bool = False) -> web.Response:
    title = _("Status notices")
    resp = render(request, "status_link.html", {"action": action, "state": found.state, "address": found.address,
                                                "done": done}, title=title,
                  status=404 if found.state == "invalid" else 200)
    # A link carries a credential: never cached (the referrer policy keeps it on this site).
    resp.headers["Cache-Control"] = "no-store"
    return resp


LINK_ERRORS = {404: ("the link is not valid (a Persian page; JSON for a malformed id)", (JSON, HTML))}


@routes.get("/status/confirm/{token}", public=True, path=TokenPath, produces=HTML, errors=LINK_ERRORS)
async def confirm_page(request: web.Request) -> web.Response:
    """The confirm link of the mail: shows a button; changes nothing."""
    deps = request.app[DEPS]
    return _link_page(request, "confirm", await look_up_confirm(deps.sessionmaker, request[PATH].token,
                                                                deps.clock.now()))


@routes.post("/status/confirm/{token}", public=True, path=TokenPath, produces=HTML, errors=LINK_ERRORS)
async def confirm_submit(request: web.Request) -> web.Response:
    """Confirm the subscription of the link: from now on it receives notices."""
    deps = request.app[DEPS]
    found = await confirm(deps.sessionmaker, request[PATH].token, deps.clock.now())
    return _link_page(request, "confirm", found, done=True)


@routes.get("/status/unsubscribe/{sub_id}/{token}", public=True, path=ManagePath, produces=HTML,
            errors=LINK_ERRORS)
async def unsubscribe_page(request: web.Request) -> web.Response:
    """The unsubscribe link of every notice: shows a button; changes nothing."""
    p = request[PATH]
    return _link_page(request, "unsubscribe", await look_up_manage(request.app[DEPS].sessionmaker, p.sub_id,
                                                                   p.token))


@routes.post("/status/unsubscribe/{sub_id}/{token}", public=True, path=ManagePath, produces=HTML,
             errors=LINK_ERRORS)
async def unsubscribe_submit(request: web.Request) -> web.Response:
    """Unsubscribe (the page's button, or a mail client's one-click ``List-Unsubscribe-Post``)."""
    deps, p = request.app[DEPS], request[PATH]
    return _link_page(request, "unsubscribe", await unsubscribe(deps.sessionmaker, p.sub_id, p.token,
                                                                deps.clock.now()), done=True)
