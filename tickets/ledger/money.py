"""The bounds of money and row ids, shared by the services and the web layer's request models.

10^15 rials is far above any real charge, and keeps any sum of a customer's entries inside a signed 64-bit
column (2^63 is about 9.2 * 10^18), so a balance can never overflow. Row ids are ``BIGINT`` keys.
"""

from __future__ import annotations

__all__ = ["MAX_RIALS", "MAX_ID", "valid_id"]

MAX_RIALS = 10**15
MAX_ID = 2**63 - 1


def valid_id(value) -> bool:
    """Whether ``value`` is an integer that can name a row (a bool is not)."""
    return type(value) is int and 1 <= value <= MAX_ID
