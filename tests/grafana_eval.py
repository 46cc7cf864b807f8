"""Evaluate a Grafana dashboard's Prometheus queries the way Grafana would, against a Prometheus HTTP API.

What Grafana does and this repeats: query variables (``label_values(...)``, ``query_result(...)``) are read from
Prometheus in order, each seeing the values of the ones before; interval and custom variables take their
current (or first) option; a variable set to "All" or to several values becomes ``(a|b)`` with each value
regex-escaped as Grafana's Prometheus data source escapes it (``prometheusSpecialRegexEscape``), a single value
of such a variable is escaped the same way, and any other variable is substituted as it is. Panels repeated by
a variable (and the panels of a repeated row) are evaluated once per value of that variable, as Grafana draws
them; every other panel once with the variables at their "All" value. The built-in ``$__interval``,
``$__rate_interval`` and ``$__range`` take the values of a 15-minute dashboard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import aiohttp

BUILTINS = {"__interval": "15s", "__interval_ms": "15000", "__rate_interval": "1m", "__range": "15m",
            "__range_s": "900", "__range_ms": "900000", "__auto_interval": "15s"}
NO_VALUE = "__no_value__"
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")


def regex_escape(value: str) -> str:
    """Grafana's prometheusSpecialRegexEscape: regex specials escaped with a backslash that a PromQL string
    literal keeps (so written doubled)."""
    return _REGEX_SPECIAL.sub(r"\\\\\1", value)


@dataclass
class Query:
    dashboard: str
    panel: str
    expr: str            # with every variable substituted
    template: str        # as written in the dashboard
    repeat_value: str | None = None  # the value of the repeat variable this copy of the panel is drawn for


@dataclass
class Variable:
    name: str
    kind: str
    multi: bool
    include_all: bool
    all_value: str | None
    values: list[str] = field(default_factory=list)

    def formatted(self, only: str | None = None) -> str:
        if not self.values and only is None:
            # Grafana shows "None" and its panels draw nothing: a value no series carries stands for that.
            return NO_VALUE
        if self.kind in {"interval", "constant", "textbox", "datasource"} or not (self.multi or self.include_all):
            return only if only is not None else (self.values[0] if self.values else "")
        if only is not None:
            return regex_escape(only)
        if self.include_all and self.all_value:
            return self.all_value
        escaped = [regex_escape(v) for v in self.values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(text: str, variables: dict[str, Variable], only: dict[str, str] | None = None) -> str:
    only = only or {}

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTINS:
            return BUILTINS[name]
        var = variables.get(name)
        if var is None:
            return m.group(0)
        return var.formatted(only.get(name))

    return _VAR.sub(repl, text)


def walk_panels(panels: list[dict], repeat: str | None = None):
    """Every panel with the repeat variable that applies to it (its own, or its row's)."""
    row_repeat = None
    for panel in panels:
        if panel.get("type") == "row":
            row_repeat = panel.get("repeat") or None
            yield from walk_panels(panel.get("panels", []), row_repeat or repeat)
            continue
        yield panel, panel.get("repeat") or row_repeat or repeat
        yield from walk_panels(panel.get("panels", []), panel.get("repeat") or row_repeat or repeat)


def panel_targets(dashboard: dict) -> list[tuple[str, str, str | None]]:
    """(panel title, expression as written, repeat variable) for every Prometheus query of every panel."""
    out = []
    for panel, repeat in walk_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr") and not target.get("hide"):
                out.append((panel.get("title", ""), target["expr"], repeat))
    return out


class Prometheus:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def _get(self, path: str, params: dict) -> list | dict:
        async with self.http.get(f"{self.base}{path}", params=params) as resp:
            body = await resp.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    async def instant(self, expr: str) -> list[dict]:
        return (await self._get("/api/v1/query", {"query": expr}))["result"]

    async def label_values(self, label: str, match: str | None) -> list[str]:
        if match is None:
            return sorted(await self._get(f"/api/v1/label/{label}/values", {}))
        series = await self._get("/api/v1/series", {"match[]": match})
        return sorted({s[label] for s in series if label in s})


_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),\s*)?(\w+)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)


async def read_variables(dashboard: dict, prom: Prometheus) -> dict[str, Variable]:
    variables: dict[str, Variable] = {}
    for spec in dashboard.get("templating", {}).get("list", []):
        kind = spec.get("type", "query")
        var = Variable(spec["name"], kind, bool(spec.get("multi")), bool(spec.get("includeAll")),
                       spec.get("allValue") or None)
        query = spec.get("query")
        if isinstance(query, dict):  # newer Grafana: {"query": "...", "refId": ...}
            query = query.get("query", "")
        if kind == "query":
            query = substitute(query or "", variables)
            if m := _LABEL_VALUES.match(query):
                values = await prom.label_values(m.group(2), m.group(1))
            elif m := _QUERY_RESULT.match(query):
                values = [_metric_line(r) for r in await prom.instant(m.group(1))]
            else:
                raise AssertionError(f"variable {spec['name']}: a query this evaluator does not know: {query!r}")
            if regex := spec.get("regex"):
                values = _apply_regex(regex, values)
            var.values = values
        elif kind in {"interval", "custom"}:
            current = (spec.get("current") or {}).get("value")
            options = [o.strip() for o in (query or "").split(",") if o.strip()]
            var.values = options if kind == "custom" else [current if isinstance(current, str) and
                                                            current and not current.startswith("$") else options[0]]
        elif kind == "constant":
            var.values = [query or ""]
        elif kind == "datasource":
            var.values = ["Prometheus"]
        else:  # textbox and the like: their current value
            var.values = [str((spec.get("current") or {}).get("value", ""))]
        variables[var.name] = var
    return variables


def _metric_line(result: dict) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(result["metric"].items()) if k != "__name__")
    return f'{result["metric"].get("__name__", "")}{{{labels}}} {result["value"][1]} {result["value"][0]}'


def _apply_regex(regex: str, values: list[str]) -> list[str]:
    m = re.match(r"^/(.*)/([gimsuy]*)$", regex, re.S)
    pattern = re.compile(m.group(1) if m else regex, re.I if m and "i" in m.group(2) else 0)
    out = []
    for value in values:
        if found := pattern.search(value):
            out.append(found.group(1) if found.groups() and found.group(1) is not None else value)
    return sorted(set(out))


async def dashboard_queries(name: str, dashboard: dict, prom: Prometheus) -> tuple[list[Query], list[Query]]:
    """The dashboard's panel queries with every variable at "All" (one per query of a panel), and the queries
    Grafana sends for the copies of repeated panels (one per query, per value of the repeat variable)."""
    variables = await read_variables(dashboard, prom)
    at_all, repeated = [], []
    for title, template, repeat in panel_targets(dashboard):
        at_all.append(Query(name, title, substitute(template, variables), template))
        if repeat and repeat in variables:
            for value in variables[repeat].values:
                repeated.append(Query(name, title, substitute(template, variables, {repeat: value}), template, value))
    return at_all, repeated


async def instance_values(prom: Prometheus) -> list[str]:
    return await prom.label_values("instance", "probe_success")
