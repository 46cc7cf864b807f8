"""``/probe?module=M&target=T``: blackbox_exporter's endpoint, for Prometheus jobs written for it.

Modules come from a blackbox.yml (``NEGAHBAN_BLACKBOX_CONFIG``, read by ``dashboards.blackbox_modules``). The
answer is blackbox's: ``probe_success``, ``probe_duration_seconds`` and the families of the prober, without
labels (Prometheus' relabelling adds ``instance``). Like ``/metrics`` it needs a NOC or admin token, and the
target may reach non-public addresses only inside ``NEGAHBAN_PROBE_ALLOW``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, Field

from dashboards.blackbox import HEADERS, family_lines
from dashboards.blackbox_modules import Module, target_allowed
from dashboards.metrics import escape_label
from dashboards.web.body import json_response
from dashboards.web.deps import DEPS
from dashboards.web.params import Params
from dashboards.web.routing import QUERY, RouteTable
from monitor.accounts import Role
from monitor.catalog import load_catalog
from monitor.errors import InvalidInput, NotFound
from probes import PROBERS, PUSH_KINDS
from probes.net import numeric_family

__all__ = ["routes", "PROBE_ROLES"]

routes = RouteTable()
PROBE_ROLES = frozenset({Role.ADMIN, Role.NOC})
# Prometheus' default scrape timeout is 10 s; blackbox answers within the scrape's own timeout minus this.
_TIMEOUT_OFFSET_S = 0.5


class ProbeQuery(Params):
    module: str = Field(min_length=1, max_length=200, description="a module of NEGAHBAN_BLACKBOX_CONFIG")
    target: str = Field(min_length=1, max_length=2048, description="what to probe, as blackbox takes it")


def _host_of(module: Module, target: str) -> str:
    if module.prober == "http":
        return urlsplit(target).hostname or ""
    if module.prober in ("tcp", "dns") and target.count(":") == 1 or target.startswith("["):
        return target.rsplit(":", 1)[0].strip("[]")
    return target.strip("[]")


def _guarded(ctx, allowed: list):
    """The probe context with a resolver that refuses names resolving to addresses outside the allowed set."""
    resolve = ctx.resolve

    async def guarded(host: str, family: int) -> list[str]:
        addresses = [a for a in await resolve(host, family) if target_allowed(a, allowed)]
        if not addresses:
            raise OSError(f"{host} resolves only to addresses this endpoint may not reach")
        return addresses

    return dataclasses.replace(ctx, resolve=guarded)


def _number(value: float) -> str:
    return repr(float(value))


@routes.get("/probe", roles=PROBE_ROLES, query=ProbeQuery, produces="text/plain")
async def probe(request: web.Request) -> web.Response:
    """Probe one target with a blackbox.yml module, answering in blackbox_exporter's format."""
    deps = request.app[DEPS]
    q = request[QUERY]
    modules: dict[str, Module] = deps.services.get("blackbox_modules") or {}
    module = modules.get(q.module)
    if module is None:
        raise NotFound(f"module {q.module!r} (set NEGAHBAN_BLACKBOX_CONFIG to a blackbox.yml that has it)")
    allowed = deps.services.get("probe_allow") or []
    host = _host_of(module, q.target)
    if numeric_family(host) and not target_allowed(host, allowed):
        raise InvalidInput("target", "not a public address, and not inside NEGAHBAN_PROBE_ALLOW")
    timeout = module.timeout_s
    scrape = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    if scrape:
        try:
            timeout = min(timeout, max(float(scrape) - _TIMEOUT_OFFSET_S, 0.1))
        except ValueError:
            pass
    spec = module.make(q.target, timeout)
    ctx = _guarded(deps.services["probe_context"], allowed)
    start = time.perf_counter()
    async with asyncio.timeout(timeout + 1):  # a prober bounds itself by timeout_s; this is the backstop
        result = await PROBERS[spec.kind](spec, ctx)
    duration = time.perf_counter() - start
    lines = ["# HELP probe_success Displays whether or not the probe was a success",
             "# TYPE probe_success gauge", f"probe_success {0 if result.outcome == 'down' else 1}",
             "# HELP probe_duration_seconds Returns how long the probe took to complete in seconds",
             "# TYPE probe_duration_seconds gauge", f"probe_duration_seconds {_number(duration)}"]
    by_family: dict[int, list[str]] = {}
    for index, line in family_lines(spec.kind, "", result, _number, escape_label):
        by_family.setdefault(index, []).append(line.replace("{,", "{").replace("{}", ""))
    body = "\n".join(lines) + "\n" + "".join(HEADERS[i] + "\n".join(ls) + "\n" for i, ls in sorted(by_family.items()))
    return web.Response(text=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Negahban-Probe-Reason": result.reason})


class SdQuery(Params):
    kind: str | None = Field(None, max_length=40, description="only monitors of this kind (http, tcp, icmp, ...)")
    module: str | None = Field(None, max_length=200,
                               description="set __param_module, for a /probe job using this blackbox.yml module")


class SdTargetGroup(BaseModel):
    targets: list[str]
    labels: dict[str, str]


@routes.get("/api/v1/sd", roles=PROBE_ROLES, query=SdQuery, response=list[SdTargetGroup])
async def service_discovery(request: web.Request) -> web.Response:
    """Prometheus HTTP service discovery (``http_sd_configs``): one target group per enabled monitor, its
    target and our labels (monitor, service, customer, kind, location). Not paginated: Prometheus reads the
    whole list in one answer, as its HTTP SD protocol requires."""
    deps = request.app[DEPS]
    q = request[QUERY]
    scheduler = deps.services.get("scheduler")
    catalog = scheduler.catalog if scheduler is not None and scheduler.catalog else \
        await load_catalog(deps.sessionmaker)
    groups = []
    for cfg in sorted(catalog.values(), key=lambda c: c.id):
        if cfg.kind in PUSH_KINDS or (q.kind and cfg.kind != q.kind):
            continue
        labels = {k: v for k, v in cfg.labels.items() if k != "instance" and v}
        if q.module:
            labels["__param_module"] = q.module
        groups.append({"targets": [cfg.spec.target], "labels": labels})
    return json_response(groups)
