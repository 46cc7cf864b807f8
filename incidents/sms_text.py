"""How long an SMS is, and how to make a notice fit.

A message whose every character is in the GSM 03.38 default alphabet is sent in 7-bit parts (160 characters
alone, 153 per part when concatenated; the extension characters count twice). Anything else, Persian
included, is sent as UCS-2: 70 UTF-16 units alone, 67 per part when concatenated (the other units carry the
concatenation header). Operators bill per part, and a long notice can arrive out of order, so a notice is
shortened to one part where possible and never beyond a configured number of parts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SmsLength", "sms_length", "fit_sms"]

# GSM 03.38 default alphabet (basic set) and the extension table (escape + one septet: two units each).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class SmsLength:
    encoding: str  # "gsm7" or "ucs2"
    units: int     # septets (gsm7) or UTF-16 code units (ucs2)
    parts: int


def sms_length(text: str) -> SmsLength:
    """The encoding, length in units and number of parts ``text`` takes as one SMS (0 parts when empty)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        units = sum(2 if ch in _GSM_EXTENSION else 1 for ch in text)
        return SmsLength("gsm7", units, _parts(units, 160, 153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsLength("ucs2", units, _parts(units, 70, 67))


def _parts(units: int, single: int, per_part: int) -> int:
    if units == 0:
        return 0
    return 1 if units <= single else -(-units // per_part)


def _cut(text: str, max_parts: int) -> str:
    """The longest prefix of ``text`` (on a word boundary where there is one) that, with an ellipsis,
    fits in ``max_parts``."""
    ellipsis = "..." if sms_length(text).encoding == "gsm7" else "…"
    lo, hi = 0, len(text)
    while lo < hi:  # the largest n with prefix(n) + ellipsis within max_parts
        mid = (lo + hi + 1) // 2
        if sms_length(text[:mid].rstrip() + ellipsis).parts <= max_parts:
            lo = mid
        else:
            hi = mid - 1
    head = text[:lo]
    space = head.rfind(" ")
    if space > lo // 2:
        head = head[:space]
    return head.rstrip() + ellipsis


def fit_sms(body: str, shorter: Iterable[str] = (), *, max_parts: int = 1) -> str:
    """The text to send for a notice: the full ``body`` if it takes one part; else the first of the
    ``shorter`` forms (most informative first) that takes one part; else the body itself if it fits in
    ``max_parts``; else the shortest form cut, with an ellipsis, to ``max_parts``. Never more than
    ``max_parts`` parts."""
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    candidates = [body, *(s for s in shorter if s and s.strip())]
    for text in candidates:
        if sms_length(text).parts <= 1:
            return text
    if sms_length(body).parts <= max_parts:
        return body
    shortest = min(candidates, key=lambda t: sms_length(t).units)
    return shortest if sms_length(shortest).parts <= max_parts else _cut(shortest, max_parts)
