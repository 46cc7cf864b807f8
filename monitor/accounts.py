"""Accounts and access: users with roles, hashed API tokens, argon2 passwords, and the one helper through
which every customer-facing query is scoped to the caller's customer."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db.base import Base, BigId, UTCDateTime, fk_id
from monitor.errors import AccessDenied, InvalidInput

__all__ = [
    "Role", "STAFF", "ALL_ROLES", "User", "ApiToken", "Principal", "hash_password", "verify_password",
    "PasswordVerifier", "hash_password_async",
    "new_token", "token_digest", "principal_for_token", "scope", "require_role", "create_user",
]


class Role(enum.StrEnum):
    ADMIN = "admin"
    NOC = "noc"
    TECHNICIAN = "technician"
    FINANCE = "finance"
    CUSTOMER = "customer"


STAFF = frozenset({Role.ADMIN, Role.NOC, Role.TECHNICIAN, Role.FINANCE})
ALL_ROLES = frozenset(Role)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = fk_id("customers.id", nullable=True)
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiToken(Base):
    """An API token. Only its SHA-256 digest is stored: tokens are 256-bit random, so a slow hash adds
    nothing, and a fast one keeps every API request cheap."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = fk_id("users.id")
    name: Mapped[str] = mapped_column(String(100), default="")
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordVerifier:
    """Checks and hashes passwords off the event loop: one argon2 hash is tens of milliseconds of CPU, and a
    burst of logins on the loop would stall every other request (``/healthz`` included). ``checks`` counts
    the password checks made, which is what the login throttle bounds."""

    def __init__(self, verify: Callable[[str | None, str], bool] = verify_password) -> None:
        self._verify, self.checks = verify, 0

    async def verify(self, stored: str | None, password: str) -> bool:
        self.checks += 1
        return await asyncio.to_thread(self._verify, stored, password)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


TOKEN_PREFIX = "ngb_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking. A customer principal always carries its ``customer_id``."""

    user_id: int
    username: str
    role: Role
    customer_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.username, Role(user.role), user.customer_id)


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    row = (await session.execute(
        select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.digest == token_digest(token), ApiToken.revoked_at.is_(None), User.active.is_(True))
    )).scalar_one_or_none()
    return principal_of(row) if row else None


def require_role(principal: Principal, roles: frozenset[Role] | set[Role]) -> None:
    if principal.role not in roles:
        raise AccessDenied(f"role {principal.role} may not do this")


def scope(stmt, principal: Principal, customer_column):
    """Restrict ``stmt`` to the caller's own customer when the caller is a customer.

    Every customer-facing query goes through here: staff see everything, a customer sees only rows whose
    ``customer_column`` is their own customer.
    """
    if principal.role is Role.CUSTOMER:
        if principal.customer_id is None:
            raise AccessDenied("customer account without a customer")
        return stmt.where(customer_column == principal.customer_id)
    if principal.role not in STAFF:
        raise AccessDenied("unknown role")
    return stmt


async def create_user(session: AsyncSession, username: str, role: Role | str, *, password: str | None = None,
                      customer_id: int | None = None, display_name: str = "", email: str | None = None,
                      ) -> User:
    role = Role(role)
    if (role is Role.CUSTOMER) != (customer_id is not None):
        raise InvalidInput("customer_id", "a customer user belongs to exactly one customer; staff to none")
    if (await session.execute(select(User.id).where(User.username == username))).first() is not None:
        raise InvalidInput("username", f"user {username!r} already exists")
    user = User(username=username, role=role.value, customer_id=customer_id, display_name=display_name,
                email=email, password_hash=await hash_password_async(password) if password else None)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # created by someone else since the check above
        raise InvalidInput("username", f"user {username!r} already exists") from None
    return user


async def issue_token(session: AsyncSession, user_id: int, name: str, now: datetime) -> str:
    """Create a token for ``user_id`` and return it in clear (the only time it is seen)."""
    token = new_token()
    session.add(ApiToken(user_id=user_id, name=name, digest=token_digest(token), created_at=now))
    await session.flush()
    return token
