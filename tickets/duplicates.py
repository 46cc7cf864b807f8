"""Rule 16: a ticket that asks again what an open ticket of the same customer, service and department asks.

Which tickets are compared (:func:`find_duplicate`): only the customer's *open* tickets (open, answered,
waiting on the customer) with the same department and the same service (or, for a ticket about no service,
those about no service). A closed ticket is never a duplicate target: rule 15 wants a new ticket for a new
request, and a closed one cannot be reopened. A ticket about another service or in another department is
never a duplicate, however alike the words.

How alike two texts are (:func:`similarity`, subject and body together, 0..1):

1. **Fold** (:func:`comparison_form`): :func:`tickets.tokens.search_form` (presentation forms, ``ي ك`` ->
   ``ی ک``, diacritics and tatweel removed, ``أ إ آ`` -> ``ا``, ``ة`` -> ``ه``, ZWNJ -> space, Latin lower
   case), then the other heh and yeh forms other keyboards give (``ۀ ھ ہ`` -> ``ه``), Persian and
   Arabic-Indic digits -> ASCII (``۸۰`` = ``٨٠`` = ``80``), and a few spellings of one hosting term folded
   to one word (:data:`EQUIVALENTS`: ``بکاپ`` = ``پشتیبان``, ``پایگاه داده`` = ``دیتابیس``, ...).
2. **Content words** (:func:`content_words`): words minus :data:`STOP_WORDS`, which are the search
   stop-words plus what every ticket says whatever its problem: greetings and courtesy (``سلام``, ``لطفا``,
   ``ممنون``), the setting (``سرور``, ``سایت``, ``سرویس``, ``مشکل``) and the time (``امروز``, ``صبح``).
   Left in, they made two different problems on one server look alike.
3. **Word overlap**: a word of one text matches a word of the other when they are equal or one is the other
   plus a short suffix (``سرورم``/``سرور``, ``قطعی``/``قطع``, ``پرداختم``/``پرداخت``: Persian attaches
   pronouns, ``ی`` and ``ها`` to the word); the score is the share of all words that found a match.
4. **Character trigrams** of the content words (each padded with spaces), Dice coefficient
   ``2 |A ∩ B| / (|A| + |B|)``: catches stems the word rule misses (``بارگذاری``/``بارگذاری‌ها``,
   ``کنترلپنل``/``کنترل پنل``).

``similarity = WORD_WEIGHT * words + CHAR_WEIGHT * trigrams``; a duplicate scores at least :data:`THRESHOLD`.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import OPEN_STATUSES, Ticket
from tickets.tokens import STOP_WORDS as SEARCH_STOP_WORDS
from tickets.tokens import search_form

__all__ = ["THRESHOLD", "WORD_WEIGHT", "CHAR_WEIGHT", "STOP_WORDS", "EQUIVALENTS", "comparison_form",
           "content_words", "similarity", "find_duplicate"]

# Measured on the table in tests/duplicate_pairs.py (15 paraphrase pairs, 14 different-request pairs;
# `python tests/duplicate_pairs.py` prints every score and the weight grid). On a 0.05 grid of weights the
# gap between the lowest paraphrase and the highest different request is widest at word 0.90 (0.247); from
# 0.80 to 0.95 it stays within 0.01 of that, and of those 0.80 keeps the largest share for trigrams, which
# catch misspellings the table cannot list (بارگزاری/بارگذاری). There paraphrases score 0.587 and up and
# different requests 0.349 and below; the threshold is the middle of that gap, so a rewording a little
# further away, or a different request a little closer, than any in the table still falls on its side.
WORD_WEIGHT = 0.8
CHAR_WEIGHT = 0.2
THRESHOLD = 0.47

STOP_WORDS = SEARCH_STOP_WORDS | frozenset(
    # greetings and courtesy
    "سلام درود لطفا خواهشمند خواهشمندم خواهش ممنون ممنونم متشکر متشکرم تشکر باتشکر سپاس سپاسگزارم مرسی عزیز "
    # urgency
    "فوری سریع ضروری زودتر سریعتر "
    # the setting every ticket shares
    "سرور سرورم سرورمان سایت سایتم سایتمان سرویس سرویسم مشکل مشکلی درخواست وب "
    # time
    "امروز دیروز صبح ظهر عصر شب الان هنوز ساعت مدام مرتب همیشه "
    # light verbs and copulas (the search list has the commonest)
    "شد شده شدن شوم شوند شود میشود میشوند نمیشود نمیشوند هستند هستیم بودن نشده نشد کنند کردن "
    "داده دهد دهید ایم اید اند هایی".split())

# One hosting term, several spellings: each key (a word, or words separated by one space) is replaced by
# its value before words are compared.
EQUIVALENTS = {
    "بکاپ": "پشتیبان", "backup": "پشتیبان",
    "پایگاه داده": "دیتابیس", "database": "دیتابیس",
    "cpu": "پردازنده", "سی پی یو": "پردازنده",
    "ram": "رم",
    "email": "ایمیل", "mail": "ایمیل", "رایانامه": "ایمیل",
    "کنترلپنل": "کنترل پنل", "cpanel": "کنترل پنل",
    "وبسرور": "وب", "webserver": "وب",
    "ای پی": "ip",  # keys are in comparison form: "آی" is already "ای" there
    "صد": "100",
    "جواب": "پاسخ",
}

_FOLD = str.maketrans({"ۀ": "ه", "ھ": "ه", "ہ": "ه", "ە": "ه", "ې": "ی", "ۍ": "ی",
                       **{p: str(d) for d, p in enumerate("۰۱۲۳۴۵۶۷۸۹")}})
_WORD = re.compile(r"[^\W_]+", re.U)
_TERMS = "|".join(sorted(map(re.escape, EQUIVALENTS), key=len, reverse=True))  # longest first
_EQUIVALENT = re.compile(f"(?<= )(?:{_TERMS})(?= )")  # whole words only: "صد" but not "درصد"
_MAX_SUFFIX = 3   # "ام", "های", "مان": the longest suffix a word may carry and still match its stem
_MIN_STEM = 3     # shorter words ("پر", "رم") match only themselves


def comparison_form(text: str) -> str:
    """``text`` folded for comparison: search form, heh/yeh variants, ASCII digits, one spelling per term."""
    words = " ".join(_WORD.findall(search_form(text).translate(_FOLD)))
    return _EQUIVALENT.sub(lambda m: EQUIVALENTS[m.group(0)], f" {words} ").strip()


def content_words(text: str) -> list[str]:
    """The words of ``text`` that say what the request is about, in order (see the module doc)."""
    return [w for w in comparison_form(text).split() if w not in STOP_WORDS]


def _same_word(a: str, b: str) -> bool:
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if short == long_:
        return True
    return len(short) >= _MIN_STEM and long_.startswith(short) and len(long_) - len(short) <= _MAX_SUFFIX


def _word_overlap(wa: set[str], wb: set[str]) -> float:
    matched = sum(any(_same_word(a, b) for b in wb) for a in wa) + sum(any(_same_word(b, a) for a in wa) for b in wb)
    return matched / (len(wa) + len(wb))


def _trigrams(words: set[str]) -> set[str]:
    return {f" {w} "[i:i + 3] for w in words for i in range(len(w))}


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b))


def similarity(a: str, b: str) -> float:
    """How alike two requests' texts are, 0..1 (see the module doc)."""
    wa, wb = set(content_words(a)), set(content_words(b))
    if not wa and not wb:  # nothing but courtesy and setting: alike only if it is the same text
        same = comparison_form(a) == comparison_form(b) != ""
        return 1.0 if same else 0.0
    if not wa or not wb:
        return 0.0
    return WORD_WEIGHT * _word_overlap(wa, wb) + CHAR_WEIGHT * _dice(_trigrams(wa), _trigrams(wb))


async def find_duplicate(session: AsyncSession, *, customer_id: int, service_id: int | None, department: str,
                         text: str, threshold: float = THRESHOLD) -> Ticket | None:
    """The most similar open ticket of the same customer, service and department, if similar enough."""
    stmt = select(Ticket).where(Ticket.customer_id == customer_id, Ticket.department == department,
                                Ticket.status.in_(OPEN_STATUSES))
    stmt = stmt.where(Ticket.service_id.is_(None) if service_id is None else Ticket.service_id == service_id)
    best, best_score = None, threshold
    for ticket in (await session.execute(stmt.order_by(Ticket.id))).scalars():
        score = similarity(text, f"{ticket.subject}\n{ticket.body}")
        if score >= best_score:
            best, best_score = ticket, score
    return best
