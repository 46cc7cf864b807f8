"""Strict field types for every request model, so one bound holds on every route.

Strict: a JSON ``true``, ``"5000"`` or ``5000.0`` is refused, never coerced into rials or an id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, Strict

from tickets.ledger.money import MAX_ID, MAX_RIALS

__all__ = ["Rials", "RowId", "Text", "Day", "Moment", "AwareMoment"]

Rials = Annotated[int, Strict(), Field(ge=1, le=MAX_RIALS)]
RowId = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]


def Text(max_length: int, min_length: int = 0):  # noqa: N802 - used as a type, like pydantic's constr
    """A string bounded to its column (a longer one is a 400, not a database error)."""
    return Annotated[str, Strict(), Field(min_length=min_length, max_length=max_length)]


# Calendar days and moments a person can mean: the Jalali calendar and the holiday tables have a range, and a
# year like 0087 or 9999 is a typing slip that would fail deep inside them (a 500), not a date to store.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
_MOMENTS = Field(ge=datetime(1900, 1, 1, tzinfo=UTC), le=datetime(2199, 12, 31, tzinfo=UTC))
Moment = Annotated[datetime, _MOMENTS]
AwareMoment = Annotated[AwareDatetime, _MOMENTS]
