"""Reading request bodies: bounded size, JSON only, validated by a pydantic model."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from monitor.errors import InvalidInput, NotFound
from tickets.ledger.money import valid_id

__all__ = ["read_model", "read_body", "dumps", "json_response", "int_param", "parse_json", "MAX_BODY",
           "BodyTooLarge"]

MAX_BODY = 1024 * 1024
_CHUNK = 64 * 1024


class BodyTooLarge(InvalidInput):
    """A body over the route's limit: answered 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__("<body>", f"larger than {max_bytes} bytes")
M = TypeVar("M", bound=BaseModel)


def _json_default(value):
    """Timestamps as RFC 3339 (``2026-01-02T03:04:05+00:00``): a stored time without a zone is UTC."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


def _field(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"]) or "<body>"


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): valid JSON, but alone it is no character, and a database
# that stores UTF-8 (PostgreSQL) cannot take it: such a body must be refused here, not fail at the INSERT.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def parse_json(raw: bytes):
    """``raw`` as JSON; nesting too deep for the parser, or text that is not Unicode, is refused like any other
    invalid body."""
    try:
        value = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("<body>", f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("<body>", "JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("<body>", "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff): not text") \
                from None
    return value


async def read_body(request: web.Request, max_bytes: int = MAX_BODY) -> bytes:
    """The whole body, however many pieces it arrives in, up to ``max_bytes`` (else ``BodyTooLarge``).

    ``StreamReader.read(n)`` returns what has arrived so far, not ``n`` bytes: reading until EOF is the only
    way to get a body sent slowly or in several TCP segments."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(max_bytes)
    chunks, size = [], 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_model(request: web.Request, model: type[M], max_bytes: int = MAX_BODY) -> M:
    """Parse the JSON body into ``model``; any problem is an ``InvalidInput`` naming the field."""
    data = parse_json(await read_body(request, max_bytes))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidInput(_field(err), err["msg"]) from None


def json_response(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def int_param(request: web.Request, name: str) -> int:
    """A numeric path parameter; anything else is answered as a missing row."""
    raw = request.match_info[name]
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not valid_id(value):  # out of range cannot name a row either (and would overflow a BIGINT bind)
        raise NotFound(f"{name} {raw!r}")
    return value
