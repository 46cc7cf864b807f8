"""What the web app is given by the composition root (no module singletons)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker

from dashboards.pdf import PdfRenderer
from monitor.accounts import PasswordVerifier
from monitor.clock import Clock
from monitor.settings import logo_type

__all__ = ["WebDeps", "Company", "DEPS", "SESSION_LOOKUP", "parse_channels"]


def parse_channels(text: str) -> list[tuple[str, str]]:
    """``"تلفن: 021-1234; تلگرام: @x"`` -> ``[("تلفن", "021-1234"), ("تلگرام", "@x")]`` (validated by Settings)."""
    pairs = (part.partition(":") for part in text.split(";") if part.strip())
    return [(label.strip(), value.strip()) for label, _, value in pairs]


@dataclass(frozen=True, slots=True)
class Company:
    """The company as customers see it (``NEGAHBAN_COMPANY_NAME``, ``NEGAHBAN_COMPANY_LOGO``): its name
    ("" means the product's own) and its logo's bytes, read once, with the type its first bytes tell."""

    name: str = ""
    logo: bytes = b""
    logo_type: str = ""

    @classmethod
    def of(cls, name: str, logo: Path | None) -> Company:
        if logo is None:
            return cls(name)
        return cls(name, logo.read_bytes(), logo_type(logo))

    @property
    def logo_url(self) -> str:
        """The logo's address, naming its content so that a new logo is fetched at once ("" for none)."""
        return f"/status/logo?v={hashlib.sha256(self.logo).hexdigest()[:16]}" if self.logo else ""


@dataclass
class WebDeps:
    sessionmaker: async_sessionmaker
    clock: Clock
    registry: CollectorRegistry
    # Readiness: set by the service once migrations ran and the scheduler started.
    ready: dict[str, bool] = field(default_factory=lambda: {"ready": False})
    cookie_secure: bool = True
    # Services of other packages the routes call (runner, incident engine, desk, ...), by name.
    services: dict[str, Any] = field(default_factory=dict)
    # /metrics: the per-monitor series (``dashboards.metrics.ProbeExposition``) and the database-backed
    # collectors (``dashboards.collectors.MetricsHub``), both optional.
    probe_exposition: Any = None
    metrics_hub: Any = None
    # The whole /metrics body is rendered at most once per this many seconds (``dashboards.metrics_page``).
    metrics_cache_seconds: float = 2.0
    # Rule 18: other ways to reach support, shown on the status page: (label, value) pairs in Persian.
    support_channels: list[tuple[str, str]] = field(default_factory=list)
    # The site's public address for links in mails (``Settings.public_url``); None: the request's own.
    public_url: str | None = None
    company: Company = field(default_factory=Company)
    # Password checks run in a thread and are counted (the login throttle bounds them).
    passwords: PasswordVerifier = field(default_factory=PasswordVerifier)
    # Bounded PDF rendering: a few Chromium processes at once, a short queue, 503 past it.
    pdf: PdfRenderer = field(default_factory=PdfRenderer)


DEPS = web.AppKey("negahban_deps", WebDeps)
# Set by the web-login module: ``async (request) -> Principal | None`` from a session cookie.
SESSION_LOOKUP = web.AppKey("negahban_session_lookup", object)
