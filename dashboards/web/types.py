"""Strict field types for every request model, so one bound holds on every route.

Strict: a JSON ``true``, ``"5000"`` or ``5000.0`` is refused, never coerced into rials or an id.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from tickets.ledger.money import MAX_ID, MAX_RIALS

__all__ = ["Rials", "RowId", "Text"]

Rials = Annotated[int, Strict(), Field(ge=1, le=MAX_RIALS)]
RowId = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]


def Text(max_length: int, min_length: int = 0):  # noqa: N802 - used as a type, like pydantic's constr
    """A string bounded to its column (a longer one is a 400, not a database error)."""
    return Annotated[str, Strict(), Field(min_length=min_length, max_length=max_length)]
