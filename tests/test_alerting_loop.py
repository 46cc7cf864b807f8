"""No loops between Negahban and the Prometheus world (issue 12): Debian's Prometheus scrapes the running service
and evaluates the shipped rules; Debian's Alertmanager runs the shipped example ``alertmanager.yml``; a real SMTP
server on loopback is the NOC's mailbox. One outage of a monitored server opens exactly one incident: Negahban's
own, not a second one from ``NegahbanProbeFailing`` coming back through the receiver. An alert of another job opens
exactly one incident."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path

import aiohttp
import pytest
from aiosmtpd.controller import Controller

from incidents.models import Source
from monitor.accounts import Role, create_user, issue_token
from monitor.settings import load_settings
from negahban.service import build_service
from tests.incident_support import incidents
from tests.loopback import stop_process

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path("/usr/bin/prometheus").exists()
                                 or shutil.which("prometheus-alertmanager") is None,
                                 reason="prometheus and prometheus-alertmanager are installed by tools/system-deps.sh")]
PROM_DIR = Path(__file__).resolve().parent.parent / "dashboards" / "prometheus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.subjects.append(str(message_from_bytes(envelope.content, policy=email_policy)["Subject"]))
        return "250 OK"


def _alertmanager_config(url: str, token_file: Path, smtp_port: int) -> str:
    """The shipped example with this test's addresses, token and (short) timings; nothing else changed."""
    text = (PROM_DIR / "alertmanager.yml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8080/api/v1/alertmanager", url)
    text = text.replace("/etc/alertmanager/negahban.token", str(token_file))
    text = text.replace("smarthost: 127.0.0.1:25", f"smarthost: 127.0.0.1:{smtp_port}")
    text = re.sub(r"group_wait: \S+", "group_wait: 1s", text)
    return re.sub(r"group_interval: \S+", "group_interval: 2s", text)


def _shipped_rules_fast() -> str:
    """The shipped rules with every ``for:`` shortened to one evaluation, so the test waits seconds, not minutes."""
    return re.sub(r"for: \S+", "for: 1s", (PROM_DIR / "negahban-rules.yml").read_text(encoding="utf-8"))


OTHER_RULES = """
groups:
  - name: other-team
    rules:
      - alert: HostDown
        expr: up{job="node"} == 0
        labels: {severity: critical}
        annotations: {summary: "node exporter on {{ $labels.instance }} is down"}
"""


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"))  # noqa: SIM115




async def test_one_outage_is_one_incident_and_negahbans_own_alerts_reach_the_noc_not_the_receiver(tmp_path):
    closed_port = _free_port()  # nothing listens here: the monitored server is down
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"""
datacenters: [{{name: dc1, location: tehran}}]
servers: [{{name: web1, address: 127.0.0.1, datacenter: dc1, service: acme-web}}]
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: acme-db, kind: tcp, target: "127.0.0.1:{closed_port}", server: web1, service: acme-web, interval: 5}}
""", encoding="utf-8")
    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/ngb.db", listen_port=_free_port(),
                             inventory_file=str(inventory), cookie_secure=False)
    svc = await build_service(settings)
    await svc.start()
    async with svc.sessionmaker() as s, s.begin():
        user = await create_user(s, "prometheus", Role.NOC)
        token = await issue_token(s, user.id, "scrape and receive", svc.clock.now())
    token_file = tmp_path / "negahban.token"
    token_file.write_text(token, encoding="utf-8")

    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    am_port, prom_port = _free_port(), _free_port()
    am_cfg = tmp_path / "alertmanager.yml"
    am_cfg.write_text(_alertmanager_config(f"http://127.0.0.1:{settings.listen_port}/api/v1/alertmanager",
                                           token_file, smtp.port), encoding="utf-8")
    check = await asyncio.to_thread(subprocess.run, ["amtool", "check-config", str(am_cfg)], capture_output=True,
                                    text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    (tmp_path / "negahban-rules.yml").write_text(_shipped_rules_fast(), encoding="utf-8")
    (tmp_path / "other-rules.yml").write_text(OTHER_RULES, encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [negahban-rules.yml, other-rules.yml]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: negahban
    authorization: {{credentials_file: {token_file}}}
    static_configs: [{{targets: ["127.0.0.1:{settings.listen_port}"]}}]
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{_free_port()}"]}}]
""", encoding="utf-8")
    am = _spawn(["prometheus-alertmanager", f"--config.file={am_cfg}", f"--storage.path={tmp_path / 'am'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="], tmp_path / "am.log")
    prom = _spawn(["/usr/bin/prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                   f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                  tmp_path / "prometheus.log")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90  # bounded: scrape 1 s, rules 1 s, group_wait 1 s; usually ~15 s
        probe_failing_mailed = False
        while loop.time() < deadline:
            probe_failing_mailed = any("NegahbanProbeFailing" in s for s in mailbox.subjects)
            found = await incidents(svc.sessionmaker)
            if probe_failing_mailed and {i.source == Source.ALERTMANAGER for i in found} == {True, False}:
                break  # the alert's incident and the monitor's own (which may come a check later) are both in
            await asyncio.sleep(0.5)  # polling interval under the deadline
        # Where Alertmanager routes each alert is its own record of where it delivers it (no waiting to see
        # whether a wrong delivery arrives): each alert lists its receivers.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{am_port}/api/v2/alerts") as resp:
                active = {}
                for a in await resp.json():
                    active.setdefault(a["labels"]["alertname"], set()).update(r["name"] for r in a["receivers"])
    finally:
        stop_process(prom)
        stop_process(am)
        smtp.stop()
        found = await incidents(svc.sessionmaker)
        await svc.stop()
    assert probe_failing_mailed, (mailbox.subjects, (tmp_path / "am.log").read_text()[-2000:])
    assert active.get("NegahbanProbeFailing") == {"noc-mail"} and active.get("HostDown") == {"negahban"}, active
    from_alerts = [i for i in found if i.source == Source.ALERTMANAGER]
    from_monitors = [i for i in found if i.source != Source.ALERTMANAGER]
    assert [i.labels.get("alertname") for i in from_alerts] == ["HostDown"], [(i.title, i.labels) for i in from_alerts]
    assert len(from_monitors) == 1 and from_monitors[0].monitor_id is not None, [i.title for i in from_monitors]
