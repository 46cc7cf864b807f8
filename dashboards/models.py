"""Tables the ``dashboards`` package owns: web sessions and login attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db.base import Base, BigId, UTCDateTime, fk_id

__all__ = ["WebSession", "LoginAttempt"]


class WebSession(Base):
    """A signed-in browser. Only the SHA-256 digest of the session id is stored: the id is 256-bit random,
    so a leaked table cannot be replayed as cookies."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = fk_id("users.id")
    # Per-session CSRF token, sent in every form and compared in constant time.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")


class LoginAttempt(Base):
    """One try at the login form, kept for rate limiting and audit."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),
                      Index("ix_login_attempts_ip_at", "ip", "at"))
