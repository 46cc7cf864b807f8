"""With the real Alertmanager (Debian ``prometheus-alertmanager``) on loopback, its webhook pointing at our
receiver route on loopback: alerts become incidents, resolutions resolve them, silences are reconciled."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from incidents.alertmanager import AlertmanagerConfig, reconcile
from incidents.models import Severity, Source, Status
from monitor.accounts import Role, create_user, issue_token
from monitor.clock import SystemClock
from tests.incident_support import incidents

AM_BINARY = "/usr/bin/prometheus-alertmanager"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which(AM_BINARY) is None, reason="prometheus-alertmanager missing")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """The service's web app (the real receiver route) on a loopback server; ``calls`` yields the status of
    each webhook delivery as it completes."""

    def __init__(self, sessionmaker, config: AlertmanagerConfig) -> None:
        self.sessionmaker, self.config = sessionmaker, config
        self.calls: asyncio.Queue[int] = asyncio.Queue()
        self.sizes: list[int] = []  # Content-Length of each delivery
        self.runner: web.AppRunner | None = None
        self.token = ""

    async def start(self) -> str:
        async with self.sessionmaker() as s, s.begin():
            user = await create_user(s, "alertmanager", Role.NOC)
            self.token = await issue_token(s, user.id, "alertmanager", datetime.now(UTC))
        deps = WebDeps(sessionmaker=self.sessionmaker, clock=SystemClock(), registry=CollectorRegistry(),
                       services={"alertmanager": self.config})
        app = build_app(deps)
        app.on_response_prepare.append(self._seen)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}/api/v1/alertmanager"

    async def _seen(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path == "/api/v1/alertmanager":
            self.sizes.append(request.content_length or 0)
            self.calls.put_nowait(response.status)

    async def next_call(self) -> int:
        return await asyncio.wait_for(self.calls.get(), 30)


AM_CONFIG = """
route:
  receiver: negahban
  group_by: ['alertname', 'instance']
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: negahban
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


@pytest.fixture
async def alertmanager(tmp_path):
    procs = []

    async def start(webhook_url: str, token: str) -> str:
        port = free_port()
        cfg = tmp_path / "alertmanager.yml"
        cfg.write_text(AM_CONFIG.format(url=webhook_url, token=token))
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, returns at once
            [AM_BINARY, f"--config.file={cfg}", f"--storage.path={tmp_path / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        await _wait_ready(url, proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


async def _wait_ready(url: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):  # bounded: at most ~10 s
            if proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {proc.stderr.read().decode()}")
            try:
                async with http.get(f"{url}/-/ready") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("alertmanager did not become ready")


def am_alert(name: str, ends_at: datetime | None = None, starts_at: datetime | None = None) -> dict:
    body = {"labels": {"alertname": name, "instance": "10.0.0.5", "severity": "critical"},
            "annotations": {"summary": f"{name} on 10.0.0.5"}}
    if starts_at:
        body["startsAt"] = starts_at.isoformat()
    if ends_at:
        body["endsAt"] = ends_at.isoformat()
    return body


async def post(http: aiohttp.ClientSession, url: str, path: str, body) -> dict | list | None:
    async with http.post(f"{url}{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json() if resp.content_type == "application/json" else None


async def test_alerts_from_the_real_alertmanager_open_resolve_and_reconcile_incidents(
        sessionmaker, alertmanager):
    config = AlertmanagerConfig()
    receiver = Receiver(sessionmaker, config)
    am_url = await alertmanager(await receiver.start(), receiver.token)
    config = AlertmanagerConfig(url=am_url)
    try:
        async with aiohttp.ClientSession() as http:
            started = datetime.now(UTC).replace(microsecond=0)
            await post(http, am_url, "/api/v2/alerts", [am_alert("HostDown", starts_at=started)])
            assert await receiver.next_call() == 200
            (inc,) = await incidents(sessionmaker)
            assert (inc.source, inc.severity, inc.status) == (Source.ALERTMANAGER, Severity.URGENT,
                                                             Status.TRIGGERED)

            # Resolution: the same alert with an endsAt in the past.
            await post(http, am_url, "/api/v2/alerts",
                       [am_alert("HostDown", starts_at=started, ends_at=datetime.now(UTC))])
            await _until(receiver, lambda found: found[0].status == Status.RESOLVED, sessionmaker)

            # A silenced alert never sends "resolved": reconciliation resolves its incident.
            await post(http, am_url, "/api/v2/alerts", [am_alert("DiskFull")])
            await _until(receiver, lambda found: len(found) == 2, sessionmaker)
            now = datetime.now(UTC)
            await post(http, am_url, "/api/v2/silences", {
                "matchers": [{"name": "alertname", "value": "DiskFull", "isRegex": False, "isEqual": True}],
                "startsAt": now.isoformat(), "endsAt": now.replace(year=now.year + 1).isoformat(),
                "createdBy": "test", "comment": "maintenance"})
            assert await reconcile(sessionmaker, http, config, datetime.now(UTC)) == 1
            assert await reconcile(sessionmaker, http, config, datetime.now(UTC)) == 0
    finally:
        await receiver.runner.cleanup()
    first, second = await incidents(sessionmaker)
    assert (first.status, first.resolution) == (Status.RESOLVED, "alert_resolved")
    assert (second.status, second.resolution) == (Status.RESOLVED, "alert_suppressed")


async def _until(receiver: Receiver, done, sessionmaker) -> None:
    """Wait for webhook deliveries (bounded) until ``done(incidents)`` holds."""
    for _ in range(10):
        if done(await incidents(sessionmaker)):
            return
        await receiver.next_call()
    assert done(await incidents(sessionmaker))


@pytest.mark.serial  # 1 MB through a real Alertmanager: its webhook timeout is no place for a loaded machine
async def test_a_group_of_1000_alerts_from_the_real_alertmanager_opens_1000_incidents(
        sessionmaker, alertmanager):
    """Issue 11, item 2: Alertmanager sends a whole group in one webhook. 1,000 alerts with a 700-character
    description each (about 1 MB of JSON, as a real rack-wide outage gives) must all be read and applied: the
    first version read what had arrived so far, refused the body, and Alertmanager gave up."""
    config = AlertmanagerConfig()
    receiver = Receiver(sessionmaker, config)
    am_url = await alertmanager(await receiver.start(), receiver.token)
    started = datetime.now(UTC).replace(microsecond=0)
    alerts = [{"labels": {"alertname": "PortDown", "instance": "10.0.0.5", "severity": "critical",
                          "port": f"eth{i}"},
               "annotations": {"summary": f"port eth{i} down on 10.0.0.5",
                               "description": f"eth{i} " + "x" * 700},
               "startsAt": started.isoformat()} for i in range(1000)]
    try:
        async with aiohttp.ClientSession() as http:
            await post(http, am_url, "/api/v2/alerts", alerts)
            statuses = [await receiver.next_call()]
            for _ in range(5):  # bounded: Alertmanager may split the first flush from the rest of the group
                if len(await incidents(sessionmaker)) == 1000:
                    break
                statuses.append(await receiver.next_call())
    finally:
        await receiver.runner.cleanup()
    found = await incidents(sessionmaker)
    assert set(statuses) == {200}, statuses
    assert len(found) == 1000
    assert len({inc.alert_fingerprint for inc in found}) == 1000
    assert max(receiver.sizes) > 800_000, receiver.sizes  # one delivery carried (nearly) the whole group
