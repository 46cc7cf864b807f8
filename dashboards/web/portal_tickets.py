"""The customer's ticket desk in the portal, in Persian: their tickets, a new-ticket form and a ticket's thread.

The pages only read and ask: every ticket is opened through :func:`tickets.intake.open_ticket` and every
message or closing through :mod:`tickets.desk`, the same services the JSON API calls. A refusal is shown on
the form in Persian with what was typed kept; its code and field names are never shown. Matching
knowledge-base articles are shown before a ticket is opened (rule 12): the "check" button shows them, and a
submit whose articles were not yet seen shows them first and asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from dashboards.portal import customer_services
from dashboards.web.deps import DEPS
from dashboards.web.fa import PRIORITY_FA
from dashboards.web.html import csrf_field, esc, fa_digits, jalali, see_other
from dashboards.web.login import CSRF
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import ids
from dashboards.web.portal_routes import phone_line
from dashboards.web.routing import FORM, HTML, PATH, RouteTable
from dashboards.web.templating import legacy_page
from monitor.accounts import Role
from tickets import desk, intake, kb
from tickets.departments import FIELD_LABELS, DepartmentRule, load_departments
from tickets.errors import DuplicateTicket, Refusal, SupportSuspended
from tickets.models import CLOSED_STATUSES
from tickets.priority import no_incident_known
from tickets.sla import SlaTargets

__all__ = ["routes", "STATUS_FA", "PRIORITY_FA"]

routes = RouteTable()
CUSTOMER = {Role.CUSTOMER}
TICKET = ids("ticket_id")
STATUS_FA = {"open": "باز", "answered": "پاسخ داده شده", "waiting_on_customer": "در انتظار پاسخ شما",
             "closed": "بسته", "closed_without_answer": "بسته بدون پاسخ"}
# Rule 14, in the words of the support terms.
PRIORITY_HELP = {
    "urgent": "سرور یا سرویس از دسترس خارج شده است.",
    "important": "مشکلی که کار سرویس را مختل کرده است.",
    "normal": "همهٔ درخواست‌های مالی و فروش و هر موردی غیر از دو مورد بالا.",
}
PRIORITY_NOTE = ("اولویت را بر اساس اهمیت واقعی انتخاب کنید؛ درخواست «ضروری» با وضعیتی که پایش ما از سرویس "
                 "می‌بیند سنجیده می‌شود و استفادهٔ نادرست از آن ثبت می‌شود.")
# Form fields of the draft other than the department's own (those come from its rule).
_BASE = ("department", "service_id", "subject", "body", "priority", "references_ticket_id", "shown_article_ids")
_INT_FIELDS = ("service_id", "references_ticket_id")
SUPPORT_ERRORS = {400: ("the form again with the refusal in Persian", HTML)}


def _ctx(request: web.Request):
    deps = request.app[DEPS]
    return deps.sessionmaker, request[PRINCIPAL], deps.clock.now()


def _page(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
    nav = ('<p class="crumbs"><a href="/portal">سرویس‌های من</a> · <a href="/portal/tickets">تیکت‌های من</a> · '
           '<a href="/portal/tickets/new">تیکت تازه</a></p>')
    return legacy_page(request, title, nav + body, status=status)


async def _departments(sm) -> dict[str, DepartmentRule]:
    async with sm() as session:
        return await load_departments(session)


def _label(rule: DepartmentRule | None, name: str) -> str:
    return (rule.labels.get(name) if rule else None) or FIELD_LABELS.get(name) or name


# --- the list ---------------------------------------------------------------------------------------------

@routes.get("/portal/tickets", roles=CUSTOMER, produces=HTML)
async def tickets_page(request: web.Request) -> web.Response:
    """The customer's tickets: status, department, first-response due time, newest first."""
    sm, p, now = _ctx(request)
    rows = await desk.list_tickets(sm, p, now=now)
    rules = await _departments(sm)
    body = ['<h1>تیکت‌های من</h1>', await phone_line(request),
            '<p><a class="button" href="/portal/tickets/new">ثبت تیکت تازه</a></p>']
    if not rows:
        body.append('<p class="muted">هنوز تیکتی ثبت نکرده‌اید.</p>')
    else:
        trs = "".join(
            f'<tr class="ticket" data-id="{t.id}"><td>{fa_digits(t.id)}</td>'
            f'<td><a href="/portal/tickets/{t.id}">{esc(t.subject)}</a></td>'
            f'<td>{esc(rules[t.department].name_fa if t.department in rules else "—")}</td>'
            f'<td class="status">{STATUS_FA.get(t.status, "—")}</td><td>{PRIORITY_FA.get(t.priority, "—")}</td>'
            f'<td>{jalali(t.opened_at)}</td>'
            f'<td>{"پاسخ داده شد" if t.first_response_at else jalali(t.first_response_due)}</td></tr>'
            for t in rows)
        body.append('<table class="tickets"><thead><tr><th>شماره</th><th>موضوع</th><th>واحد</th><th>وضعیت</th>'
                    '<th>اولویت</th><th>زمان ثبت</th><th>مهلت اولین پاسخ</th></tr></thead>'
                    f'<tbody>{trs}</tbody></table>')
    return _page(request, "تیکت‌های من", "".join(body))


# --- the new-ticket form ----------------------------------------------------------------------------------

def _draft_of(form: Mapping[str, Any], rule: DepartmentRule | None) -> dict[str, Any]:
    """The intake draft from the form's text: ids as numbers when they are numbers (else the text, which
    intake refuses naming the field), the department's own fields, the articles already shown."""
    names = list(_BASE) + [n for n in (rule.required_fields if rule else ()) if n not in _BASE]
    draft: dict[str, Any] = {}
    for name in names:
        value = form.get(name)
        if not isinstance(value, str):
            continue
        value = value.strip()
        if name in _INT_FIELDS:
            if value == "":
                continue
            draft[name] = int(value) if value.isascii() and value.isdigit() and len(value) < 19 else value
        elif name == "shown_article_ids":
            draft[name] = sorted({int(v) for v in value.split(",") if v.isascii() and v.isdigit()
                                  and len(v) < 19})
        elif value != "" or name in ("subject", "body"):
            draft[name] = value
    return draft


def _input(name: str, label: str, value: Any, bad: bool, *, multiline: bool = False, ltr: bool = False) -> str:
    attrs = f'name="{name}" id="f-{name}"' + (' aria-invalid="true"' if bad else "") + \
        (' dir="ltr"' if ltr else "")
    cls = ' class="bad"' if bad else ""
    control = (f"<textarea {attrs} rows=\"6\">{esc(value)}</textarea>" if multiline
               else f'<input {attrs} value="{esc(value)}">')
    return f'<label{cls} for="f-{name}">{esc(label)}{control}</label>'


def _select(name: str, label: str, options: list[tuple[str, str]], chosen: Any, bad: bool) -> str:
    opts = "".join(f'<option value="{esc(v)}"{" selected" if str(chosen) == v else ""}>{esc(t)}</option>'
                   for v, t in options)
    cls = ' class="bad"' if bad else ""
    return f'<label{cls} for="f-{name}">{esc(label)}<select name="{name}" id="f-{name}">{opts}</select></label>'


def _articles(articles: list) -> str:
    if not articles:
        return ""
    items = "".join(f'<li class="article"><b>{esc(a.article.title)}</b><p>{esc(a.article.body)}</p></li>'
                    for a in articles)
    return ('<section class="card kb" aria-live="polite"><h2>شاید این راهنماها مشکل شما را حل کنند</h2>'
            f'<ul>{items}</ul><p class="muted">اگر پاسخ خود را نیافتید، درخواست را ثبت کنید.</p></section>')


def _refusal_html(refusal: Refusal, rule: DepartmentRule | None) -> str:
    text = refusal.message
    if refusal.code == "invalid_field" and refusal.field:
        text = f"{_label(rule, refusal.field)}: {text}"
    more = ""
    if isinstance(refusal, DuplicateTicket) and refusal.extra.get("duplicate_of"):
        dup = int(refusal.extra["duplicate_of"])
        more = f' <a href="/portal/tickets/{dup}">رفتن به تیکت {fa_digits(dup)}</a>'
    elif isinstance(refusal, SupportSuspended):
        more = ' <a href="/portal">دیدن صورت‌حساب و پرداخت جریمه</a>'
    return f'<p class="error refusal" role="alert">{esc(text)}{more}</p>'


async def _form_page(request: web.Request, draft: dict, *, refusals: list[Refusal] = (), articles: list = (),
                     note: str = "", status: int = 200) -> web.Response:
    sm, p, _now = _ctx(request)
    rules = await _departments(sm)
    dept = draft.get("department") if draft.get("department") in rules else next(iter(rules))
    rule = rules[dept]
    bad = {r.field for r in refusals} | {m for r in refusals for m in r.extra.get("missing", ())}
    services = await customer_services(sm, p)
    parts = [_select("department", "واحد", [(k, r.name_fa) for k, r in rules.items()], dept, "department" in bad),
             _select("service_id", FIELD_LABELS["service_id"],
                     [("", "— بدون سرویس —")] + [(str(s.id), s.title) for s in services],
                     draft.get("service_id", ""), "service_id" in bad),
             _input("subject", FIELD_LABELS["subject"], draft.get("subject", ""), "subject" in bad)]
    for name in rule.required_fields:
        if name in ("service_id", "description", "subject", "body"):
            continue
        parts.append(_input(name, _label(rule, name), draft.get(name, ""), name in bad,
                            ltr=name == "server_address"))
    body_label = _label(rule, "description") if "description" in rule.required_fields else FIELD_LABELS["body"]
    parts.append(_input("body", body_label, draft.get("body", ""), bool(bad & {"body", "description"}),
                        multiline=True))
    if rule.forced_priority:
        parts.append(f'<p class="priority-fixed">اولویت درخواست‌های واحد {esc(rule.name_fa)} همیشه '
                     f'«{PRIORITY_FA.get(rule.forced_priority, "")}» است.</p>')
    else:
        chosen = draft.get("priority") or "normal"
        radios = "".join(
            f'<label class="radio"><input type="radio" name="priority" value="{k}"'
            f'{" checked" if chosen == k else ""}> <b>{PRIORITY_FA[k]}</b>: {PRIORITY_HELP[k]}</label>'
            for k in ("urgent", "important", "normal"))
        parts.append(f'<fieldset class="priority"><legend>اولویت</legend>{radios}'
                     f'<p class="muted">{PRIORITY_NOTE}</p></fieldset>')
    shown = sorted(set(draft.get("shown_article_ids") or []) | {a.article.id for a in articles})
    hidden = (f'<input type="hidden" name="shown_article_ids" value="{",".join(map(str, shown))}">'
              f'<input type="hidden" name="checked_subject" value="{esc(draft.get("subject", ""))}">')
    if draft.get("references_ticket_id") is not None:
        hidden += f'<input type="hidden" name="references_ticket_id" value="{esc(draft["references_ticket_id"])}">'
    errors = "".join(_refusal_html(r, rule) for r in refusals)
    body = (f'<h1>ثبت تیکت تازه</h1>{errors}{f"<p class=note>{esc(note)}</p>" if note else ""}'
            f'{_articles(list(articles))}'
            f'<form method="post" action="/portal/tickets/new" class="ticket-form">{csrf_field(request.get(CSRF))}'
            f'{hidden}{"".join(parts)}'
            '<p class="muted">اگر واحد را عوض کردید، «بررسی» را بزنید تا بخش‌های لازم آن واحد نمایش داده شود.</p>'
            '<button type="submit" name="action" value="check" class="secondary">بررسی و دیدن راهنماها</button> '
            '<button type="submit" name="action" value="submit" id="submit-ticket">ثبت تیکت</button></form>')
    return _page(request, "ثبت تیکت تازه", body, status=status)


@routes.get("/portal/tickets/new", roles=CUSTOMER, produces=HTML)
async def new_ticket_form(request: web.Request) -> web.Response:
    """The new-ticket form (``?department=`` picks the department whose fields are asked; ``?references=``
    a closed ticket this one follows)."""
    draft: dict[str, Any] = {"department": request.query.get("department", "")}
    ref = request.query.get("references", "")
    if ref.isascii() and ref.isdigit() and len(ref) < 19:
        draft["references_ticket_id"] = int(ref)
    return await _form_page(request, draft)


@routes.post("/portal/tickets/new", roles=CUSTOMER, body_media=FORM, produces=HTML, status=303,
             errors=SUPPORT_ERRORS)
async def new_ticket_submit(request: web.Request) -> web.StreamResponse:
    """Check the draft (``action=check``: articles and problems) or open the ticket through intake; a
    refusal is the form again with the message and everything typed."""
    sm, p, now = _ctx(request)
    form = await request.post()
    rules = await _departments(sm)
    draft = _draft_of(form, rules.get(str(form.get("department") or "")))
    async with sm() as session:
        articles = await kb.suggest(session, draft)
    unseen = [a for a in articles if a.article.id not in set(draft.get("shown_article_ids") or [])]
    if form.get("action") == "check":
        try:
            report = await intake.check_draft(sm, p, draft, now=now)
        except Refusal as refusal:
            return await _form_page(request, draft, refusals=[refusal], status=400)
        problems = [Refusal(x["error"], x["field"], x["message"], extra={"missing": []}) for x in report["problems"]]
        note = ""
        if report["missing"]:
            rule = rules.get(draft.get("department") or "")
            note = "این موارد را کامل کنید: " + "، ".join(_label(rule, m) for m in report["missing"]) + "."
        elif not problems:
            note = "پیش‌نویس کامل است؛ اگر راهنماها پاسخ شما نبود، «ثبت تیکت» را بزنید."
        return await _form_page(request, draft, refusals=problems, articles=articles, note=note)
    if unseen:  # rule 12: the articles are seen before the ticket is opened
        return await _form_page(request, draft, articles=articles,
                                note="پیش از ثبت، راهنماهای مرتبط را ببینید؛ اگر مشکل حل نشد دوباره «ثبت تیکت» را بزنید.")
    has_incident = request.app[DEPS].services.get("has_open_incident") or no_incident_known
    targets = request.app[DEPS].services.get("sla_targets") or SlaTargets()
    try:
        ticket = await intake.open_ticket(sm, p, draft, now=now, targets=targets, has_open_incident=has_incident)
    except Refusal as refusal:
        return await _form_page(request, draft, refusals=[refusal], articles=articles, status=400)
    return see_other(f"/portal/tickets/{ticket.id}")


# --- one ticket -------------------------------------------------------------------------------------------

def _thread(ticket, messages) -> str:
    first = (f'<article class="msg customer"><header>شما · {jalali(ticket.opened_at)}</header>'
             f'<p>{esc(ticket.body)}</p></article>')
    rest = "".join(
        f'<article class="msg {"staff" if m.author_kind == "staff" else "customer"}"><header>'
        f'{"پشتیبانی" if m.author_kind == "staff" else "شما"} · {jalali(m.at)}</header><p>{esc(m.body)}</p></article>'
        for m in messages)
    return f'<section class="thread">{first}{rest}</section>'


async def _ticket_page(request: web.Request, ticket_id: int, *, reply: str = "", refusal: Refusal | None = None,
                       status: int = 200) -> web.Response:
    sm, p, now = _ctx(request)
    # Another customer's ticket raises NotFound: answered 404 like a ticket that does not exist.
    ticket, messages = await desk.get_ticket(sm, p, ticket_id, now=now)
    rules = await _departments(sm)
    dept = rules[ticket.department].name_fa if ticket.department in rules else "—"
    due = "پاسخ داده شد" if ticket.first_response_at else jalali(ticket.first_response_due)
    head = (f'<h1>تیکت {fa_digits(ticket.id)}: {esc(ticket.subject)}</h1>'
            f'<p class="meta">وضعیت: <b class="status">{STATUS_FA.get(ticket.status, "—")}</b> · واحد: {esc(dept)} · '
            f'اولویت: {PRIORITY_FA.get(ticket.priority, "—")} · زمان ثبت: {jalali(ticket.opened_at)} · '
            f'مهلت اولین پاسخ: {due}</p>')
    csrf = csrf_field(request.get(CSRF))
    if ticket.status in CLOSED_STATUSES:
        tail = (f'<p class="closed">این تیکت بسته شده است و دوباره باز نمی‌شود. '
                f'<a href="/portal/tickets/new?references={ticket.id}">تیکت تازه با ارجاع به این تیکت</a></p>')
    else:
        error = f'<p class="error refusal" role="alert">{esc(refusal.message)}</p>' if refusal else ""
        tail = (f'<section class="card"><h2>پاسخ شما</h2>{error}'
                f'<form method="post" action="/portal/tickets/{ticket.id}/reply">{csrf}'
                f'<label for="f-reply">متن پیام<textarea name="body" id="f-reply" rows="5"'
                f'{" aria-invalid=true" if refusal else ""}>{esc(reply)}</textarea></label>'
                f'<button type="submit">فرستادن پاسخ</button></form>'
                f'<form method="post" action="/portal/tickets/{ticket.id}/close" class="close">{csrf}'
                f'<button type="submit" class="secondary">بستن تیکت</button></form></section>')
    return _page(request, f"تیکت {fa_digits(ticket.id)}", head + _thread(ticket, messages) + tail, status=status)


@routes.get("/portal/tickets/{ticket_id}", roles=CUSTOMER, path=TICKET, produces=HTML, errors=SUPPORT_ERRORS)
async def ticket_page(request: web.Request) -> web.Response:
    """One of the customer's tickets: the thread, a reply form and closing (another's is 404)."""
    return await _ticket_page(request, request[PATH].ticket_id)


@routes.post("/portal/tickets/{ticket_id}/reply", roles=CUSTOMER, path=TICKET, body_media=FORM, produces=HTML,
             status=303, errors=SUPPORT_ERRORS)
async def ticket_reply(request: web.Request) -> web.StreamResponse:
    """Write on the thread; a refusal (not Persian, closed) is the page again with the text kept."""
    sm, p, now = _ctx(request)
    ticket_id = request[PATH].ticket_id
    body = (await request.post()).get("body")
    body = body if isinstance(body, str) else ""
    try:
        await desk.add_message(sm, p, ticket_id, body, now=now)
    except Refusal as refusal:
        return await _ticket_page(request, ticket_id, reply=body, refusal=refusal, status=400)
    return see_other(f"/portal/tickets/{ticket_id}")


@routes.post("/portal/tickets/{ticket_id}/close", roles=CUSTOMER, path=TICKET, produces=HTML, status=303,
             errors=SUPPORT_ERRORS)
async def ticket_close(request: web.Request) -> web.StreamResponse:
    """Close the customer's own ticket."""
    sm, p, now = _ctx(request)
    await desk.close(sm, p, request[PATH].ticket_id, now=now)
    return see_other(f"/portal/tickets/{request[PATH].ticket_id}")
