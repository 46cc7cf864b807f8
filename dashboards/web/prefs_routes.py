"""What a reader may choose about the pages: the language of staff pages, and the font every page uses.

``POST /lang`` remembers a staff user's language (Persian or English) in a cookie; customers always read
Persian. ``/fonts/{name}`` serves the one font family of the pages (Noto Sans Arabic, from Debian's
``fonts-noto-core``) so a reader's browser need not have it; a missing font falls back to the browser's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import Field

from dashboards.web.deps import DEPS
from dashboards.web.html import see_other
from dashboards.web.login import safe_next
from dashboards.web.params import Params
from dashboards.web.routing import BODY, FORM, HTML, PATH, RouteTable
from dashboards.web.templating import LANG_COOKIE
from monitor.accounts import STAFF

__all__ = ["routes", "FONTS"]

routes = RouteTable()
FONT_DIR = Path("/usr/share/fonts/truetype/noto")
FONTS = {"sans-regular.ttf": "NotoSansArabic-Regular.ttf", "sans-bold.ttf": "NotoSansArabic-Bold.ttf"}


class LangForm(Params):
    lang: Literal["fa", "en"]
    csrf: str = Field("", max_length=200)
    next: str = Field("", max_length=2000)


@routes.post("/lang", roles=STAFF, body=LangForm, body_media=FORM, produces=HTML, status=303)
async def choose_language(request: web.Request) -> web.Response:
    """Staff pages in Persian or English, remembered for a year on this browser."""
    form: LangForm = request[BODY]
    response = see_other(safe_next(form.next) or "/")
    response.set_cookie(LANG_COOKIE, form.lang, max_age=365 * 86400, httponly=True, samesite="Lax",
                        secure=request.app[DEPS].cookie_secure, path="/")
    return response


class FontPath(Params):
    name: Literal["sans-regular.ttf", "sans-bold.ttf"]


@routes.get("/fonts/{name}", public=True, path=FontPath, produces="font/ttf", status=(200,),
            errors={404: "the font is not installed on this server"})
async def font(request: web.Request) -> web.StreamResponse:
    """The pages' font (cached for a day)."""
    path = FONT_DIR / FONTS[request[PATH].name]
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400", "Content-Type": "font/ttf"})
