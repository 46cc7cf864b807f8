"""Importers: another monitor's configuration, read into an inventory YAML for review (never applied here).

* ``uptime_kuma``: Uptime Kuma's JSON backup (1.x ``Settings -> Backup -> Export``: ``monitorList``).
* ``gatus``: Gatus's ``config.yaml`` (``endpoints:``).
* ``blackbox``: blackbox_exporter's ``blackbox.yml`` modules plus the Prometheus scrape jobs that use them.

Each returns an ``Import``: the monitors (and customers/services, when the source's groups map cleanly) and
``skipped``/``notes``, each a line saying what was not carried over and why. ``render`` writes the YAML with
those lines as comments at the top and checks it with ``monitor.inventory.parse_inventory`` first, so what we
print is always a file ``inventory apply --check`` accepts. A malformed source raises ``InvalidInput`` naming
the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import ValidationError

from dashboards.blackbox_modules import parse_modules
from monitor.errors import InvalidInput, NegahbanError
from monitor.inventory import parse_inventory
from monitor.inventory_schema import COMMON_MONITOR_KEYS
from monitor.selfcheck import SELF_CHECK_NAME
from probes import SPECS

__all__ = ["Import", "uptime_kuma", "gatus", "blackbox", "render", "IMPORTERS"]

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
MIN_INTERVAL, MAX_INTERVAL = 5.0, 3600.0


@dataclass
class Import:
    source: str  # "Uptime Kuma backup kuma.json"
    monitors: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # one comment per monitor: where it came from
    customers: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    def name(self, wanted: str, fallback: str) -> str:
        """A valid, unique monitor name from ``wanted`` (``fallback`` when nothing of it is usable)."""
        base = _slug(wanted) or _slug(fallback) or "imported"
        if base == SELF_CHECK_NAME or base.startswith("canary:"):
            base = "imported-" + base
        name, n = base, 2
        while name in self._names:
            suffix = f"-{n}"
            name, n = base[: 100 - len(suffix)] + suffix, n + 1
        self._names.add(name)
        return name

    def add(self, entry: dict[str, Any], origin: str) -> bool:
        """Keep ``entry`` if its kind's spec accepts it; else list it as not imported, with the spec's reason."""
        spec = {k: v for k, v in entry.items() if k not in COMMON_MONITOR_KEYS}
        try:
            SPECS[entry["kind"]].model_validate(spec)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "spec"
            self.skipped.append(f"{origin}: {where}: {err['msg']}")
            self._names.discard(entry["name"])
            return False
        self.monitors.append(entry)
        self.origins.append(origin)
        return True


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.:-]+", "-", str(text)).strip("-_.:")
    s = re.sub(r"-{2,}", "-", s)[:100].rstrip("-_.:")
    return s if _NAME_OK.match(s) else ""


def _err(file: str, where: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{file}: {where}" if where else file, reason)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(str(path), f"cannot be read: {exc}") from None


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(_read(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise _err(str(path), where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


def _interval(imp: Import, value: float, who: str) -> float:
    if value < MIN_INTERVAL or value > MAX_INTERVAL:
        clamped = min(max(value, MIN_INTERVAL), MAX_INTERVAL)
        imp.notes.append(f"{who}: interval {value:g}s is outside {MIN_INTERVAL:g}-{MAX_INTERVAL:g}s; "
                         f"set to {clamped:g}s")
        return clamped
    return value


def _groups_to_customers(imp: Import, groups: dict[str, list[int]], what: str) -> None:
    """Each group becomes a customer with one service of the same name, when every group name is usable.

    ``groups`` maps a group's name to the indexes (in ``imp.monitors``) of its monitors.
    """
    if not groups:
        return
    slugs = {g: _slug(g) for g in groups}
    bad = [g for g, s in slugs.items() if not s]
    clashes = len(set(slugs.values())) != len(slugs)
    if bad or clashes:
        why = (f"group name(s) {', '.join(repr(b) for b in bad)} cannot be a name" if bad
               else "two groups give the same name")
        imp.notes.append(f"{what} groups not mapped to customers/services ({why}); the monitors have no service")
        return
    for group, members in groups.items():
        imp.customers.append({"name": slugs[group], "display_name": group,
                              "services": [{"name": slugs[group], "display_name": group}]})
        for i in members:
            imp.monitors[i]["service"] = slugs[group]
    imp.notes.append(f"each {what} group became a customer with one service of the same name: "
                     "move the services to the real customers before applying")


# --- Uptime Kuma -------------------------------------------------------------------------------------------

_KUMA_DNS_TYPES = {"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA"}
_KUMA_DB = {"mysql": "mysql", "postgres": "postgres", "redis": "redis"}
_KUMA_DEFAULT_PORT = {"mysql": 3306, "postgres": 5432, "redis": 6379}


def _kuma_statuses(codes: Any, where: str, file: str) -> list[int]:
    if not isinstance(codes, list) or not codes:
        raise _err(file, where, "expected a list like [\"200-299\"]")
    out: list[int] = []
    for c in codes:
        m = re.fullmatch(r"\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?", str(c))
        if not m:
            raise _err(file, where, f"{c!r} is not a status code or a range like 200-299")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if not (100 <= lo <= hi <= 599):
            raise _err(file, where, f"{c!r} is outside 100-599")
        out += [s for s in range(lo, hi + 1) if s not in out]
    return out


def _host_port(host: Any, port: Any, default: int | None = None) -> str:
    host = str(host).strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = port if port not in (None, "", 0) else default
    return f"{host}:{int(port)}" if port is not None else host


def _kuma_monitor(imp: Import, m: dict, where: str, file: str) -> dict[str, Any] | None:
    kind = m.get("type")
    label = f"{where} {m.get('name')!r} ({kind})"

    def need(key: str) -> Any:
        value = m.get(key)
        if value in (None, ""):
            raise _err(file, f"{where}.{key}", f"required for a {kind} monitor")
        return value

    entry: dict[str, Any] = {}
    if kind in ("http", "keyword", "json-query"):
        url = str(need("url"))
        if urlsplit(url).scheme not in ("http", "https"):
            raise _err(file, f"{where}.url", f"expected an http:// or https:// URL, got {url!r}")
        entry = {"kind": "http", "target": url}
        method = str(m.get("method") or "GET").upper()
        if method != "GET":
            entry["method"] = method
        if m.get("accepted_statuscodes") is not None:
            codes = _kuma_statuses(m["accepted_statuscodes"], f"{where}.accepted_statuscodes", file)
            if codes != list(range(200, 300)):
                entry["expected_status"] = codes
        if m.get("ignoreTls"):
            entry["tls_verify"] = False
        if m.get("maxredirects") is not None:
            redirects = int(m["maxredirects"])
            if redirects == 0:
                entry["follow_redirects"] = False
            elif redirects != 5:
                entry["max_redirects"] = min(redirects, 20)
        if m.get("body"):
            entry["body"] = str(m["body"])
        headers = m.get("headers")
        if headers:
            try:
                parsed = json.loads(headers) if isinstance(headers, str) else headers
            except ValueError:
                raise _err(file, f"{where}.headers", "not a JSON object") from None
            if not isinstance(parsed, dict):
                raise _err(file, f"{where}.headers", "not a JSON object")
            entry["headers"] = {str(k): str(v) for k, v in parsed.items()}
        if kind == "keyword":
            entry["body_rules"] = [{"pattern": str(need("keyword")), "present": not m.get("invertKeyword")}]
        if kind == "json-query":
            path = str(need("jsonPath")).strip()
            if not re.fullmatch(r"\$?\.?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*", path):
                imp.skipped.append(f"{label}: jsonPath {path!r} is a JSONata expression; Negahban follows "
                                   "plain paths like $.data.status")
                return None
            entry["json_path"] = path if path.startswith("$") else "$." + path.lstrip(".")
            entry["json_equals"] = m.get("expectedValue")
    elif kind == "port":
        entry = {"kind": "tcp", "target": _host_port(need("hostname"), need("port"))}
    elif kind == "ping":
        entry = {"kind": "icmp", "target": str(need("hostname")).strip()}
    elif kind == "dns":
        entry = {"kind": "dns", "target": str(need("hostname")).strip()}
        rtype = str(m.get("dns_resolve_type") or "A").upper()
        if rtype not in _KUMA_DNS_TYPES:
            imp.skipped.append(f"{label}: record type {rtype} is not one Negahban asks "
                               f"({', '.join(sorted(_KUMA_DNS_TYPES))})")
            return None
        if rtype != "A":
            entry["record_type"] = rtype
        if m.get("dns_resolve_server"):
            port = m.get("port")
            entry["resolver"] = _host_port(m["dns_resolve_server"], port if port not in (None, 53) else None)
    elif kind == "push":
        period = float(m.get("interval") or 60)
        entry = {"kind": "heartbeat", "period_s": max(period, 60.0)}
        if period < 60:
            imp.notes.append(f"{label}: heartbeat period raised from {period:g}s to 60s (our minimum)")
        if m.get("pushToken"):
            # The job keeps its token; only the URL changes (/hb/TOKEN instead of /api/push/TOKEN).
            entry["token_sha256"] = hashlib.sha256(str(m["pushToken"]).encode()).hexdigest()
            imp.notes.append(f"{label}: the job keeps its push token; change its URL to /hb/<token>")
    elif kind in _KUMA_DB:
        conn = str(need("databaseConnectionString"))
        u = urlsplit(conn)
        if not u.hostname:
            raise _err(file, f"{where}.databaseConnectionString", "expected a URL like "
                       f"{kind}://user:password@host:port/db")
        try:
            port = u.port
        except ValueError:
            raise _err(file, f"{where}.databaseConnectionString", "the port is not a number") from None
        entry = {"kind": _KUMA_DB[kind], "target": _host_port(u.hostname, port, _KUMA_DEFAULT_PORT[kind])}
        if kind in ("mysql", "postgres") and u.username:
            entry["user"] = unquote(u.username)
        if kind == "postgres" and u.path.strip("/"):
            entry["database"] = unquote(u.path.strip("/"))
        if kind == "redis" and u.username:
            entry["username"] = unquote(u.username)
        if u.password:
            imp.notes.append(f"{label}: the password in its connection string was not copied; add it to "
                             "the monitor (redis: password) or give the probe user trust/no-password access")
    elif kind in SPECS:  # Kuma 2.x types (snmp, smtp): not in the 1.x backup format this reads
        imp.skipped.append(f"{label}: Negahban has a {kind} probe, but this importer does not read Kuma's "
                           f"{kind} fields (a 2.x type); add it by hand")
        return None
    else:
        imp.skipped.append(f"{label}: Negahban has no {kind} probe")
        return None
    if m.get("upsideDown"):
        imp.skipped.append(f"{label}: upside-down mode (up when the check fails) has no equivalent")
        return None
    if m.get("timeout") not in (None, "", 0) and kind != "push":
        timeout = float(m["timeout"])
        if 0 < timeout <= 120:
            entry["timeout_s"] = timeout
    if kind != "push":
        entry["interval"] = _interval(imp, float(m.get("interval") or 60), label)
    if kind != "push" and m.get("maxretries") is not None:
        # Kuma: DOWN after the first failure and maxretries retries, retryInterval seconds apart.
        policy: dict[str, Any] = {"down_after": min(max(int(m["maxretries"]) + 1, 1), 100)}
        if m.get("retryInterval"):
            policy["retry_interval_s"] = min(max(float(m["retryInterval"]), 1.0), 3600.0)
        entry["policy"] = policy
    if m.get("authMethod") not in (None, "", "null") or m.get("basic_auth_user"):
        imp.notes.append(f"{label}: its HTTP authentication ({m.get('authMethod') or 'basic'}) was not copied; "
                         "add an Authorization header")
    if m.get("active") is False:
        entry["enabled"] = False
    return entry


def uptime_kuma(path: Path) -> Import:
    file = str(path)
    try:
        doc = json.loads(_read(path))
    except ValueError as exc:
        raise _err(file, "", f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("monitorList"), list):
        raise _err(file, "monitorList", "missing: expected an Uptime Kuma backup (a JSON object with "
                   "a monitorList array)")
    imp = Import(f"Uptime Kuma backup {path.name} (version {doc.get('version', '?')})")
    monitors = doc["monitorList"]
    by_id: dict[Any, dict] = {}
    for i, m in enumerate(monitors):
        if not isinstance(m, dict):
            raise _err(file, f"monitorList[{i}]", "expected an object")
        if not isinstance(m.get("type"), str) or not m["type"]:
            raise _err(file, f"monitorList[{i}].type", "required (a string such as http)")
        if not isinstance(m.get("name"), str) or not m["name"].strip():
            raise _err(file, f"monitorList[{i}].name", "required (a string)")
        by_id[m.get("id")] = m
    groups: dict[str, list[int]] = {}
    nested = False
    for i, m in enumerate(monitors):
        if m["type"] == "group":
            nested = nested or m.get("parent") is not None
            continue
        where = f"monitorList[{i}]"
        try:
            entry = _kuma_monitor(imp, m, where, file)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, NegahbanError):
                raise
            raise _err(file, where, f"a field has the wrong type: {exc}") from None
        if entry is None:
            continue
        name = imp.name(m["name"], f"kuma-{m.get('id', i)}")
        if not imp.add({"name": name, **entry}, f"monitorList[{i}] id {m.get('id')}: {m['name']!r} ({m['type']})"):
            continue
        parent = by_id.get(m.get("parent")) if m.get("parent") is not None else None
        if parent is not None and parent["type"] == "group":
            groups.setdefault(parent["name"], []).append(len(imp.monitors) - 1)
    if doc.get("notificationList"):
        imp.notes.append(f"notificationList: {len(doc['notificationList'])} notification(s) not imported; "
                         "Negahban's channels are set in NEGAHBAN_* settings")
    if nested:
        imp.notes.append("Uptime Kuma groups are nested; not mapped to customers/services, the monitors have "
                         "no service")
    else:
        _groups_to_customers(imp, groups, "Uptime Kuma")
    return imp


# --- Gatus -------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration(value: Any, file: str, where: str) -> float:
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise _err(file, where, f"expected a duration like 30s, 5m or 1h30m, got {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _gatus_pattern(pat: str) -> dict[str, Any]:
    """Gatus ``pat(...)``: ``*`` matches anything and the whole body must match."""
    if pat.startswith("*") and pat.endswith("*") and "*" not in pat[1:-1] and len(pat) > 2:
        return {"pattern": pat[1:-1]}
    regex = "^" + ".*".join(re.escape(p) for p in pat.split("*")) + "$"
    return {"pattern": regex, "regex": True}


_COND = re.compile(r"^\s*(\[[A-Z_]+\](?:\.[\w.\[\]-]+)?)\s*(==|!=|<=|>=|<|>)\s*(.*?)\s*$")


def _gatus_conditions(imp: Import, entry: dict, conds: list, label: str, file: str, where: str) -> None:
    for j, cond in enumerate(conds):
        if not isinstance(cond, str):
            raise _err(file, f"{where}.conditions[{j}]", "expected a string like \"[STATUS] == 200\"")
        m = _COND.match(cond)
        if not m:
            imp.notes.append(f"{label}: condition {cond!r} not mapped (not a comparison Negahban reads)")
            continue
        left, op, right = m.groups()
        kind = entry["kind"]
        if left == "[STATUS]" and kind == "http":
            if op == "==" and right.isdigit():
                entry["expected_status"] = [int(right)]
                continue
            any_of = re.fullmatch(r"any\(\s*(\d{3}(?:\s*,\s*\d{3})*)\s*\)", right)
            if op == "==" and any_of:
                entry["expected_status"] = [int(c) for c in any_of[1].split(",")]
                continue
            if op in ("<", "<=") and right.isdigit():
                top = int(right) - (op == "<")
                entry["expected_status"] = list(range(200, top + 1))
                continue
        elif left == "[BODY]" and kind == "http" and op in ("==", "!="):
            m2 = re.fullmatch(r"pat\((.*)\)", right)
            rule = _gatus_pattern(m2[1]) if m2 else {"pattern": "^" + re.escape(right) + "$", "regex": True}
            if op == "!=":
                rule["present"] = False
            entry.setdefault("body_rules", []).append(rule)
            continue
        elif left.startswith("[BODY].") and kind == "http" and op == "==" and "(" not in right:
            entry["json_path"] = "$" + left[len("[BODY]"):]
            entry["json_equals"] = yaml.safe_load(right) if right else ""
            continue
        elif left == "[BODY]" and kind == "dns" and op == "==":
            entry.setdefault("expected_values", []).append(right)
            continue
        elif left == "[DNS_RCODE]" and kind == "dns" and op == "==":
            entry["expected_rcode"] = right.upper()
            continue
        elif left == "[CONNECTED]" and op == "==" and right == "true":
            continue  # every probe of ours is down when it cannot connect
        elif left == "[RESPONSE_TIME]" and op in ("<", "<=") and right.isdigit() and kind in (
                "http", "tcp", "dns", "udp", "smtp"):
            entry["degraded_latency_s"] = int(right) / 1000
            imp.notes.append(f"{label}: {cond!r} became degraded_latency_s {int(right) / 1000:g} "
                             "(slow is degraded here, not down)")
            continue
        elif left == "[CERTIFICATE_EXPIRATION]" and op in (">", ">=") and kind in ("http", "tcp", "smtp"):
            days = _go_duration(right, file, f"{where}.conditions[{j}]") / 86400
            entry["cert_expiry_warn_days"] = round(days, 3)
            imp.notes.append(f"{label}: {cond!r} became cert_expiry_warn_days {round(days, 3):g} "
                             "(degraded when closer, not down)")
            continue
        imp.notes.append(f"{label}: condition {cond!r} not mapped (no equivalent for a {kind} monitor)")


def _gatus_endpoint(imp: Import, e: dict, where: str, file: str) -> dict[str, Any] | None:
    url = e.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _err(file, f"{where}.url", "required (a string)")
    label = f"{where} {e.get('name')!r}"
    u = urlsplit(url.strip())
    scheme = u.scheme.lower()
    dns_block = e.get("dns")
    hostport = u.netloc

    def needs_port() -> str:
        if not u.hostname or u.port is None:
            raise _err(file, f"{where}.url", f"expected {scheme}://host:port, got {url!r}")
        return _host_port(u.hostname, u.port)

    if dns_block is not None:
        if not isinstance(dns_block, dict) or not dns_block.get("query-name"):
            raise _err(file, f"{where}.dns.query-name", "required (the name to ask)")
        rtype = str(dns_block.get("query-type", "A")).upper()
        if rtype not in _KUMA_DNS_TYPES:
            imp.skipped.append(f"{label}: DNS query-type {rtype} is not one Negahban asks")
            return None
        server = hostport if "://" in url else url.strip()
        entry: dict[str, Any] = {"kind": "dns", "target": str(dns_block["query-name"]).rstrip(".") or ".",
                                 "resolver": server}
        if rtype != "A":
            entry["record_type"] = rtype
        entry["fail_if_no_answer"] = False  # Gatus checks what its conditions say, nothing more
    elif scheme in ("http", "https"):
        entry = {"kind": "http", "target": url.strip()}
        if e.get("method"):
            entry["method"] = str(e["method"]).upper()
        if e.get("body"):
            entry["body"] = str(e["body"])
        if isinstance(e.get("headers"), dict):
            entry["headers"] = {str(k): str(v) for k, v in e["headers"].items()}
        if (e.get("client") or {}).get("insecure"):
            entry["tls_verify"] = False
    elif scheme == "tcp":
        entry = {"kind": "tcp", "target": needs_port()}
    elif scheme == "tls":
        entry = {"kind": "tcp", "target": needs_port(), "tls": True}
    elif scheme == "starttls":
        entry = {"kind": "smtp", "target": needs_port(), "tls": "starttls"}
    elif scheme == "udp":
        imp.skipped.append(f"{label}: a udp:// endpoint with no payload to send; Negahban's udp probe needs "
                           "a request (send_hex/send_text or a preset)")
        return None
    elif scheme == "icmp":
        if not u.hostname:
            raise _err(file, f"{where}.url", f"expected icmp://host, got {url!r}")
        entry = {"kind": "icmp", "target": u.hostname}
    else:
        imp.skipped.append(f"{label}: Negahban has no {scheme or 'plain'} probe ({url!r})")
        return None
    conds = e.get("conditions") or []
    if not isinstance(conds, list):
        raise _err(file, f"{where}.conditions", "expected a list of strings")
    _gatus_conditions(imp, entry, conds, label, file, where)
    if (e.get("client") or {}).get("timeout"):
        timeout = _go_duration(e["client"]["timeout"], file, f"{where}.client.timeout")
        if 0 < timeout <= 120:
            entry["timeout_s"] = timeout
    interval = _go_duration(e["interval"], file, f"{where}.interval") if "interval" in e else 60.0
    entry["interval"] = _interval(imp, interval, label)
    if e.get("enabled") is False:
        entry["enabled"] = False
    return entry


def gatus(path: Path) -> Import:
    file = str(path)
    doc = _yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("endpoints"), list):
        raise _err(file, "endpoints", "missing: expected a Gatus config with an endpoints list")
    imp = Import(f"Gatus config {path.name}")
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(doc["endpoints"]):
        where = f"endpoints[{i}]"
        if not isinstance(e, dict):
            raise _err(file, where, "expected a mapping")
        if not isinstance(e.get("name"), str) or not e["name"].strip():
            raise _err(file, f"{where}.name", "required (a string)")
        entry = _gatus_endpoint(imp, e, where, file)
        if entry is None:
            continue
        group = e.get("group")
        name = imp.name(f"{group}-{e['name']}" if group else e["name"], f"gatus-{i}")
        origin = f"{where}: {e['name']!r}" + (f" (group {group!r})" if group else "")
        if imp.add({"name": name, **entry}, origin) and group:
            groups.setdefault(str(group), []).append(len(imp.monitors) - 1)
    alerting = sum(1 for e in doc["endpoints"] if e.get("alerts"))
    if alerting or doc.get("alerting"):
        imp.notes.append(f"alerting: alerts of {alerting} endpoint(s) not imported; Negahban's channels are set in "
                         "NEGAHBAN_* settings and its confirmation counts in each monitor's policy")
    for key in ("external-endpoints", "suites"):
        if doc.get(key):
            imp.skipped.append(f"{key}: {len(doc[key])} entries not imported (pushed results; use a heartbeat "
                               "monitor)" if key == "external-endpoints" else f"{key}: not imported")
    _groups_to_customers(imp, groups, "Gatus")
    return imp


# --- blackbox_exporter + Prometheus ------------------------------------------------------------------------

def blackbox(modules_path: Path, prometheus_path: Path) -> Import:
    bb_file, prom_file = str(modules_path), str(prometheus_path)
    bb = _yaml(modules_path)
    if not isinstance(bb, dict) or not isinstance(bb.get("modules"), dict) or not bb["modules"]:
        raise _err(bb_file, "modules", "missing: expected a mapping of module names to modules")
    prom = _yaml(prometheus_path)
    if not isinstance(prom, dict) or not isinstance(prom.get("scrape_configs"), list):
        raise _err(prom_file, "scrape_configs", "missing: expected a Prometheus config with scrape_configs")
    imp = Import(f"blackbox_exporter modules {modules_path.name} with Prometheus jobs {prometheus_path.name}")
    modules: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for name, body in bb["modules"].items():
        try:  # one module at a time, so one we cannot read is listed, not fatal
            modules.update(parse_modules(yaml.safe_dump({"modules": {name: body}})))
        except InvalidInput as exc:
            refused[str(name)] = f"{exc.field}: {exc.reason}"
    global_interval = (prom.get("global") or {}).get("scrape_interval", "1m")
    for i, job in enumerate(prom["scrape_configs"]):
        where = f"scrape_configs[{i}]"
        if not isinstance(job, dict) or not job.get("job_name"):
            raise _err(prom_file, f"{where}.job_name", "required")
        jname = str(job["job_name"])
        if job.get("metrics_path") != "/probe":
            continue  # not a blackbox job: nothing to import, and nothing lost
        mods = (job.get("params") or {}).get("module")
        if not isinstance(mods, list) or len(mods) != 1:
            raise _err(prom_file, f"{where}.params.module", "expected a list with one module name")
        mod = str(mods[0])
        if any(k in job for k in ("file_sd_configs", "http_sd_configs", "dns_sd_configs", "consul_sd_configs")):
            imp.skipped.append(f"job {jname!r}: targets from service discovery are not in the file; add them "
                               "as monitors by hand")
        targets = [t for sc in job.get("static_configs") or [] for t in (sc or {}).get("targets") or []]
        if mod in refused:
            for t in targets:
                imp.skipped.append(f"job {jname!r} target {t!r}: module {mod!r} cannot be read: {refused[mod]}")
            continue
        if mod not in modules:
            raise _err(prom_file, f"{where}.params.module", f"module {mod!r} is not in {bb_file}")
        module = modules[mod]
        interval = _go_duration(job.get("scrape_interval", global_interval), prom_file, f"{where}.scrape_interval")
        for t in targets:
            try:
                spec = module.make(str(t), module.timeout_s)
            except InvalidInput as exc:
                imp.skipped.append(f"job {jname!r} target {t!r}: {exc.reason}")
                continue
            fields = spec.model_dump(mode="json", exclude_defaults=True, exclude={"kind", "target"})
            name = imp.name(f"{jname}:" + re.sub(r"^(\w+)://", r"\1-", str(t)), f"{jname}-{len(imp.monitors)}")
            imp.add({"name": name, "kind": module.prober, "target": spec.target, **fields,
                     "interval": _interval(imp, interval, f"job {jname!r} target {t!r}")},
                    f"job {jname!r}, module {mod!r}, target {t!r}")
    used = {str((j.get("params") or {}).get("module", [None])[0]) for j in prom["scrape_configs"]
            if isinstance(j, dict) and j.get("metrics_path") == "/probe"}
    for name, reason in refused.items():
        if name not in used:
            imp.notes.append(f"module {name!r} (unused by any job) cannot be read: {reason}")
    return imp


# --- output ------------------------------------------------------------------------------------------------

def _comment(lines: list[str]) -> str:
    return "".join(f"#   {' '.join(line.splitlines())}\n" for line in lines)


class _Dumper(yaml.SafeDumper):
    """Block style, except a list of plain values (status codes, expected values) on one line."""


def _list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(isinstance(v, str | int | float | bool) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _list)


def render(imp: Import) -> str:
    """The inventory YAML with the review comments on top; checked with the inventory's own parser."""
    head = (f"# Imported from {imp.source} by `negahban import`: review it, then\n"
            "# `negahban inventory apply --check FILE` and `negahban inventory apply FILE`.\n")
    head += f"# Not imported ({len(imp.skipped)}):\n" + (_comment(imp.skipped) or "#   nothing\n")
    if imp.notes:
        head += f"# Notes ({len(imp.notes)}):\n" + _comment(imp.notes)
    body = ""
    if imp.customers:
        body += yaml.safe_dump({"customers": imp.customers}, sort_keys=False, allow_unicode=True)
    body += "monitors:" + ("\n" if imp.monitors else " []\n")
    for entry, origin in zip(imp.monitors, imp.origins, strict=True):
        item = yaml.dump([entry], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
        body += f"  # {origin}\n" + "".join(f"  {line}\n" for line in item.splitlines())
    text = head + body
    parse_inventory(text, "<imported inventory>")  # an importer bug shows here, not at apply time
    return text


IMPORTERS = {"uptime-kuma": uptime_kuma, "gatus": gatus, "blackbox": blackbox}
