"""The OpenAPI 3.1 document, built from the route declarations (``RouteTable.entries``) and the pydantic
models that validate each route's body, query and path: nothing in it is written by hand, so it says what
the routes accept. Roles are listed per operation as ``x-roles`` (``x-public`` for anonymous routes)."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from dashboards.web.body import json_response
from dashboards.web.params import Params
from dashboards.web.routing import JSON, RouteEntry, RouteTable

__all__ = ["routes", "build_document", "OPENAPI", "Error"]

routes = RouteTable()
OPENAPI = web.AppKey("negahban_openapi", dict)
REF = "#/components/schemas/{model}"
VERSION = "0.1.0"
SECURITY = {"bearer": {"type": "http", "scheme": "bearer", "description": "an API token (negahban user token)"},
            "session": {"type": "apiKey", "in": "cookie", "name": "ngb_session",
                        "description": "the web session of /login; unsafe methods also need X-CSRF-Token"}}


class Error(BaseModel):
    """Every error answer: what went wrong, the input at fault (null if none) and why."""

    model_config = ConfigDict(extra="allow")
    error: str
    field: str | None
    reason: str


class OpenApiDocument(Params):
    model_config = ConfigDict(extra="allow", title="OpenApiDocument")
    openapi: str


@routes.get("/api/v1/openapi.json", public=True, response=OpenApiDocument)
async def openapi_document(request: web.Request) -> web.Response:
    """This document. Public: it lists routes and roles, never data."""
    return json_response(request.app[OPENAPI])


def _response_model(e: RouteEntry) -> tuple[type[BaseModel] | None, bool]:
    """``(model, is_list)`` of a declared response."""
    if typing.get_origin(e.response) is list:
        return typing.get_args(e.response)[0], True
    return e.response, False


def _inputs(entries: Iterable[RouteEntry]):
    pairs = {(Error, "serialization")}
    for e in entries:
        for model in (e.query, e.path_model, e.body if e.body is not bytes else None):
            if model is not None:
                pairs.add((model, "validation"))
        model, _many = _response_model(e)
        if model is not None:
            pairs.add((model, "serialization"))
    return sorted(pairs, key=lambda p: (p[0].__module__, p[0].__qualname__, p[1]))


def _params(model, where: str, refs, defs) -> list[dict]:
    if model is None:
        return []
    schema = defs[refs[(model, "validation")]["$ref"].rsplit("/", 1)[1]]
    required = set(schema.get("required", ()))
    return [{"name": name, "in": where, "required": where == "path" or name in required, "schema": prop,
             **({"description": prop["description"]} if "description" in prop else {})}
            for name, prop in schema.get("properties", {}).items()]


def _request_body(e: RouteEntry, refs) -> dict | None:
    if e.body is None:
        return None
    if e.body is bytes:
        schema = {"type": "string"}
    else:
        schema = refs[(e.body, "validation")]
    return {"required": True, "content": {e.body_media: {"schema": schema}}}


def _success_schema(e: RouteEntry, refs) -> dict:
    model, many = _response_model(e)
    if model is not None:
        ref = refs[(model, "serialization")]
        return {"type": "array", "items": ref} if many else ref
    if e.produces == JSON:
        return {}
    return {"type": "string", **({"format": "binary"} if e.produces == "application/pdf" else {})}


def _success(e: RouteEntry, refs) -> dict:
    out = {}
    for status in e.status:
        if status in (301, 302, 303, 307):
            out[str(status)] = {"description": "redirect",
                                "headers": {"Location": {"schema": {"type": "string"}, "required": True}}}
            continue
        r = {"description": "OK" if status == 200 else "created" if status == 201 else "success",
             "content": {e.produces: {"schema": _success_schema(e, refs)}}}
        if e.paginated:
            r["headers"] = {"Link": {"description": 'the next page, as <url>; rel="next", while rows follow',
                                     "schema": {"type": "string"}}}
        out[str(status)] = r
    return out


def _error(description: str, media: str | tuple[str, ...] = JSON) -> dict:
    """An error answer in one media type, or several (a form route answers a bad field as JSON and a refusal
    as its page again)."""
    kinds = (media,) if isinstance(media, str) else media
    return {"description": description, "content": {
        m: {"schema": {"$ref": REF.format(model="Error")} if m == JSON else {"type": "string"}} for m in kinds}}


def _errors(e: RouteEntry) -> dict:
    out = {"400": _error("invalid input: the field at fault and why"),
           "404": _error("no such row, or not the caller's to see")}
    if not e.public:
        unauth = _error("no or unknown credentials")
        unauth["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
        out |= {"401": unauth, "403": _error("the caller's role may not call this route (or a CSRF check failed)")}
    if e.body is not None:
        out["413"] = _error("the body is larger than the route accepts")
    for status, spec in e.errors.items():
        out[str(status)] = _error(*spec) if isinstance(spec, tuple) else _error(spec)
    return out


def _operation(e: RouteEntry, refs, defs) -> dict:
    doc = (e.handler.__doc__ or "").strip()
    op = {"operationId": e.name.replace(".", "_"), "summary": e.summary or doc.split("\n")[0] or e.name,
          "tags": [e.handler.__module__.rsplit(".", 1)[-1]],
          "x-roles": sorted(str(r) for r in e.roles), "x-public": e.public,
          "security": [] if e.public else [{"bearer": []}, {"session": []}],
          "parameters": _params(e.path_model, "path", refs, defs) + _params(e.query, "query", refs, defs),
          "responses": _success(e, refs) | _errors(e)}
    if doc:
        op["description"] = doc
    body = _request_body(e, refs)
    if body is not None:
        op["requestBody"] = body
    return op


def openapi_path(template: str) -> str:
    """aiohttp's ``{name:regex}`` as OpenAPI's ``{name}``."""
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", template)


def build_document(tables: Iterable[RouteTable]) -> dict:
    entries = [e for t in tables for e in t.entries]
    refs, top = models_json_schema(_inputs(entries), ref_template=REF)
    defs = top.get("$defs", {})
    paths: dict[str, dict] = {}
    for e in entries:
        paths.setdefault(openapi_path(e.path), {})[e.method.lower()] = _operation(e, refs, defs)
    return {"openapi": "3.1.0",
            "info": {"title": "Negahban", "version": VERSION,
                     "description": "Monitoring, incidents, ticket desk and ledger. Every error is JSON "
                                    "{error, field, reason}; timestamps are RFC 3339; lists take limit "
                                    "(at most 500) and page."},
            "servers": [{"url": "/"}], "paths": paths,
            "components": {"schemas": defs, "securitySchemes": SECURITY}}

