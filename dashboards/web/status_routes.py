"""The public status page: the services customers opted in, planned maintenance, and the other ways to reach
support while the portal is down (rule 18). Public, so it shows names and states only."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from dashboards.portal import daily_uptime, public_services
from dashboards.status import announcements, public_incidents
from dashboards.web.cache import RenderCache
from dashboards.web.deps import DEPS
from dashboards.web.fa import STATE_FA, percent
from dashboards.web.html import esc, jalali
from dashboards.web.portal_routes import bar_html
from dashboards.web.portal_sections import SEVERITY_FA
from dashboards.web.routing import HTML, RouteTable
from dashboards.web.templating import render
from incidents.statuspage.updates import STATUS_FA

__all__ = ["routes", "STATUS_CACHE", "status_cache", "status_response"]

routes = RouteTable()


def _channels(channels) -> str:
    if not channels:
        return ""
    items = "".join(f"<li>{esc(label)}: <bdi>{esc(value)}</bdi></li>" for label, value in channels)
    return (f'<section class="card channels"><h2>راه‌های دیگر ارتباط با پشتیبانی</h2>'
            f'<p>اگر سامانه پشتیبانی در دسترس نبود، از این راه‌ها با ما تماس بگیرید:</p><ul>{items}</ul></section>')


def _announcements(items) -> str:
    if not items:
        return '<section class="card"><h2>نگهداری برنامه‌ریزی‌شده</h2><p class="muted">برنامه‌ای ثبت نشده است.</p></section>'
    rows = "".join(f'<li class="maintenance"><b>{esc(a.title or "نگهداری")}</b> — از {jalali(a.start)} تا '
                   f'{jalali(a.end)}{" (در حال انجام)" if a.active else ""}</li>' for a in items)
    return f'<section class="card"><h2>نگهداری برنامه‌ریزی‌شده</h2><ul>{rows}</ul></section>'


_STATUS_WORDS = {k.value: v for k, v in STATUS_FA.items()}


def _incidents(items) -> str:
    """Incidents staff wrote public updates about: the severity word, since when, and the updates as written."""
    if not items:
        return ""
    cards = []
    for i in items:
        word = SEVERITY_FA.get(i.severity, "رخداد")
        when = f"از {jalali(i.opened_at)}" + (f" تا {jalali(i.resolved_at)} (برطرف شد)" if i.resolved_at else "")
        ups = "".join(f'<li class="public-update"><span class="muted">{jalali(u.at)}</span> '
                      f'{"<b>" + esc(_STATUS_WORDS.get(u.status, "")) + "</b> " if u.status else ""}'
                      f'<p>{esc(u.text)}</p></li>' for u in i.updates)
        cards.append(f'<article class="card incident-public" data-id="{i.id}"><h3>{esc(word)} <span class="muted">'
                     f'{when}</span></h3><ul>{ups}</ul></article>')
    return f'<section class="incidents-public"><h2>رخدادها</h2>{"".join(cards)}</section>'


# The page costs hundreds of milliseconds at a few dozen services and is public: under load every caller
# shares one render, at most STATUS_TTL_S seconds old.
STATUS_TTL_S = 5.0
STATUS_CACHE = web.AppKey("status_cache", RenderCache)


def status_cache(clock) -> RenderCache:
    return RenderCache(clock.monotonic, ttl_s=STATUS_TTL_S, max_entries=1)


async def status_response(request: web.Request, *, email: str = "", error: str = "", field: str | None = None,
                          done: bool = False, status: int = 200) -> web.Response:
    """The status page (its shared body) with the subscription form, as given. The page carries no token
    and no cookie: on a GET it is the same for every visitor (``dashboards.web.subscribe_routes`` says why
    the form needs none)."""
    deps = request.app[DEPS]
    body = await request.app[STATUS_CACHE].get("status", lambda: _status_body(deps))
    return render(request, "status.html", {"body": body, "form_email": email, "form_error": error,
                                           "form_field": field, "form_done": done},
                  status=status, title="وضعیت سرویس‌ها")


@routes.get("/status", public=True, produces=HTML)
async def status_page(request: web.Request) -> web.Response:
    """The public status page: opted-in services, planned maintenance, other ways to reach support, and the
    form to subscribe by e-mail."""
    return await status_response(request)


async def _status_body(deps) -> str:
    now = deps.clock.now()
    services = await public_services(deps.sessionmaker)
    cards = []
    for svc in services:
        days = await daily_uptime(deps.sessionmaker, svc.monitor_ids, 90, now)
        known = [d for d in days if d.ratio is not None]
        avg = (sum(d.available_s for d in known) / max(1.0, sum(d.available_s + d.unavailable_s for d in known))
               if known else None)
        cards.append(f'<article class="card service"><h2>{esc(svc.title)} '
                     f'<span class="st st-{svc.state}">{STATE_FA.get(svc.state, svc.state)}</span></h2>'
                     f'{bar_html(days)}<p class="muted">دسترس‌پذیری ۹۰ روز: {percent(avg, 3)}</p></article>')
    items = await announcements(deps.sessionmaker, [m for s in services for m in s.monitor_ids], now,
                                timedelta(days=14))
    published = await public_incidents(deps.sessionmaker, now, timedelta(days=1))
    return (f"<h1>وضعیت سرویس‌ها</h1>{_incidents(published)}{_announcements(items)}{_channels(deps.support_channels)}"
            f"{''.join(cards) or '<p class=muted>سرویسی برای نمایش عمومی انتخاب نشده است.</p>'}")
