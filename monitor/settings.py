"""Settings, read in one place and validated at start-up.

Values come from ``NEGAHBAN_*`` environment variables and, optionally, from a YAML file named by
``NEGAHBAN_CONFIG_FILE`` (environment variables win). An invalid value raises ``SettingsError`` naming the
variable and the value, so start-up fails with one clear line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import SettingsError
from probes.allow import parse_networks

__all__ = ["Settings", "load_settings", "logo_type", "MAX_LOGO_BYTES"]

ENV_PREFIX = "NEGAHBAN_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database_url: str = "sqlite+aiosqlite:///negahban.db"
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["logfmt", "json"] = "logfmt"
    inventory_file: Path | None = None
    # Web sessions: cookies carry the Secure flag unless this is turned off for plain-HTTP development.
    cookie_secure: bool = True
    # Where the scheduler may start (False lets a process serve the web only).
    run_scheduler: bool = True
    # The total number of connections/queries the probe runner may have in flight.
    max_concurrent_probes: int = Field(2000, ge=1, le=100_000)
    # ICMP sockets: "auto" (raw as root, else datagram; start-up fails if neither opens), "privileged",
    # "unprivileged", or "off" (no ICMP monitors; for a deployment without the rights).
    icmp: Literal["auto", "privileged", "unprivileged", "off"] = "auto"
    # A PEM file of certificate authorities that HTTPS and TLS checks trust besides the system's (a company's
    # own CA for internal services); the file is read once at start-up.
    trust_ca_file: Path | None = None
    # Rule 18: other ways to reach support, shown on the public status page: "label: value; label: value".
    support_channels: str = ""
    # The site's address as visitors reach it (https://status.example.com), for the links in status-page
    # mails; unset, the address the visitor used is taken (fine behind no proxy, in development).
    public_url: str | None = None
    # Writes of results are batched; this bounds what a crash can lose.
    result_flush_seconds: float = Field(2.0, gt=0, le=60)
    # Self-check canaries, comma-separated: http(s)://..., tcp:HOST:PORT, icmp:HOST (see monitor.selfcheck).
    canaries: str = ""
    canary_interval_seconds: float = Field(5.0, gt=0, le=300)
    # Failed checks are kept raw (with their messages) this long; rollups keep the rest.
    raw_result_days: float = Field(7.0, gt=0, le=3650)
    # The event loop of ``negahban serve``: uvloop (default) or the standard asyncio loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # /metrics is rendered at most once per this many seconds; scrapes in between get the same text (keep it
    # below Prometheus' scrape interval).
    metrics_cache_seconds: float = Field(2.0, ge=0, le=60)
    # How often the scheduler looks for added, changed, paused or removed monitors.
    reload_seconds: float = Field(10.0, gt=0, le=3600)
    # Several engine nodes on one PostgreSQL (monitor.leases): this node's name, unique among them (empty: the
    # single-node default, every monitor checked here). A node's monitors move to the others within
    # ``lease_seconds`` (plus a heartbeat) of its last renewal; ``shards`` is the unit they move by.
    node_name: str = Field("", max_length=100, pattern=r"^[A-Za-z0-9_.:-]*$")
    lease_seconds: float = Field(15.0, ge=3, le=600)
    shards: int = Field(64, ge=1, le=4096)

    # Heartbeat monitors: how often silence is looked for, and the pings allowed per minute at /hb/.
    heartbeat_sweep_seconds: float = Field(15.0, gt=0, le=300)
    heartbeat_pings_per_token_per_minute: int = Field(20, ge=1, le=100_000)
    heartbeat_pings_per_address_per_minute: int = Field(300, ge=1, le=1_000_000)

    # Incidents: a recovery resolves an incident once the cause stayed up this long (flaps keep it open).
    incident_recovery_hold_seconds: float = Field(180.0, ge=0, le=86_400)
    escalation_policy: str = "noc"
    # Alertmanager: base URL for reconciliation (None: no reconciliation) and the severity label.
    alertmanager_url: str | None = None
    # blackbox_exporter's /probe: its modules (a blackbox.yml) and the non-public networks it may reach.
    blackbox_config: str | None = None
    probe_allow: str = ""
    alertmanager_severity_label: str = "severity"
    alertmanager_service_label: str = "service"
    # Notification channels: SMTP for e-mail, an HTTP gateway for SMS (POST JSON {to_field, text_field}).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_sender: str = "negahban@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sms_gateway_url: str | None = None
    sms_to_field: str = "to"
    sms_text_field: str = "text"
    # The generic SMS gateway's request: POST or GET, the fields as a JSON body, a form body or the query.
    sms_method: Literal["POST", "GET"] = "POST"
    sms_encoding: Literal["json", "form", "query"] = "json"
    # An SMS is shortened to one part where possible and never sent in more than this many parts.
    sms_max_parts: int = Field(2, ge=1, le=10)
    # Kavenegar (https://kavenegar.com/rest.html) and Ghasedak (https://ghasedak.me/docs): keys and lines.
    kavenegar_api_key: SecretStr | None = None
    kavenegar_sender: str = ""
    kavenegar_url: str = "https://api.kavenegar.com"
    ghasedak_api_key: SecretStr | None = None
    ghasedak_line_number: str = ""
    ghasedak_url: str = "https://api.ghasedak.me"
    # Telegram and Bale bots (Bale's bot API is Telegram's, at its own base URL).
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    bale_bot_token: SecretStr | None = None
    bale_api_url: str = "https://tapi.bale.ai"
    # PagerDuty Events API v2 (routing keys are per channel) and the source its alerts name.
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_source: str = "negahban"
    # Webhooks are signed (X-Negahban-Signature, HMAC-SHA256) when this secret is set.
    webhook_signing_secret: SecretStr | None = None
    # The company as customers see it: its name on the status page and in every page's title (Persian, as
    # customers read it; unset: the product's name), and its logo, an image file read once at start-up
    # (PNG, JPEG, GIF, WebP or SVG, at most 512 KiB; its type is told by its first bytes, not its name).
    company_name: str = Field("", max_length=100)
    company_logo: Path | None = None
    # Status-page webhooks (visitors' URLs, signed with keys derived from the secret above, so offered only
    # when it is set) reach public addresses only, and these networks besides ("10.0.0.0/8, 127.0.0.0/8").
    status_webhook_allow: str = ""
    # Notification channels: "name: kind audience address; ..." (see incidents.channel_config).
    notification_channels: str = ""
    # Escalation policies per severity (and customer) and on-call rotations (see incidents.escalation_policy).
    escalation_policies: str = ""

    @field_validator("support_channels")
    @classmethod
    def _channels(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(";"))):
            label, sep, target = part.partition(":")
            if not sep or not label.strip() or not target.strip():
                raise ValueError(f"{part!r}: expected 'label: value' entries separated by ';'")
        return value

    @field_validator("status_webhook_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # ValueError naming the part that is not a network
        return value

    @field_validator("company_name")
    @classmethod
    def _company_name(cls, value: str) -> str:
        if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in value):
            raise ValueError("must be one line without control characters")
        return value.strip()

    @field_validator("company_logo")
    @classmethod
    def _company_logo(cls, value: Path | None) -> Path | None:
        if value is not None:
            logo_type(value)  # ValueError saying why the file is no logo
        return value

    @field_validator("canaries")
    @classmethod
    def _canaries(cls, value: str) -> str:
        # The same parse and probe-spec check start-up applies, so check-config refuses what serve would.
        from monitor.selfcheck import check_canary

        for part in filter(None, (p.strip() for p in value.split(","))):
            check_canary(part)
        return value

    @field_validator("alertmanager_url", "sms_gateway_url", "kavenegar_url", "ghasedak_url", "telegram_api_url",
                     "bale_api_url", "pagerduty_events_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not (value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


MAX_LOGO_BYTES = 512 * 1024
_LOGO_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"))


def logo_type(path: Path) -> str:
    """The content type of a logo file, told by its first bytes (``ValueError`` if it is not a readable
    PNG, JPEG, GIF, WebP or SVG image of at most ``MAX_LOGO_BYTES``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    if not data or len(data) > MAX_LOGO_BYTES:
        raise ValueError(f"must be an image file of 1 to {MAX_LOGO_BYTES} bytes (is {len(data)})")
    for magic, kind in _LOGO_MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:1024].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096]:
        return "image/svg+xml"
    raise ValueError("is not a PNG, JPEG, GIF, WebP or SVG image")


def _file_values(env: dict[str, str]) -> dict[str, object]:
    path = env.get(ENV_PREFIX + "CONFIG_FILE")
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{ENV_PREFIX}CONFIG_FILE={path!r}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{ENV_PREFIX}CONFIG_FILE={path!r}: must be a mapping of setting names to values")
    return {str(k).lower(): v for k, v in data.items()}


# Secrets may also come from a file named by NEGAHBAN_<NAME>_FILE (a Docker/systemd credential), so they
# need not sit in the environment; SecretStr keeps them out of reprs and logs.
SECRET_SETTINGS = ("kavenegar_api_key", "ghasedak_api_key", "telegram_bot_token", "bale_bot_token",
                   "webhook_signing_secret", "smtp_password")


def _secret_files(env: dict[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in SECRET_SETTINGS:
        key = f"{ENV_PREFIX}{name.upper()}_FILE"
        if key in env:
            try:
                values[name] = Path(env[key]).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise SettingsError(f"{key}={env[key]!r}: cannot be read: {exc.strerror}") from exc
    return values


def load_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build validated settings from ``env`` (default: the process environment) and explicit overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = _file_values(env)
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update(_secret_files(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX):].lower() not in
                     set(Settings.model_fields) | {"config_file"} | {f"{n}_file" for n in SECRET_SETTINGS})
    if unknown:
        raise SettingsError(f"{unknown[0]}={env[unknown[0]]!r}: unknown setting")
    try:
        # init kwargs only: the environment was read above, so a value is validated exactly once.
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        value = "<secret>" if name in SECRET_SETTINGS else values.get(name, err.get("input"))
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={value!r}: {err['msg'].removeprefix('Value error, ')}") from None
    if settings.node_name and not settings.database_url.startswith("postgresql"):
        raise SettingsError(f"{ENV_PREFIX}NODE_NAME={settings.node_name!r}: several engine nodes share one PostgreSQL "
                            f"database; {ENV_PREFIX}DATABASE_URL is SQLite (a single node: leave NODE_NAME empty)")
    return settings
