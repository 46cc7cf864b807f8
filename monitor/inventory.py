"""Inventory as code: validate a YAML file completely, then apply it in one transaction, or export it.

Every error names the file, the line, the path inside the document and the reason. Validation happens
before anything is written, and the write is one transaction: an invalid file changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.errors import InventoryError, InventoryErrors
from monitor.heartbeat_service import issue_ping_token, set_ping_digest
from monitor.inventory_devices import with_device_monitors
from monitor.inventory_schema import InventoryDoc, MonitorEntry
from monitor.models import (
    CENTRAL,
    Customer,
    Datacenter,
    Heartbeat,
    Location,
    Monitor,
    NetworkDevice,
    Server,
    Service,
)
from monitor.selfcheck import LOCATION_PREFIX, SELF_CHECK_NAME, check_canary, ensure_location_alert
from probes import PUSH_KINDS, SPECS

__all__ = ["load_inventory", "parse_inventory", "require_entries", "apply_inventory", "export_inventory"]

Loc = tuple[str | int, ...]


def _lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*loc, key.value)] = key.start_mark.line + 1
            _lines(value, (*loc, key.value), out)
            out[(*loc, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out)


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Doc:
    """The parsed document with a way to find the line of any path in it."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.errors: list[InventoryError] = []
        try:
            node = yaml.compose(text)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            reason = f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
            raise InventoryError(file, mark.line + 1 if mark else None, "", reason) from None
        self.lines: dict[Loc, int] = {}
        if node is not None:
            _lines(node, (), self.lines)
        if self.data is None:
            self.data = {}
        if not isinstance(self.data, dict):
            raise InventoryError(file, 1, "", "the document must be a mapping")

    def add(self, loc: Loc, reason: str) -> None:
        self.errors.append(self.error(loc, reason))

    def raise_errors(self) -> None:
        if self.errors:
            shown = sorted(self.errors, key=lambda e: e.line or 0)[:MAX_ERRORS]
            raise InventoryErrors(shown, len(self.errors))

    def error(self, loc: Loc, reason: str) -> InventoryError:
        line = None
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                line = self.lines[loc[:n]]
                break
        return InventoryError(self.file, line, _path(loc), reason)


MAX_ERRORS = 50  # reported per file: enough to fix a file in one go, few enough to read


def _pydantic_errors(doc: _Doc, exc: ValidationError, prefix: Loc = ()) -> None:
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        doc.add((*prefix, *loc), msg)


def _validate_model(doc: _Doc) -> InventoryDoc | None:
    try:
        return InventoryDoc.model_validate(doc.data)
    except ValidationError as exc:
        _pydantic_errors(doc, exc)
        return None


def _check_unique(doc: _Doc, inv: InventoryDoc) -> None:
    groups: dict[str, list[tuple[Loc, str]]] = {
        "locations": [(("locations", i, "name"), loc.name) for i, loc in enumerate(inv.locations)],
        "datacenters": [(("datacenters", i, "name"), d.name) for i, d in enumerate(inv.datacenters)],
        "devices": [(("devices", i, "name"), d.name) for i, d in enumerate(inv.devices)],
        "customers": [(("customers", i, "name"), c.name) for i, c in enumerate(inv.customers)],
        "services": [(("customers", i, "services", j, "name"), s.name)
                     for i, c in enumerate(inv.customers) for j, s in enumerate(c.services)],
        "servers": [(("servers", i, "name"), s.name) for i, s in enumerate(inv.servers)],
        "monitors": [(("monitors", i, "name"), m.name) for i, m in enumerate(inv.monitors)],
    }
    for group, items in groups.items():
        seen: set[str] = set()
        for loc, name in items:
            if name in seen:
                doc.add(loc, f"duplicate name {name!r} in {group}")
            seen.add(name)
    for i, m in enumerate(inv.monitors):
        if m.name == SELF_CHECK_NAME or m.name.startswith(("canary:", LOCATION_PREFIX)):
            doc.add(("monitors", i, "name"), f"{m.name!r} is reserved for the self-check (NEGAHBAN_CANARIES)")


def _check_refs(doc: _Doc, inv: InventoryDoc) -> None:
    dcs = {d.name for d in inv.datacenters}
    devices = {d.name for d in inv.devices}
    services = {s.name for c in inv.customers for s in c.services}
    servers = {s.name for s in inv.servers}

    def need(value: str | None, known: set[str], loc: Loc, what: str) -> None:
        if value is not None and value not in known:
            doc.add(loc, f"unknown {what} {value!r}")

    for i, d in enumerate(inv.devices):
        need(d.datacenter, dcs, ("devices", i, "datacenter"), "datacenter")
        need(d.parent, devices, ("devices", i, "parent"), "parent device")
    for i, s in enumerate(inv.servers):
        need(s.datacenter, dcs, ("servers", i, "datacenter"), "datacenter")
        need(s.parent, devices, ("servers", i, "parent"), "parent device")
        need(s.service, services, ("servers", i, "service"), "service")
    for i, m in enumerate(inv.monitors):
        need(m.server, servers, ("monitors", i, "server"), "server")
        need(m.device, devices, ("monitors", i, "device"), "device")
        need(m.service, services, ("monitors", i, "service"), "service")


def _check_locations(doc: _Doc, inv: InventoryDoc) -> None:
    """Each location's canaries parse as probes; each monitor names known locations and a quorum they can give."""
    for i, loc in enumerate(inv.locations):
        if loc.name == CENTRAL:
            doc.add(("locations", i, "name"), f"{CENTRAL!r} is the central service's own location; it is not "
                    "declared (its canaries are NEGAHBAN_CANARIES)")
        for j, canary in enumerate(loc.canaries):
            try:
                check_canary(canary)
            except ValueError as exc:
                doc.add(("locations", i, "canaries", j), str(exc))
    known = {loc.name for loc in inv.locations} | {CENTRAL}
    for i, m in enumerate(inv.monitors):
        if m.locations and m.kind in PUSH_KINDS:
            doc.add(("monitors", i, "locations"), f"a {m.kind} monitor is pinged by the job, not checked from "
                    "locations")
        seen: set[str] = set()
        for j, name in enumerate(m.locations):
            if name not in known:
                doc.add(("monitors", i, "locations", j), f"unknown location {name!r}; known: "
                        f"{', '.join(sorted(known))}")
            elif name in seen:
                doc.add(("monitors", i, "locations", j), f"location {name!r} is listed twice")
            seen.add(name)
        count = len(m.locations) or 1
        if m.quorum is not None and m.quorum > count:
            doc.add(("monitors", i, "quorum"), f"{m.quorum} locations cannot confirm a failure seen from "
                    f"{count}")


def _check_cycles(doc: _Doc, inv: InventoryDoc) -> None:
    parent = {d.name: d.parent for d in inv.devices}
    index = {d.name: i for i, d in enumerate(inv.devices)}
    reported: set[str] = set()  # one error per cycle, not one per member
    for start in parent:
        seen, node = [start], parent[start]
        while node is not None:
            if node in seen:
                if not reported & set(seen):
                    doc.add(("devices", index[start], "parent"), "cycle of parents: " + " -> ".join([*seen, node]))
                reported.update(seen)
                break
            seen.append(node)
            node = parent.get(node)


def _interval(m: MonitorEntry) -> float:
    """The interval the entry gives, else its kind's default (daily for domain expiry, 60 s for most)."""
    return m.interval if "interval" in m.model_fields_set else SPECS[m.kind].default_interval_s


def _check_push(doc: _Doc, inv: InventoryDoc) -> None:
    """A push monitor has no interval (the job decides when it pings) and a token of its own."""
    digests: set[str] = set()
    for i, m in enumerate(inv.monitors):
        if m.kind not in PUSH_KINDS:
            continue
        if "interval" in m.model_fields_set:
            doc.add(("monitors", i, "interval"), f"a {m.kind} monitor is pinged by the job: give period_s "
                    "(how often it runs), not interval")
        digest = m.spec_fields().get("token_sha256")
        if isinstance(digest, str):
            if digest in digests:
                doc.add(("monitors", i, "token_sha256"), "the same token as another monitor in this file")
            digests.add(digest)


def _check_specs(doc: _Doc, inv: InventoryDoc) -> list[dict[str, Any]]:
    specs = []
    _check_push(doc, inv)
    for i, m in enumerate(inv.monitors):
        if m.kind not in SPECS:
            doc.add(("monitors", i, "kind"), f"unknown kind {m.kind!r}; known: {', '.join(sorted(SPECS))}")
            continue
        try:
            spec = SPECS[m.kind].model_validate({**m.spec_fields(), "kind": m.kind})
        except ValidationError as exc:
            _pydantic_errors(doc, exc, ("monitors", i))
            continue
        cap = SPECS[m.kind].max_interval_s
        if m.kind not in PUSH_KINDS and m.interval > cap:
            doc.add(("monitors", i, "interval"), f"at most {cap:g} s for a {m.kind} monitor, got {m.interval:g}")
            continue
        specs.append(spec.model_dump(mode="json", exclude={"kind", "target", "timeout_s"}, exclude_unset=True)
                     | {"target": spec.target, "timeout_s": spec.timeout_s})
    return specs


def parse_inventory(text: str, file: str = "<inventory>") -> tuple[InventoryDoc, list[dict[str, Any]]]:
    """Validate the whole document; return it with each monitor's validated spec fields.

    Raises ``InventoryErrors`` listing every error found (up to ``MAX_ERRORS``), each with file and line.
    """
    doc = _Doc(file, text)
    inv = _validate_model(doc)
    specs: list[dict[str, Any]] = []
    if inv is not None:  # the cross-checks need a well-typed document
        inv = with_device_monitors(inv, doc.add)
        for check in (_check_unique, _check_refs, _check_locations, _check_cycles):
            check(doc, inv)
        specs = _check_specs(doc, inv)
    doc.raise_errors()
    assert inv is not None
    return inv, specs


def require_entries(inv: InventoryDoc, file: str) -> None:
    """Refuse a file that names nothing: applying it (above all with --prune) is almost always a mistake."""
    if not any((inv.locations, inv.datacenters, inv.devices, inv.customers, inv.servers, inv.monitors)):
        raise InventoryError(file, None, "", "the inventory is empty (no datacenters, devices, customers, "
                             "servers or monitors); pass --allow-empty to apply it anyway")


def load_inventory(path: str | Path) -> tuple[InventoryDoc, list[dict[str, Any]]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(str(path), None, "", f"cannot be read: {exc}") from None
    return parse_inventory(text, str(path))


async def _upsert(session: AsyncSession, model, name: str, **values):
    row = (await session.execute(select(model).where(model.name == name))).scalar_one_or_none()
    if row is None:
        row = model(name=name)
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    await session.flush()
    return row


async def _apply(session: AsyncSession, inv: InventoryDoc, specs: list[dict[str, Any]], now,
                 file: str = "<inventory>") -> dict:
    ids: dict[str, dict[str, int]] = {k: {} for k in ("loc", "dc", "dev", "svc", "srv")}
    for loc in inv.locations:
        ids["loc"][loc.name] = (await _upsert(session, Location, loc.name, display_name=loc.display_name,
                                              canaries=list(loc.canaries), updated_at=now)).id
        await ensure_location_alert(session, loc.name, now)
    for d in inv.datacenters:
        ids["dc"][d.name] = (await _upsert(session, Datacenter, d.name, display_name=d.display_name,
                                           location=d.location)).id
    for d in inv.devices:  # parents are linked in a second pass: they may come later in the file
        ids["dev"][d.name] = (await _upsert(session, NetworkDevice, d.name, kind=d.kind.value,
                                            address=d.address, datacenter_id=ids["dc"].get(d.datacenter))).id
    for d in inv.devices:
        dev = await session.get(NetworkDevice, ids["dev"][d.name])
        dev.parent_id = ids["dev"].get(d.parent) if d.parent else None
    for c in inv.customers:
        cust = await _upsert(session, Customer, c.name, display_name=c.display_name, verified=c.verified,
                             email=c.email, phone=c.phone)
        for s in c.services:
            ids["svc"][s.name] = (await _upsert(session, Service, s.name, display_name=s.display_name,
                                                public_status=s.public_status, status_group=s.status_group,
                                                customer_id=cust.id)).id
    for s in inv.servers:
        ids["srv"][s.name] = (await _upsert(
            session, Server, s.name, address=s.address, datacenter_id=ids["dc"].get(s.datacenter),
            parent_device_id=ids["dev"].get(s.parent), service_id=ids["svc"].get(s.service))).id
    issued: dict[str, str] = {}
    for m, spec in zip(inv.monitors, specs, strict=True):
        fields = dict(spec)
        digest = fields.pop("token_sha256", None)
        # A push monitor's "interval" is its period: what the API lists, never a schedule.
        interval = fields["period_s"] if m.kind in PUSH_KINDS else _interval(m)
        row = await _upsert(session, Monitor, m.name, kind=m.kind, target=fields.pop("target"),
                            timeout_s=fields.pop("timeout_s"), interval_s=interval, spec=fields,
                            policy=m.policy.model_dump(exclude_defaults=True), enabled=m.enabled,
                            locations=[] if m.locations == [CENTRAL] else list(m.locations), quorum=m.quorum,
                            server_id=ids["srv"].get(m.server), device_id=ids["dev"].get(m.device),
                            service_id=_monitor_service(m, inv, ids), updated_at=now)
        if m.kind in PUSH_KINDS:
            token = await _ping_token(session, row.id, m.name, digest, now, file)
            if token is not None:
                issued[m.name] = token
    counts: dict[str, Any] = {k: len(v) for k, v in ids.items()} | {"monitors": len(inv.monitors)}
    if issued:
        counts["new_ping_tokens"] = issued
    return counts


async def _ping_token(session: AsyncSession, monitor_id: int, name: str, digest: str | None, now,
                      file: str) -> str | None:
    """Keep the monitor's token, take the file's digest, or issue a first token (returned in clear)."""
    if digest is None:
        if await session.get(Heartbeat, monitor_id) is not None:
            return None
        return await issue_ping_token(session, monitor_id, now)
    try:
        async with session.begin_nested():
            await set_ping_digest(session, monitor_id, digest, now)
    except IntegrityError:
        raise InventoryError(file, None, f"monitors.{name}.token_sha256",
                             "already the token of another monitor") from None
    return None


def _monitor_service(m, inv: InventoryDoc, ids) -> int | None:
    """A monitor's service: named, or inherited from the server it watches."""
    if m.service:
        return ids["svc"][m.service]
    server = next((s for s in inv.servers if s.name == m.server), None)
    return ids["svc"].get(server.service) if server and server.service else None


async def _prune(session: AsyncSession, inv: InventoryDoc, file: str) -> None:
    """Remove what the file no longer names (monitors, servers, devices, services, customers, datacenters)."""
    keep = {
        Monitor: {m.name for m in inv.monitors}, Server: {s.name for s in inv.servers},
        NetworkDevice: {d.name for d in inv.devices},
        Service: {s.name for c in inv.customers for s in c.services},
        Customer: {c.name for c in inv.customers}, Datacenter: {d.name for d in inv.datacenters},
        Location: {loc.name for loc in inv.locations},
    }
    for model, names in keep.items():
        # Internal monitors are not the file's to remove (see export_inventory).
        extra = _not_internal() if model is Monitor else ()
        try:
            async with session.begin_nested():
                await session.execute(delete(model).where(model.name.not_in(names) if names else true(), *extra))
        except IntegrityError:
            # Money, tickets and incidents are never deleted with the inventory: refuse, apply nothing.
            gone = (await session.execute(select(model.name).where(model.name.not_in(names) if names
                                                                    else true()))).scalars().all()
            raise InventoryError(file, None, model.__tablename__,
                                 f"cannot prune {', '.join(sorted(gone)[:5])}: still referenced by records "
                                 "that are kept (tickets, incidents or ledger entries)") from None


async def apply_inventory(sessionmaker: async_sessionmaker, inv: InventoryDoc, specs: list[dict[str, Any]],
                          now, *, prune: bool = False, file: str = "<inventory>") -> dict:
    """Apply a validated inventory in one transaction; return counts of what it names."""
    async with sessionmaker.begin() as session:
        counts = await _apply(session, inv, specs, now, file)
        if prune:
            await _prune(session, inv, file)
    return counts


async def export_inventory(sessionmaker: async_sessionmaker) -> str:
    """Write the stored inventory back as YAML that ``apply`` accepts."""
    async with sessionmaker() as s:
        locs = (await s.execute(select(Location).order_by(Location.name))).scalars().all()
        dcs = (await s.execute(select(Datacenter).order_by(Datacenter.name))).scalars().all()
        devs = (await s.execute(select(NetworkDevice).order_by(NetworkDevice.name))).scalars().all()
        custs = (await s.execute(select(Customer).order_by(Customer.name))).scalars().all()
        svcs = (await s.execute(select(Service).order_by(Service.name))).scalars().all()
        srvs = (await s.execute(select(Server).order_by(Server.name))).scalars().all()
        # The self-check and the canaries belong to NEGAHBAN_CANARIES, not to the file: leave them out so
        # the export can be applied again.
        mons = (await s.execute(select(Monitor).where(*_not_internal()).order_by(Monitor.name))).scalars().all()
        digests = dict((await s.execute(select(Heartbeat.monitor_id, Heartbeat.token_sha256))).all())
    dc = {d.id: d.name for d in dcs}
    dev = {d.id: d.name for d in devs}
    svc = {x.id: x.name for x in svcs}
    srv = {x.id: x.name for x in srvs}
    doc = {
        "locations": [_clean({"name": x.name, "display_name": x.display_name, "canaries": x.canaries})
                      for x in locs],
        "datacenters": [_clean({"name": d.name, "display_name": d.display_name, "location": d.location})
                        for d in dcs],
        "devices": [_clean({"name": d.name, "kind": d.kind, "address": d.address,
                            "datacenter": dc.get(d.datacenter_id), "parent": dev.get(d.parent_id)})
                    for d in devs],
        "customers": [_clean({"name": c.name, "display_name": c.display_name, "verified": c.verified,
                              "email": c.email, "phone": c.phone,
                              "services": [_clean({"name": x.name, "display_name": x.display_name,
                                                   "public_status": x.public_status,
                                                   "status_group": x.status_group})
                                           for x in svcs if x.customer_id == c.id]}) for c in custs],
        "servers": [_clean({"name": x.name, "address": x.address, "datacenter": dc.get(x.datacenter_id),
                            "parent": dev.get(x.parent_device_id), "service": svc.get(x.service_id)})
                    for x in srvs],
        "monitors": [_export_monitor(m, srv, dev, svc, digests) for m in mons],
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _export_monitor(m: Monitor, srv: dict, dev: dict, svc: dict, digests: dict[int, str]) -> dict:
    """A monitor as the file writes it. A push monitor has no target, timeout or interval, and carries its
    token's SHA-256, never the token: the export can be committed to a repository and applied elsewhere
    without the jobs' URLs changing."""
    probed = {} if m.kind in PUSH_KINDS else {"target": m.target, "interval": m.interval_s,
                                              "timeout_s": m.timeout_s}
    out = {"name": m.name, "kind": m.kind, **probed, "enabled": m.enabled, "server": srv.get(m.server_id),
           "device": dev.get(m.device_id), "service": svc.get(m.service_id), "policy": m.policy or None,
           "locations": m.locations or None, "quorum": m.quorum,
           **(m.spec or {})}
    if m.kind in PUSH_KINDS:
        out["token_sha256"] = digests.get(m.id)
    return _clean(out)


def _not_internal() -> tuple:
    return (Monitor.name != SELF_CHECK_NAME, Monitor.name.not_like("canary:%"),
            Monitor.name.not_like(LOCATION_PREFIX + "%"))


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}
