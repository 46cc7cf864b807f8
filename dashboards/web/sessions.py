"""Web sessions and login: server-side sessions keyed by a digest, per-session CSRF tokens, rate-limited logins.

The rate limit is a pure function over recent attempts (``login_throttle``); the service functions take a
session factory and ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from dashboards.errors import LoginRefused, TooManyAttempts
from dashboards.models import LoginAttempt, WebSession
from monitor.accounts import PasswordVerifier, Principal, User, hash_password, principal_of

__all__ = ["Attempt", "RateLimit", "login_throttle", "login", "lookup_session", "logout", "LoginResult",
           "session_digest", "csrf_matches", "SESSION_TTL"]

log = logging.getLogger("negahban.web.login")
SESSION_TTL = timedelta(hours=12)
# Verified against when the username does not exist, so both answers take the same time.
_DUMMY_HASH = hash_password("negahban-no-such-user")


@dataclass(frozen=True, slots=True)
class Attempt:
    username: str
    ip: str
    at: datetime
    success: bool


@dataclass(frozen=True, slots=True)
class RateLimit:
    window: timedelta = timedelta(minutes=15)
    per_username: int = 5
    per_ip: int = 20


def _retry_after(failures: list[Attempt], limit: int, window: timedelta, now: datetime) -> int:
    oldest_counted = sorted(a.at for a in failures)[-limit]
    return max(1, int((oldest_counted + window - now).total_seconds()) + 1)


def login_throttle(attempts: Sequence[Attempt], username: str, ip: str, now: datetime,
                   limit: RateLimit = RateLimit()) -> int:
    """Return 0 if a login may be tried now, else the seconds until it may.

    Failures inside ``limit.window`` count against the username (only those after its last success) and
    against the address (all of them: one address guessing many usernames is the attack to stop).
    """
    recent = [a for a in attempts if now - limit.window < a.at <= now]
    user_rows = [a for a in recent if a.username == username]
    last_ok = max((a.at for a in user_rows if a.success), default=None)
    user_fail = [a for a in user_rows if not a.success and (last_ok is None or a.at > last_ok)]
    ip_fail = [a for a in recent if a.ip == ip and not a.success]
    waits = [_retry_after(rows, n, limit.window, now) for rows, n in
             ((user_fail, limit.per_username), (ip_fail, limit.per_ip)) if len(rows) >= n]
    return max(waits, default=0)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; as bytes, since ``compare_digest`` refuses a non-ASCII str (a forged field)."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class LoginResult:
    session_id: str
    csrf_token: str
    principal: Principal


async def _recent_attempts(s, username: str, ip: str, since: datetime, but: int) -> list[Attempt]:
    rows = (await s.execute(select(LoginAttempt).where(
        LoginAttempt.at > since, LoginAttempt.id != but,
        or_(LoginAttempt.username == username, LoginAttempt.ip == ip)))).scalars()
    return [Attempt(r.username, r.ip, r.at, r.success) for r in rows]


async def _serialise(s, username: str, ip: str) -> None:
    """Make concurrent attempts on one username or address take turns until they commit.

    PostgreSQL: transaction-scoped advisory locks, taken in a fixed order. SQLite has one writer: the attempt's
    INSERT, the transaction's first statement, waits for it (busy_timeout) before anything is read.
    """
    if s.bind.dialect.name == "postgresql":
        for key in sorted((f"login:user:{username}", f"login:ip:{ip}")):
            await s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


async def _reserve_attempt(sm: async_sessionmaker, username: str, ip: str, now: datetime,
                           limit: RateLimit) -> int:
    """Count the attempt as a failure before the password is checked, or raise ``TooManyAttempts``.

    Check and count are one transaction, so 40 parallel attempts cannot all see "4 failures so far"; the row
    turns into a success only once the password proved right.
    """
    async with sm.begin() as s:
        await _serialise(s, username, ip)
        row = LoginAttempt(username=username, ip=ip, at=now, success=False)
        s.add(row)
        await s.flush()
        wait = login_throttle(await _recent_attempts(s, username, ip, now - limit.window, row.id), username, ip,
                              now, limit)
        if wait:  # leaving the block by raising rolls the reservation back: a refused try is not a failure
            log.warning("login_throttled username=%s ip=%s retry_after_s=%s", username, ip, wait)
            raise TooManyAttempts(wait)
        return row.id


async def _check_password(sm: async_sessionmaker, passwords: PasswordVerifier, username: str,
                          password: str) -> User | None:
    async with sm() as s:
        user = (await s.execute(select(User).where(User.username == username))).scalar_one_or_none()
    ok = await passwords.verify(user.password_hash if user else _DUMMY_HASH, password)
    return user if ok and user is not None and user.active else None


async def login(sm: async_sessionmaker, username: str, password: str, ip: str, now: datetime,
                limit: RateLimit = RateLimit(), ttl: timedelta = SESSION_TTL,
                passwords: PasswordVerifier | None = None) -> LoginResult:
    """Check the password and open a session; raise ``TooManyAttempts`` or ``LoginRefused``."""
    username = username.strip().lower()
    attempt_id = await _reserve_attempt(sm, username, ip, now, limit)
    user = await _check_password(sm, passwords or PasswordVerifier(), username, password)
    if user is None:
        log.info("login_refused username=%s ip=%s", username, ip)
        raise LoginRefused("wrong username or password")
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with sm.begin() as s:
        await s.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(success=True))
        s.add(WebSession(digest=session_digest(session_id), user_id=user.id, csrf_token=csrf, created_at=now,
                         expires_at=now + ttl, ip=ip))
    log.info("login username=%s role=%s ip=%s", username, user.role, ip)
    return LoginResult(session_id, csrf, principal_of(user))


async def lookup_session(sm: async_sessionmaker, session_id: str, now: datetime
                         ) -> tuple[Principal, str] | None:
    """Return the principal and CSRF token of a live session, or None."""
    async with sm() as s:
        row = (await s.execute(
            select(User, WebSession.csrf_token).join(WebSession, WebSession.user_id == User.id)
            .where(WebSession.digest == session_digest(session_id), WebSession.expires_at > now,
                   User.active.is_(True)))).first()
    return (principal_of(row[0]), row[1]) if row else None


async def logout(sm: async_sessionmaker, session_id: str) -> None:
    async with sm.begin() as s:
        await s.execute(delete(WebSession).where(WebSession.digest == session_digest(session_id)))
