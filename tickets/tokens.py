"""Search form of Persian text, shared by the knowledge base and duplicate detection.

``search_form`` applies :func:`tickets.persian.normalise`, then folds what spelling variants differ in:
diacritics and tatweel removed, ``أ إ آ`` -> ``ا``, ``ة`` -> ``ه``, ``ى`` -> ``ی``, ``ؤ`` -> ``و``, the
zero-width non-joiner becomes a space (so ``می‌کند`` and ``می کند`` give the same tokens), Latin lower-cased.
``tokens`` splits it into words, drops stop-words (Persian function words, which say nothing about the
subject) and strips the plural suffixes ``ها``/``های``/``هایی`` from longer words.
"""

from __future__ import annotations

import re

from tickets.persian import normalise

__all__ = ["search_form", "tokens", "STOP_WORDS"]

_HARAKAT = re.compile("[\u064B-\u065F\u0670\u0640]")
_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ی", "ؤ": "و", "ئ": "ی",
                       "\u200c": " ", "\u200f": " ", "\u200e": " "})
_WORD = re.compile(r"[^\W_]+", re.U)

STOP_WORDS = frozenset(
    "و در به از که را این آن با برای تا یا هم اما ولی اگر پس چون است هست نیست بود شد شده شود می نمی "
    "من ما شما او ایشان خود یک هر همه هیچ چه چرا کی کجا چطور چگونه باید نباید دارد ندارد دارم داریم "
    "کرد کند کنم کنید کرده کردم کنیم لطفا سلام ممنون مرسی با تشکر خیلی نیز روی بر بی ها های ای ام ست "
    "the a an is are to of and or in on for my".split())
_PLURALS = ("هایی", "های", "ها")


def search_form(text: str) -> str:
    return _HARAKAT.sub("", normalise(text)).translate(_FOLD).lower()


def _stem(word: str) -> str:
    for suffix in _PLURALS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    """Content words of ``text`` in search form, in order, stop-words removed."""
    return [_stem(w) for w in _WORD.findall(search_form(text)) if w not in STOP_WORDS]
