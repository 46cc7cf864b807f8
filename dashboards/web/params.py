"""Models of path and query parameters shared by the routes, and pagination of every list.

Path and query values arrive as text, so these are parsed in pydantic's lax mode ("12" is the id 12); the
bounds are the same as the body models' (``dashboards.web.types``). Every list endpoint takes ``limit``
(1..``MAX_LIMIT``, default ``DEFAULT_LIMIT``) and ``page`` (from 1) and answers one page, with a
``Link: <...>; rel="next"`` header while more rows follow (RFC 8288), so the body stays a plain list.
"""

from __future__ import annotations

import functools
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model

from dashboards.web.body import json_response
from tickets.ledger.money import MAX_ID

__all__ = ["PathId", "ids", "PageQuery", "page_of", "page_links", "paged", "sliced", "MAX_LIMIT", "DEFAULT_LIMIT",
           "JalaliYear", "JalaliMonth", "Params"]

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_PAGE = 1_000_000
PathId = Annotated[int, Field(ge=1, le=MAX_ID)]
JalaliYear = Annotated[int, Field(ge=1300, le=1500)]
JalaliMonth = Annotated[int, Field(ge=1, le=12)]


class Params(BaseModel):
    """Path and query models: an unknown query parameter is ignored, as browsers and proxies add some."""

    model_config = ConfigDict(extra="ignore", frozen=True)


@functools.cache
def ids(*names: str) -> type[Params]:
    """A path model of row ids, e.g. ``ids("ticket_id")``: one model per set of names, shared by routes."""
    title = "".join(n.removesuffix("_id").title().replace("_", "") for n in names) + "Path"
    return create_model(title, __base__=Params, **{n: (PathId, ...) for n in names})


class PageQuery(Params):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="rows per page")
    page: int = Field(1, ge=1, le=MAX_PAGE, description="page number, from 1")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def paged(stmt, q: PageQuery):
    """``stmt`` limited to the page, plus one row to tell whether another page follows."""
    return stmt.limit(q.limit + 1).offset(q.offset)


def sliced(rows: list, q: PageQuery) -> list:
    """The page of an already loaded list, plus one row (for lists a service builds in memory)."""
    return rows[q.offset:q.offset + q.limit + 1]


def page_links(request: web.Request, rows: list, q: PageQuery) -> tuple[list, dict[str, str]]:
    """The page's rows (``rows`` from ``paged``/``sliced``) and a ``Link`` to the next page if there is more."""
    if len(rows) <= q.limit:
        return rows, {}
    url = request.rel_url.update_query(page=q.page + 1, limit=q.limit)
    return rows[:q.limit], {"Link": f'<{url}>; rel="next"'}


def page_of(request: web.Request, rows: list, q: PageQuery, render=None) -> web.Response:
    """Answer the page as a JSON list, linking to the next one if there is more."""
    rows, headers = page_links(request, rows, q)
    resp = json_response([render(r) for r in rows] if render else rows)
    resp.headers.update(headers)
    return resp
