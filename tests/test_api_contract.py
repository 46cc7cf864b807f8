"""The API keeps its contract: schemathesis, driven by the service's own OpenAPI document, calls every
operation of a live ``negahban serve`` (SQLite, loopback) with a staff and a customer token, and every answer
must be no 5xx and fit the document (documented status, media type, headers and body schema).

Bounded by count, not by a timer: ``CONTRACT_EXAMPLES`` generated cases per operation, token and mode
(derandomized, so a run is repeatable and its length is the same on a busy machine; about 2,800 requests, 1-3
minutes here). The number of requests and the time taken are printed (``-s``); the requests are checked to be
well above the number of operations, so a run that quietly skipped everything fails.
"""

from __future__ import annotations

import http.cookiejar
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboards.web.app import ROUTE_TABLES
from dashboards.web.openapi import openapi_path
from tests.loopback import wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
NEGAHBAN = str(Path(sys.executable).with_name("negahban"))
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# An endless event stream cannot be answered within a request; tests/test_noc.py covers it.
SKIP = {("GET", "/api/v1/noc/events")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict, *args: str) -> str:
    out = subprocess.run([NEGAHBAN, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The real service on loopback, on SQLite, with the example inventory, a staff and a customer token."""
    tmp = tmp_path_factory.mktemp("contract")
    port = _free_port()
    env = {**os.environ, "NEGAHBAN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'contract.db'}",
           "NEGAHBAN_LISTEN_HOST": "127.0.0.1", "NEGAHBAN_LISTEN_PORT": str(port), "NEGAHBAN_RUN_SCHEDULER": "false",
           "NEGAHBAN_COOKIE_SECURE": "false", "NEGAHBAN_ICMP": "off", "NEGAHBAN_LOG_LEVEL": "WARNING"}
    _cli(env, "inventory", "apply", "examples/inventory.yaml")
    _cli(env, "user", "add", "st-admin", "--role", "admin", "--no-password")
    _cli(env, "user", "add", "st-customer", "--role", "customer", "--customer", "parsian-shop", "--no-password")
    tokens = {"staff": _cli(env, "user", "token", "st-admin"), "customer": _cli(env, "user", "token", "st-customer")}
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen([NEGAHBAN, "serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/readyz", proc)
        yield {"base": base, "tokens": tokens, "log": tmp / "serve.log"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _operations(schema):
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) not in SKIP:
            yield op


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie, request) -> bool:
        return False


class Run:
    def __init__(self, base: str) -> None:
        self.base, self.requests, self.failures = base, 0, []
        self.statuses: Counter[str] = Counter()
        self.by_op: Counter[tuple] = Counter()
        self.session = requests.Session()
        # No cookie jar: a cookie one call sets (the login form's) must not leak into the next.
        self.session.cookies.set_policy(_NoCookies())

    def exercise(self, op, headers: dict, mode: GenerationMode, label: str) -> None:
        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                             verbosity=hypothesis.Verbosity.quiet)
        @hypothesis.given(case=op.as_strategy(generation_mode=mode))
        def one(case):
            response = case.call(base_url=self.base, session=self.session, headers=headers, timeout=30)
            self.requests += 1
            self.statuses[f"{label} {response.status_code}"] += 1
            self.by_op[(label, op.method.upper(), op.path, response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all collected, reported together
                self.failures.append(f"{label} {mode.value} {op.method.upper()} {op.path}: "
                                     f"{type(exc).__name__}: {str(exc)[:600]}")

        try:
            one()
        except hypothesis.errors.Unsatisfiable:
            # Nothing of the operation can be made invalid (no parameters, no body): negative mode has no case.
            assert mode is GenerationMode.NEGATIVE, f"{op.method} {op.path}: no valid case"


def test_every_operation_answers_within_the_document_for_staff_and_customer(live):
    schema = schemathesis.openapi.from_url(f"{live['base']}/api/v1/openapi.json")
    run, started = Run(live["base"]), time.monotonic()
    operations = list(_operations(schema))
    declared = {(e.method, openapi_path(e.path)) for t in ROUTE_TABLES for e in t.entries}
    # Schemathesis leaves out the operation that serves the document it was loaded from.
    served = {("GET", "/api/v1/openapi.json")}
    assert {(op.method.upper(), op.path) for op in operations} == declared - SKIP - served, "every route is run"
    for op in operations:
        for label, token in live["tokens"].items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run.exercise(op, {"Authorization": f"Bearer {token}"}, mode, label)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {len(operations)} operations, {run.requests} requests in {elapsed:.0f} s, "
          f"statuses {dict(sorted(run.statuses.items()))}")
    assert not run.failures, f"{len(run.failures)} failures:\n" + "\n".join(run.failures[:40])
    assert run.requests >= 4 * len(operations)
