"""Heartbeat pings (``/hb/{token}``, no login: the token is the credential) and the staff route that issues a
monitor's token.

A job calls ``/hb/{token}`` when it finished well, ``/hb/{token}/fail`` when it failed, ``/hb/{token}/{code}``
with its exit status (0 is success) and optionally ``/hb/{token}/start`` when it begins; GET or POST, and a
POST body (at most ``MAX_PING_BODY``) is kept as the run's log line.

What a caller can learn: nothing about other monitors. An unknown token, a disabled monitor's and a live one
get the same status, headers and body (``OK``), and share the same rate limits (per token digest and per
client address), so a 429 says no more than a 200. What differs is the time to answer: a live token's ping is
written and evaluated before the answer. That tells a caller only whether a token they already hold works,
and tokens are 192 random bits, so none can be found by trying.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.middleware import json_error
from dashboards.web.params import Params, ids
from dashboards.web.ratelimit import Buckets, Rate
from dashboards.web.routing import BODY, PATH, RouteTable
from monitor.accounts import Role
from monitor.errors import InvalidInput, NotFound
from monitor.heartbeat import Ping, Signal
from monitor.heartbeat_service import issue_ping_token, ping_digest
from monitor.models import Monitor
from probes import PUSH_KINDS

__all__ = ["routes", "PingLimits", "MAX_PING_BODY", "ping_limits"]

routes = RouteTable()
MAX_PING_BODY = 10 * 1024
TEXT = "text/plain"
PING_ERRORS = {429: "too many pings for this token or from this address; see Retry-After"}


@dataclass
class PingLimits:
    """Per token digest and per client address. Defaults: a job may ping 20 times a minute (a start, a
    finish and curl's retries leave plenty), an address 300 (a backup host running many jobs at 02:00)."""

    per_token: Buckets = field(default_factory=lambda: Buckets(Rate.per_minute(20)))
    per_address: Buckets = field(default_factory=lambda: Buckets(Rate.per_minute(300)))

    def wait(self, digest: str, address: str, now: float) -> int:
        """Seconds until this ping may come (0: now). An address over its limit does not use up the token's."""
        return self.per_address.take(address, now) or self.per_token.take(digest, now)


def ping_limits(per_token_per_minute: int, per_address_per_minute: int) -> PingLimits:
    return PingLimits(Buckets(Rate.per_minute(per_token_per_minute)), Buckets(Rate.per_minute(per_address_per_minute)))


class PingPath(Params):
    token: str = Field(min_length=1, max_length=200, description="the monitor's ping token")


class SignalPath(PingPath):
    signal: str = Field(pattern=r"^(start|fail|[0-9]{1,3})$",
                        description="start, fail, or the job's exit status 0-255 (0 is success)")

    @field_validator("signal")
    @classmethod
    def _exit_status(cls, v: str) -> str:
        if v.isdigit() and int(v) > 255:
            raise ValueError("an exit status is 0-255")
        return v


def _ping(signal: str, at, body: bytes) -> Ping:
    log = body.decode("utf-8", "replace").replace("\x00", "").strip()
    if signal == "start":
        return Ping(Signal.START, at, None, log)
    if signal == "fail":
        return Ping(Signal.FAIL, at, None, log)
    code = int(signal)
    return Ping(Signal.SUCCESS if code == 0 else Signal.FAIL, at, code, log)


async def _answer(request: web.Request, signal: str, body: bytes) -> web.Response:
    deps = request.app[DEPS]
    token = request[PATH].token
    limits: PingLimits = deps.services.setdefault("heartbeat_limits", PingLimits())
    wait = limits.wait(ping_digest(token), request.remote or "", deps.clock.monotonic())
    if wait:
        resp = json_error(429, "too many requests", reason=f"too many pings; retry after {wait} s")
        resp.headers["Retry-After"] = str(wait)
        return resp
    service = deps.services.get("heartbeats")
    if service is not None:
        await service.receive(token, _ping(signal, deps.clock.now(), body))
    return web.Response(text="OK\n", content_type=TEXT)


@routes.get("/hb/{token}", public=True, path=PingPath, produces=TEXT, errors=PING_ERRORS)
async def ping_get(request: web.Request) -> web.Response:
    """A job finished well (no body is read on GET)."""
    return await _answer(request, "0", b"")


@routes.post("/hb/{token}", public=True, path=PingPath, body=bytes, max_body=MAX_PING_BODY, body_media=TEXT,
             produces=TEXT, errors=PING_ERRORS)
async def ping_post(request: web.Request) -> web.Response:
    """A job finished well; the body (up to 10 KB) is its log line."""
    return await _answer(request, "0", request[BODY])


@routes.get("/hb/{token}/{signal}", public=True, path=SignalPath, produces=TEXT, errors=PING_ERRORS)
async def signal_get(request: web.Request) -> web.Response:
    """A job started (``start``), failed (``fail``) or exited with a status (``0``-``255``)."""
    return await _answer(request, request[PATH].signal, b"")


@routes.post("/hb/{token}/{signal}", public=True, path=SignalPath, body=bytes, max_body=MAX_PING_BODY,
             body_media=TEXT, produces=TEXT, errors=PING_ERRORS)
async def signal_post(request: web.Request) -> web.Response:
    """A job started, failed or exited with a status; the body (up to 10 KB) is its log line."""
    return await _answer(request, request[PATH].signal, request[BODY])


class PingToken(BaseModel):
    monitor_id: int
    token: str
    ping_url: str


@routes.post("/api/v1/monitors/{monitor_id}/ping-token", roles={Role.ADMIN, Role.NOC}, path=ids("monitor_id"),
             response=PingToken)
async def rotate_ping_token(request: web.Request) -> web.Response:
    """Issue a new ping token for a heartbeat monitor; the old one stops working. Shown only in this answer:
    only its SHA-256 is stored."""
    deps = request.app[DEPS]
    mid = request[PATH].monitor_id
    async with deps.sessionmaker.begin() as s:
        kind = (await s.execute(select(Monitor.kind).where(Monitor.id == mid))).scalar_one_or_none()
        if kind is None:
            raise NotFound(f"monitor {mid}")
        if kind not in PUSH_KINDS:
            raise InvalidInput("monitor_id", f"monitor {mid} is a {kind} monitor; only heartbeat monitors are "
                               "pinged")
        token = await issue_ping_token(s, mid, deps.clock.now())
    return json_response({"monitor_id": mid, "token": token, "ping_url": f"{request.url.origin()}/hb/{token}"})
