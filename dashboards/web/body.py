"""Reading request bodies: bounded size, JSON only, validated by a pydantic model."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from monitor.errors import InvalidInput, NotFound

__all__ = ["read_model", "dumps", "json_response", "int_param", "MAX_BODY"]

MAX_BODY = 1024 * 1024
M = TypeVar("M", bound=BaseModel)


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def _field(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"]) or "<body>"


async def read_model(request: web.Request, model: type[M], max_bytes: int = MAX_BODY) -> M:
    """Parse the JSON body into ``model``; any problem is an ``InvalidInput`` naming the field."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise InvalidInput("<body>", f"larger than {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise InvalidInput("<body>", f"larger than {max_bytes} bytes")
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("<body>", f"not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidInput(_field(err), err["msg"]) from None


def json_response(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def int_param(request: web.Request, name: str) -> int:
    """A numeric path parameter; anything else is answered as a missing row."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFound(f"{name} {request.match_info[name]!r}") from None
