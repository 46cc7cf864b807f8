"""The staff incident pages: ``/incidents`` (open ones first, then the recently resolved) and
``/incidents/{id}`` (what it affects, its timeline, and the forms to acknowledge, write a note, publish a
public update and resolve).

Thin, like the API: each form posts to an HTML route that calls the same service function as its API
twin (``POST /api/v1/incidents/{id}/acknowledge|notes|updates|resolve``) after the same body check, then
answers 303 back to the page; a refused form is shown again with a Persian reason and the text as typed.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from dashboards.web.api_incidents import NoteBody
from dashboards.web.api_status import UpdateBody
from dashboards.web.deps import DEPS
from dashboards.web.fa import PRIORITY_FA, STATE_FA
from dashboards.web.html import see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params, ids
from dashboards.web.routing import BODY, FORM, HTML, PATH, QUERY, RouteTable
from dashboards.web.templating import N_, render
from incidents.errors import IncidentClosed
from incidents.history import incident_history, incident_lists
from incidents.lifecycle import OPERATORS, acknowledge, add_note, resolve
from incidents.statuspage.updates import PUBLISHERS, STATUS_FA, post_update
from monitor.errors import InvalidInput

__all__ = ["routes"]

routes = RouteTable()
INCIDENT = ids("incident_id")
PER_PAGE = 50
# The form fields take any text a browser sends (the body limit bounds it): the API's own models check it
# after, so that a refused text comes back to the form, in Persian, instead of to an error page.

STATUS_WORDS = {"triggered": N_("Open, not acknowledged"), "acknowledged": N_("Acknowledged"),
                "resolved": N_("Resolved")}
EVENT_WORDS = {"opened": N_("Opened"), "flapped": N_("Flapped"), "upgraded": N_("Severity raised"),
               "acknowledged": N_("Acknowledged"), "assigned": N_("Assigned"), "note": N_("Note"),
               "escalated": N_("Escalated"), "resolved": N_("Resolved"),
               "still_failing": N_("Still failing after resolve"), "location": N_("Also failing from")}
SOURCE_WORDS = {"flip": N_("State change"), "notification": N_("Notification"), "update": N_("Public update")}
DELIVERY_WORDS = {"pending": N_("waiting to be sent"), "sent": N_("sent"), "failed": N_("failed"),
                  "skipped": N_("skipped")}

CLOSED = N_("This incident is already resolved; it can no longer be changed.")
NOTE_EMPTY = N_("Write the note first: it cannot be empty.")
NOTE_LONG = N_("The note is too long: at most 10,000 characters.")
UPDATE_EMPTY = N_("Write the public update first: it cannot be empty.")
UPDATE_LONG = N_("The public update is too long: at most 5,000 characters.")
UPDATE_PERSIAN = N_("A public update must be written in Persian, in Persian script: customers read it as "
                    "it is written.")
UPDATE_STATUS = N_("Choose one of the listed states for the update.")
RESOLVE_EMPTY = N_("Write why the incident is resolved: a reason is required.")
RESOLVE_LONG = N_("The reason is too long: at most 10,000 characters.")
RESOLVE_CONFIRM = N_("The monitor is still failing: tick the confirmation to resolve anyway.")


class PageForm(Params):
    page: int = Field(1, ge=1, le=1_000_000)


class ActionForm(Params):
    csrf: str = Field("", description="the session's CSRF token (checked before the route runs)")


class TextForm(ActionForm):
    text: str = ""


class UpdateForm(TextForm):
    status: str = Field("", description="investigating, identified, monitoring or resolved (or none)")


class ResolveForm(TextForm):
    confirm: str = Field("", description='"yes": resolve although the monitor is still failing')


def _checked(model: type[BaseModel], **data) -> BaseModel:
    """``data`` through the API's body model: the same rules, refused as ``InvalidInput`` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidInput(".".join(str(p) for p in err["loc"]), err["msg"]) from None


def _why(exc: InvalidInput, empty: str, long: str) -> str:
    """The Persian message id for a refused text (the service's reason is English, for logs and the API)."""
    reason = exc.reason.lower()
    if exc.field == "status":
        return UPDATE_STATUS
    if "persian" in reason:
        return UPDATE_PERSIAN
    if "at most" in reason or "longer" in reason:
        return long
    return empty


async def _page(request: web.Request, incident_id: int, *, form: str = "", error: str = "",
                typed: dict[str, str] | None = None, status: int = 200) -> web.Response:
    principal = request[PRINCIPAL]
    h = await incident_history(request.app[DEPS].sessionmaker, principal, incident_id)
    i = h.incident
    ctx = {
        "h": h, "i": i, "priority": PRIORITY_FA.get(i.severity, i.severity),
        "status_word": STATUS_WORDS.get(i.status, i.status), "event_words": EVENT_WORDS,
        "source_words": SOURCE_WORDS, "delivery_words": DELIVERY_WORDS, "state_fa": STATE_FA,
        "update_statuses": [(k.value, fa) for k, fa in STATUS_FA.items()], "status_fa": {
            k.value: fa for k, fa in STATUS_FA.items()},
        "can_publish": principal.role in PUBLISHERS, "form": form, "error": error, "typed": typed or {},
    }
    return render(request, "incident.html", ctx, status=status, title=f"#{i.id} {i.title}")


@routes.get("/incidents", roles=OPERATORS, query=PageForm, produces=HTML)
async def incidents_page(request: web.Request) -> web.Response:
    """Incidents for staff: every open one, then the resolved ones, most recent first (paged)."""
    page = request[QUERY].page
    lists = await incident_lists(request.app[DEPS].sessionmaker, request[PRINCIPAL], page=page,
                                 per_page=PER_PAGE)
    pages = max(1, -(-lists.resolved_total // PER_PAGE))
    return render(request, "incidents.html", {
        "lists": lists, "page": page, "pages": pages, "priority_fa": PRIORITY_FA, "status_words": STATUS_WORDS,
    })


@routes.get("/incidents/{incident_id}", roles=OPERATORS, path=INCIDENT, produces=HTML,
            errors={404: "no such incident"})
async def incident_page(request: web.Request) -> web.Response:
    """One incident: what it affects, its timeline, and what staff may do about it."""
    return await _page(request, request[PATH].incident_id)


def _back(incident_id: int, anchor: str = "") -> web.Response:
    return see_other(f"/incidents/{incident_id}" + (f"#{anchor}" if anchor else ""))


FORM_ERRORS = {400: ("the form again, with the reason and the text as typed", HTML), 404: "no such incident"}


@routes.post("/incidents/{incident_id}/acknowledge", roles=OPERATORS, path=INCIDENT, body=ActionForm,
             body_media=FORM, produces=HTML, status=303, errors=FORM_ERRORS)
async def acknowledge_submit(request: web.Request) -> web.Response:
    """Acknowledge the incident (someone is on it), then back to its page."""
    deps, iid = request.app[DEPS], request[PATH].incident_id
    try:
        await acknowledge(deps.sessionmaker, request[PRINCIPAL], iid, deps.clock.now())
    except IncidentClosed:
        return await _page(request, iid, form="ack", error=CLOSED, status=400)
    return _back(iid)


@routes.post("/incidents/{incident_id}/notes", roles=OPERATORS, path=INCIDENT, body=TextForm, body_media=FORM,
             produces=HTML, status=303, errors=FORM_ERRORS)
async def note_submit(request: web.Request) -> web.Response:
    """Add a note to the timeline, then back to the page."""
    deps, iid, form = request.app[DEPS], request[PATH].incident_id, request[BODY]
    try:
        body = _checked(NoteBody, text=form.text)
        await add_note(deps.sessionmaker, request[PRINCIPAL], iid, body.text, deps.clock.now())
    except InvalidInput as exc:
        return await _page(request, iid, form="note", error=_why(exc, NOTE_EMPTY, NOTE_LONG),
                           typed={"note": form.text}, status=400)
    return _back(iid, "timeline")


@routes.post("/incidents/{incident_id}/updates", roles=PUBLISHERS, path=INCIDENT, body=UpdateForm,
             body_media=FORM, produces=HTML, status=303, errors=FORM_ERRORS)
async def update_submit(request: web.Request) -> web.Response:
    """Publish a Persian update to the status page and its subscribers, then back to the page."""
    deps, iid, form = request.app[DEPS], request[PATH].incident_id, request[BODY]
    try:
        body = _checked(UpdateBody, text=form.text, status=form.status or None)
        await post_update(deps.sessionmaker, request[PRINCIPAL], iid, body.text, body.status, deps.clock.now())
    except InvalidInput as exc:
        return await _page(request, iid, form="update", error=_why(exc, UPDATE_EMPTY, UPDATE_LONG),
                           typed={"update": form.text, "status": form.status}, status=400)
    wake = deps.services.get("incidents_changed")
    if wake is not None:
        wake()
    return _back(iid, "updates")


@routes.post("/incidents/{incident_id}/resolve", roles=OPERATORS, path=INCIDENT, body=ResolveForm,
             body_media=FORM, produces=HTML, status=303, errors=FORM_ERRORS)
async def resolve_submit(request: web.Request) -> web.Response:
    """Resolve by hand with a reason; while the monitor still fails, only with the confirmation ticked."""
    deps, iid, form = request.app[DEPS], request[PATH].incident_id, request[BODY]
    typed = {"resolve": form.text}
    try:
        body = _checked(NoteBody, text=form.text)
        if not body.text.strip():
            raise InvalidInput("text", "a reason cannot be empty")
        h = await incident_history(deps.sessionmaker, request[PRINCIPAL], iid)
        if h.still_failing and form.confirm != "yes":
            return await _page(request, iid, form="resolve", error=RESOLVE_CONFIRM, typed=typed, status=400)
        await resolve(deps.sessionmaker, request[PRINCIPAL], iid, deps.clock.now(), body.text.strip())
    except InvalidInput as exc:
        return await _page(request, iid, form="resolve", error=_why(exc, RESOLVE_EMPTY, RESOLVE_LONG),
                           typed=typed, status=400)
    except IncidentClosed:
        return await _page(request, iid, form="resolve", error=CLOSED, typed=typed, status=400)
    wake = deps.services.get("incidents_changed")
    if wake is not None:
        wake()
    return _back(iid)
