"""Accounts and access: users with roles, hashed API tokens, argon2 passwords, and the one helper through
which every customer-facing query is scoped to the caller's customer."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
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
from monitor.errors import AccessDenied, InvalidInput, NotFound
from monitor.models import Customer

__all__ = [
    "Role", "STAFF", "ALL_ROLES", "User", "ApiToken", "Principal", "hash_password", "verify_password",
    "PasswordVerifier", "hash_password_async",
    "new_token", "token_digest", "principal_for_token", "scope", "require_role", "create_user",
    "issue_token", "AccountRefusal", "add_user", "list_users", "list_tokens", "change_role", "set_active",
    "revoke_token", "issue_named_token", "MIN_PASSWORD",
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


# Administering accounts (the admin's pages and API). Each function takes the acting admin's principal and a
# session whose transaction the caller commits; a refusal is an ``AccountRefusal`` naming the field, with a
# code the pages turn into Persian, and nothing is written.

MIN_PASSWORD = 10
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,99}")


class AccountRefusal(InvalidInput):
    """An account change that is refused: ``code`` says why (``last_admin``, ``self_deactivation``,
    ``customer_unverified``, ...), ``field`` names the form field."""

    def __init__(self, code: str, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.code = code


async def _customer_for(session: AsyncSession, role: Role, customer_id: int | None) -> int | None:
    """The customer a user of ``role`` belongs to: a verified customer for a customer user (rule 3: support
    belongs only to a verified owner), none for staff."""
    if role is not Role.CUSTOMER:
        if customer_id is not None:
            raise AccountRefusal("staff_with_customer", "customer_id", "a staff user belongs to no customer")
        return None
    if customer_id is None:
        raise AccountRefusal("customer_required", "customer_id", "a customer user must name its customer")
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise AccountRefusal("customer_unknown", "customer_id", f"no such customer {customer_id}")
    if not customer.verified:
        raise AccountRefusal("customer_unverified", "customer_id", f"customer {customer.name!r} is not verified")
    return customer_id


async def add_user(session: AsyncSession, actor: Principal, username: str, role: Role | str, *,
                   customer_id: int | None = None, password: str | None = None, display_name: str = "",
                   email: str | None = None) -> tuple[User, str | None]:
    """Create a user as ``actor`` (an admin). Without ``password`` one is generated and returned (to be shown
    once); with one, ``None`` is returned in its place."""
    require_role(actor, {Role.ADMIN})
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise AccountRefusal("username_invalid", "username",
                             "2 to 100 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    try:
        role = Role(role)
    except ValueError:
        raise AccountRefusal("role_unknown", "role", f"{role!r} is not one of {', '.join(Role)}") from None
    customer_id = await _customer_for(session, role, customer_id)
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    elif len(password) < MIN_PASSWORD:
        raise AccountRefusal("password_short", "password", f"at least {MIN_PASSWORD} characters")
    if (await session.execute(select(User.id).where(User.username == username))).first() is not None:
        raise AccountRefusal("username_taken", "username", f"user {username!r} already exists")
    user = await create_user(session, username, role, password=password, customer_id=customer_id,
                             display_name=display_name.strip(), email=(email or "").strip() or None)
    return user, generated


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.username))).scalars())


async def list_tokens(session: AsyncSession, user_id: int) -> list[ApiToken]:
    """A user's tokens, newest first; the rows carry only the digest, never the token."""
    return list((await session.execute(select(ApiToken).where(ApiToken.user_id == user_id)
                                       .order_by(ApiToken.id.desc()))).scalars())


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id}")
    return user


async def _refuse_losing_the_last_admin(session: AsyncSession, user: User, code: str, field: str) -> None:
    """Refuse a change that leaves no active admin (nobody could administer accounts any more)."""
    if user.role != Role.ADMIN or not user.active:
        return
    # Every active admin's row is locked, in one order: of two admins demoting each other at once on
    # PostgreSQL, the second waits for the first and then sees it gone, instead of both passing.
    admins = (await session.execute(select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True))
                                    .order_by(User.id).with_for_update())).scalars().all()
    if not [i for i in admins if i != user.id]:
        raise AccountRefusal(code, field, "this is the last active admin")


async def change_role(session: AsyncSession, actor: Principal, user_id: int, role: Role | str, *,
                      customer_id: int | None = None) -> User:
    """Give ``user_id`` the role ``role`` (a customer user names a verified customer); refused when it takes
    away the last active admin."""
    require_role(actor, {Role.ADMIN})
    user = await _user(session, user_id)
    try:
        role = Role(role)
    except ValueError:
        raise AccountRefusal("role_unknown", "role", f"{role!r} is not one of {', '.join(Role)}") from None
    if role is not Role.ADMIN:
        await _refuse_losing_the_last_admin(session, user, "last_admin", "role")
    user.role, user.customer_id = role.value, await _customer_for(session, role, customer_id)
    await session.flush()
    return user


async def set_active(session: AsyncSession, actor: Principal, user_id: int, active: bool) -> User:
    """Deactivate (no login, no token works) or reactivate ``user_id``; an admin cannot deactivate
    themselves, and the last active admin cannot be deactivated."""
    require_role(actor, {Role.ADMIN})
    user = await _user(session, user_id)
    if not active:
        if user.id == actor.user_id:
            raise AccountRefusal("self_deactivation", "active", "an admin cannot deactivate themselves")
        await _refuse_losing_the_last_admin(session, user, "last_admin", "active")
    user.active = active
    await session.flush()
    return user


async def revoke_token(session: AsyncSession, actor: Principal, user_id: int, token_id: int,
                       now: datetime) -> bool:
    """Revoke ``user_id``'s token ``token_id``; True when it was live (revoking twice is harmless)."""
    require_role(actor, {Role.ADMIN})
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(f"token {token_id} of user {user_id}")
    if token.revoked_at is not None:
        return False
    token.revoked_at = now
    await session.flush()
    return True


async def issue_named_token(session: AsyncSession, actor: Principal, user_id: int, name: str,
                            now: datetime) -> str:
    """As an admin, issue a token named ``name`` for an active user; the token is returned in clear once."""
    require_role(actor, {Role.ADMIN})
    user = await _user(session, user_id)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountRefusal("token_name", "name", "a token needs a name of up to 100 characters")
    if not user.active:
        raise AccountRefusal("inactive_user", "name", "the user is deactivated")
    return await issue_token(session, user.id, name, now)
