"""Rule 16: an open ticket from the same customer, about the same service and department, with similar text.

Similarity is the Dice coefficient of character trigram sets. Each text goes through
:func:`tickets.tokens.tokens` (normalised, stop-words and plural suffixes removed); every token is padded
with spaces and cut into overlapping 3-character grams; ``dice = 2 |A ∩ B| / (|A| + |B|)``. Character
grams, not whole words, because Persian attaches pronouns and suffixes to words (``سرورم``, ``سرورمان``,
``سایتم``) and paraphrases share stems more than words. Subject and body are compared together.

The threshold, 0.40, was tuned on the paraphrase and different-request pairs in
``tests/test_tickets_duplicates.py``: paraphrases of one request score 0.55-1.0, different requests about
the same service score under 0.25.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import OPEN_STATUSES, Ticket
from tickets.tokens import tokens

__all__ = ["THRESHOLD", "grams", "similarity", "find_duplicate"]

THRESHOLD = 0.40


def grams(text: str) -> set[str]:
    out: set[str] = set()
    for token in tokens(text):
        padded = f" {token} "
        out.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return out


def similarity(a: str, b: str) -> float:
    ga, gb = grams(a), grams(b)
    if not ga or not gb:
        return 0.0
    return 2 * len(ga & gb) / (len(ga) + len(gb))


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
