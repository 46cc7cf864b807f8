"""Notification channels and escalation in the admin's browser.

``/admin/channels`` lists every channel (kind, audience, the address with secrets masked, enabled or why it
is not) with a form to add one, validated by :func:`incidents.channel_config.parse_channel` (the same checks
as the ``NEGAHBAN_NOTIFICATION_CHANNELS`` setting), and a button to disable or enable each.
``/admin/escalation`` shows, read-only, the escalation policies the service runs with (the
``NEGAHBAN_ESCALATION_POLICIES`` setting, handed in as the ``escalation`` service) with who is on call now in
each rotation, and the policies stored in the database.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from dashboards.web.deps import DEPS
from dashboards.web.html import see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params, ids
from dashboards.web.routing import BODY, FORM, HTML, JSON, PATH, RouteTable
from dashboards.web.templating import N_, render
from incidents import channel_config
from incidents.escalation_policy import EscalationConfig, on_call
from incidents.models import ChannelKind, EscalationPolicy, EscalationStep, NotificationChannel
from monitor.accounts import Role
from monitor.errors import InvalidInput

__all__ = ["routes", "CHANNEL_REFUSALS"]

routes = RouteTable()
ADMIN_ROLES = frozenset({Role.ADMIN})
CHANNEL = ids("channel_id")
ERRORS = {400: ("a field over its length (JSON), or the page again with the reason in Persian and the form "
                "as typed", (JSON, HTML))}
CHANNEL_REFUSALS = {
    "name": N_("Give the channel a name not yet used, of up to 100 characters, without a colon or semicolon."),
    "kind": N_("Choose one of the channel kinds."),
    "audience": N_("Choose the audience."),
    "customer": N_("There is no customer with this name."),
    "address": N_("Write the channel's address: for a webhook a web address starting with http or https, else a "
                  "mailbox, a mobile number, a chat id, or a PagerDuty routing key."),
}
SEVERITY_WORDS = {"urgent": N_("Urgent"), "important": N_("Important")}
AUDIENCE_WORDS = {"noc": N_("NOC"), "escalation": N_("Escalation"), "customer": N_("Customer")}
NOTICES = {"added": N_("The channel was added."), "disabled": N_("The channel was disabled."),
           "enabled": N_("The channel was enabled.")}


class ChannelForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    name: str = Field("", max_length=200, description="the channel's name")
    kind: str = Field("", max_length=40, description="webhook, email, sms, kavenegar, ghasedak, telegram, bale "
                                                     "or pagerduty")
    audience: str = Field("", max_length=20, description="noc, escalation or customer")
    customer: str = Field("", max_length=200, description="a customer channel's customer (its name)")
    address: str = Field("", max_length=500, description="where the channel sends")


class EnableForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")
    enabled: bool = Field(description="true to enable, false to disable")


async def _page(request: web.Request, *, error: str = "", typed: dict | None = None,
                status: int = 200) -> web.Response:
    rows = await channel_config.list_channels(request.app[DEPS].sessionmaker)
    lines = [{"c": c, "customer": name, "address": channel_config.masked_address(c.kind, c.address)}
             for c, name in rows]
    return render(request, "admin_channels.html", {
        "lines": lines, "kinds": list(ChannelKind), "audience_words": AUDIENCE_WORDS, "error": error, "typed": typed or {},
        "notice": NOTICES.get(request.query.get("done", ""), ""),
    }, status=status, title=N_("Notification channels"))


@routes.get("/admin/channels", roles=ADMIN_ROLES, produces=HTML)
async def admin_channels(request: web.Request) -> web.Response:
    """Every notification channel, with secrets masked, and the form to add one."""
    return await _page(request)


@routes.post("/admin/channels", roles=ADMIN_ROLES, body=ChannelForm, body_media=FORM, produces=HTML,
             status=303, errors=ERRORS)
async def admin_channel_add(request: web.Request) -> web.Response:
    """Add a channel, validated as the setting's entries are; a refusal is the page again (400)."""
    form = request[BODY]
    typed = form.model_dump(exclude={"csrf"})
    to_customer = form.audience == "customer"
    audience = f"customer={form.customer.strip()}" if to_customer else form.audience
    try:
        spec = channel_config.parse_channel(form.name, form.kind, audience, form.address)
        await channel_config.add_channel(request.app[DEPS].sessionmaker, spec)
    except InvalidInput as bad:
        field = bad.field if bad.field in CHANNEL_REFUSALS else "address"
        field = "customer" if field == "audience" and to_customer else field
        return await _page(request, error=CHANNEL_REFUSALS[field], typed=typed | {"field": field}, status=400)
    return see_other("/admin/channels?done=added")


@routes.post("/admin/channels/{channel_id}/enabled", roles=ADMIN_ROLES, path=CHANNEL, body=EnableForm,
             body_media=FORM, produces=HTML, status=303)
async def admin_channel_enable(request: web.Request) -> web.Response:
    """Disable a channel (its notices are skipped, with the admin named as the reason) or enable it again."""
    deps, form = request.app[DEPS], request[BODY]
    await channel_config.set_channel_enabled(deps.sessionmaker, request[PATH].channel_id, form.enabled,
                                             reason=f"disabled by admin {request[PRINCIPAL].username}",
                                             now=deps.clock.now())
    return see_other(f"/admin/channels?done={'enabled' if form.enabled else 'disabled'}")


async def _stored_policies(sm) -> list[tuple[str, list[tuple[int, float, str]]]]:
    """The policies stored in the database: name and (position, delay in seconds, channel name) steps."""
    async with sm() as session:
        rows = (await session.execute(
            select(EscalationPolicy.name, EscalationStep.position, EscalationStep.delay_s, NotificationChannel.name)
            .join(EscalationStep, EscalationStep.policy_id == EscalationPolicy.id)
            .join(NotificationChannel, NotificationChannel.id == EscalationStep.channel_id)
            .order_by(EscalationPolicy.name, EscalationStep.position))).all()
    out: dict[str, list[tuple[int, float, str]]] = {}
    for name, position, delay, channel in rows:
        out.setdefault(name, []).append((position, delay, channel))
    return list(out.items())


@routes.get("/admin/escalation", roles=ADMIN_ROLES, produces=HTML)
async def admin_escalation(request: web.Request) -> web.Response:
    """The escalation policies and rotations in force, with who is on call now (read-only)."""
    deps = request.app[DEPS]
    config: EscalationConfig = deps.services.get("escalation") or EscalationConfig()
    now = deps.clock.now()
    rotations = [{"r": r, "now": on_call(r, now)} for r in (config.rotations or {}).values()]
    return render(request, "admin_escalation.html", {
        "policies": config.policies, "severity_words": SEVERITY_WORDS, "rotations": rotations, "stored": await _stored_policies(deps.sessionmaker),
    }, title=N_("Escalation policies"))
