"""blackbox_exporter's ``blackbox.yml`` modules, read into our probe specs, for the ``/probe`` endpoint.

An existing Prometheus job (``metrics_path: /probe``, ``params: {module: [...]}``, the README's relabelling of
``__address__`` to ``__param_target``) pointed at Negahban gets the same families as from blackbox_exporter.
The options read are the ones a hosting NOC's modules use (listed in ``_http``, ``_tcp``, ``_dns``,
``_icmp``); any other option is refused when the file is loaded, naming the module and the option, so a module
never silently probes something other than what its file says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.errors import InvalidInput
from probes import SPECS, SpecBase
from probes.allow import Network, target_allowed
from probes.allow import parse_networks as _parse_networks

__all__ = ["Module", "load_modules", "parse_modules", "target_allowed", "parse_networks"]


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    prober: str
    timeout_s: float
    make: Callable[[str, float], SpecBase]  # (target, timeout) -> spec


def _duration(value: Any, where: str) -> float:
    text = str(value).strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    raise InvalidInput(where, f"expected a duration like 5s, got {value!r}")


def _ip_version(opts: dict) -> int:
    proto = opts.get("preferred_ip_protocol", "ip6")
    # blackbox prefers IPv6 and falls back (ip_protocol_fallback, default true): "any" is the same thing here.
    if proto == "ip4" and opts.get("ip_protocol_fallback") is False:
        return 4
    if proto == "ip6" and opts.get("ip_protocol_fallback") is False:
        return 6
    return 4 if proto == "ip4" else 0


def _check(opts: dict, known: set[str], where: str) -> None:
    for key in opts:
        if key not in known:
            raise InvalidInput(f"{where}.{key}", "not supported by Negahban's /probe (remove it or ask for it)")


def _http(opts: dict, where: str) -> dict:
    _check(opts, {"valid_status_codes", "method", "headers", "body", "fail_if_body_matches_regexp",
                  "fail_if_body_not_matches_regexp", "fail_if_ssl", "fail_if_not_ssl", "preferred_ip_protocol",
                  "ip_protocol_fallback", "tls_config", "no_follow_redirects", "valid_http_versions"}, where)
    fields: dict[str, Any] = {"ip_version": _ip_version(opts)}
    if "valid_status_codes" in opts:
        codes = opts["valid_status_codes"]
        if not isinstance(codes, list) or not all(isinstance(c, int) and 100 <= c <= 599 for c in codes):
            raise InvalidInput(f"{where}.valid_status_codes", "a list of HTTP status codes (100-599)")
        fields["expected_status"] = codes
    if "method" in opts:
        fields["method"] = str(opts["method"]).upper()
    if "headers" in opts:
        fields["headers"] = {str(k): str(v) for k, v in opts["headers"].items()}
    if "body" in opts:
        fields["body"] = str(opts["body"])
    rules = [{"pattern": p, "regex": True, "present": False} for p in opts.get("fail_if_body_matches_regexp", [])]
    rules += [{"pattern": p, "regex": True, "present": True}
              for p in opts.get("fail_if_body_not_matches_regexp", [])]
    if rules:
        fields["body_rules"] = rules
    if opts.get("no_follow_redirects"):
        fields["follow_redirects"] = False
    if (opts.get("tls_config") or {}).get("insecure_skip_verify"):
        fields["tls_verify"] = False
    return fields


def _tcp(opts: dict, where: str) -> dict:
    _check(opts, {"query_response", "tls", "tls_config", "preferred_ip_protocol", "ip_protocol_fallback"}, where)
    fields: dict[str, Any] = {"ip_version": _ip_version(opts), "tls": bool(opts.get("tls"))}
    steps = opts.get("query_response") or []
    sends = [s["send"] for s in steps if "send" in s]
    expects = [s["expect"] for s in steps if "expect" in s]
    if len(sends) > 1 or len(expects) > 1:
        raise InvalidInput(f"{where}.query_response", "one send and one expect are supported")
    if sends:
        fields["send"] = sends[0]
    if expects:
        fields["expect"] = expects[0]
    tls_config = opts.get("tls_config") or {}
    if tls_config.get("insecure_skip_verify"):
        fields["tls_verify"] = False
    if tls_config.get("server_name"):
        fields["server_name"] = tls_config["server_name"]
    return fields


def _dns(opts: dict, where: str) -> dict:
    _check(opts, {"query_name", "query_type", "transport_protocol", "valid_rcodes", "preferred_ip_protocol",
                  "ip_protocol_fallback", "recursion_desired"}, where)
    if not opts.get("query_name"):
        raise InvalidInput(f"{where}.query_name", "required")
    fields: dict[str, Any] = {"record_type": str(opts.get("query_type", "A")).upper(),  # blackbox: ANY
                              "transport": opts.get("transport_protocol", "udp"),
                              "fail_if_no_answer": False, "query_name": opts["query_name"]}
    rcodes = opts.get("valid_rcodes") or ["NOERROR"]
    if len(rcodes) != 1:
        raise InvalidInput(f"{where}.valid_rcodes", "one rcode is supported")
    fields["expected_rcode"] = rcodes[0]
    return fields


def _icmp(opts: dict, where: str) -> dict:
    _check(opts, {"preferred_ip_protocol", "ip_protocol_fallback", "payload_size", "dont_fragment"}, where)
    return {"ip_version": _ip_version(opts), "count": 1}


_PROBERS = {"http": _http, "tcp": _tcp, "dns": _dns, "icmp": _icmp}


def _module(name: str, body: Any) -> Module:
    where = f"modules.{name}"
    if not isinstance(body, dict):
        raise InvalidInput(where, "expected a mapping")
    prober = body.get("prober")
    if prober not in _PROBERS:
        raise InvalidInput(f"{where}.prober", f"one of {', '.join(_PROBERS)} (got {prober!r})")
    timeout = _duration(body.get("timeout", "5s"), f"{where}.timeout")
    opts = body.get(prober) or {}
    if not isinstance(opts, dict):
        raise InvalidInput(f"{where}.{prober}", "expected a mapping")
    fields = _PROBERS[prober](opts, f"{where}.{prober}")
    spec_cls = SPECS[prober]

    def make(target: str, timeout_s: float) -> SpecBase:
        own = dict(fields)
        if prober == "dns":  # blackbox's target is the DNS server; our spec's target is the name asked
            own["resolver"], own["target"] = target, own.pop("query_name")
        else:
            own["target"] = target
        try:
            return spec_cls(**own, timeout_s=timeout_s)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidInput("target" if "target" in err["loc"] else f"{where}.{err['loc'][0]}",
                               err["msg"]) from None

    make(_EXAMPLE_TARGETS[prober], timeout)  # refuse a module whose options do not make a valid spec, now
    return Module(name, prober, timeout, make)


_EXAMPLE_TARGETS = {"http": "http://127.0.0.1/", "tcp": "127.0.0.1:1", "dns": "127.0.0.1", "icmp": "127.0.0.1"}


def parse_modules(text: str) -> dict[str, Module]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput("blackbox.yml", f"not valid YAML: {exc}") from None
    modules = doc.get("modules") if isinstance(doc, dict) else None
    if not isinstance(modules, dict) or not modules:
        raise InvalidInput("modules", "expected a mapping of module names to modules")
    return {str(name): _module(str(name), body) for name, body in modules.items()}


def load_modules(path: str | Path) -> dict[str, Module]:
    return parse_modules(Path(path).read_text(encoding="utf-8"))


def parse_networks(text: str) -> list[Network]:
    """``"10.0.0.0/8, 127.0.0.0/8"``: the non-public networks /probe may reach (``NEGAHBAN_PROBE_ALLOW``)."""
    try:
        return _parse_networks(text)
    except ValueError as exc:
        raise InvalidInput("NEGAHBAN_PROBE_ALLOW", str(exc)) from None
