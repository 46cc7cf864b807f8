"""Rule 12: the Persian knowledge base, its staff editing and its search.

Search scoring, over :func:`tickets.tokens.tokens` (normalised, stop-words removed): for every distinct
query token, a title token that equals it scores 2, a body token that equals it scores 1; a token that
only shares a prefix of at least 3 letters with it (``سرورم`` / ``سرور``: Persian glues suffixes on) scores
half of that. The sum is divided by the number of distinct query tokens, so a score is comparable between
short and long drafts (0 = nothing in common, 3 = every word in the title and the body). Articles scoring
at least ``MIN_SCORE`` are returned, best first. Articles are scored in Python: a knowledge base holds
hundreds of articles, not millions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import STAFF, Principal, require_role
from monitor.errors import NotFound
from tickets.models import KbArticle
from tickets.persian import require_persian
from tickets.tokens import tokens

__all__ = ["MIN_SCORE", "score", "search", "suggest", "create_article", "update_article", "delete_article",
           "ScoredArticle", "article_json", "list_articles"]

MIN_SCORE = 0.5


@dataclass(frozen=True)
class ScoredArticle:
    article: KbArticle
    score: float


def _match(word: str, words: set[str]) -> float:
    if word in words:
        return 1.0
    for other in words:
        short, long_ = sorted((word, other), key=len)
        if len(short) >= 3 and long_.startswith(short):
            return 0.5
    return 0.0


def score(query: str, title: str, body: str) -> float:
    wanted = set(tokens(query))
    if not wanted:
        return 0.0
    in_title, in_body = set(tokens(title)), set(tokens(body))
    return sum(2 * _match(w, in_title) + _match(w, in_body) for w in wanted) / len(wanted)


async def search(session: AsyncSession, query: str, *, limit: int = 5, min_score: float = MIN_SCORE,
                 department: str | None = None) -> list[ScoredArticle]:
    stmt = select(KbArticle).where(KbArticle.published.is_(True))
    found = []
    for article in (await session.execute(stmt)).scalars():
        if department and article.department not in (None, department):
            continue
        s = score(query, article.title, article.body)
        if s >= min_score:
            found.append(ScoredArticle(article, round(s, 3)))
    found.sort(key=lambda f: (-f.score, f.article.id))
    return found[:limit]


async def suggest(session: AsyncSession, draft: dict, limit: int = 5) -> list[ScoredArticle]:
    """Articles matching a ticket draft's subject and body (shown before the ticket is submitted)."""
    text = f"{draft.get('subject') or ''}\n{draft.get('body') or ''}"
    return await search(session, text, limit=limit, department=draft.get("department"))


def article_json(article: KbArticle, score_: float | None = None) -> dict:
    out = {"id": article.id, "title": article.title, "body": article.body, "department": article.department,
           "published": article.published, "updated_at": article.updated_at.isoformat()}
    if score_ is not None:
        out["score"] = score_
    return out


async def list_articles(sm: async_sessionmaker, principal: Principal) -> list[KbArticle]:
    """Every article for staff; published ones for customers."""
    stmt = select(KbArticle).order_by(KbArticle.id)
    if not principal.is_staff:
        stmt = stmt.where(KbArticle.published.is_(True))
    async with sm() as session:
        return list((await session.execute(stmt)).scalars())


async def create_article(sm: async_sessionmaker, principal: Principal, *, title: str, body: str,
                         department: str | None = None, published: bool = True, now: datetime) -> KbArticle:
    require_role(principal, STAFF)
    article = KbArticle(title=require_persian(title, "title"), body=require_persian(body, "body"),
                        department=department, published=published, updated_by_id=principal.user_id,
                        updated_at=now)
    async with sm.begin() as session:
        session.add(article)
    return article


async def update_article(sm: async_sessionmaker, principal: Principal, article_id: int, *, now: datetime,
                         **changes) -> KbArticle:
    require_role(principal, STAFF)
    for name in ("title", "body"):
        if name in changes:
            changes[name] = require_persian(changes[name], name)
    async with sm.begin() as session:
        article = await session.get(KbArticle, article_id)
        if article is None:
            raise NotFound(f"article {article_id}")
        for name in ("title", "body", "department", "published"):
            if name in changes:
                setattr(article, name, changes[name])
        article.updated_by_id, article.updated_at = principal.user_id, now
    return article


async def delete_article(sm: async_sessionmaker, principal: Principal, article_id: int) -> None:
    require_role(principal, STAFF)
    async with sm.begin() as session:
        article = await session.get(KbArticle, article_id)
        if article is None:
            raise NotFound(f"article {article_id}")
        await session.delete(article)
