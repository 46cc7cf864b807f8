"""The ``negahban`` command line as an admin meets it: one clear line per error, explicit choices, and an
inventory export that can be applied again after the service has run. Every test runs the installed
console script in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from monitor.accounts import User
from monitor.models import Monitor
from tests.conftest import _truncate_pg
from tests.loopback import wait_until_answering
from tests.test_inventory import GOOD

NEGAHBAN = str(Path(sys.executable).parent / "negahban")


def _cli(args, db_url, stdin=None, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("NEGAHBAN_")}
    full.update(NEGAHBAN_DATABASE_URL=db_url, **env)
    return subprocess.run([NEGAHBAN, *args], capture_output=True, text=True, env=full, input=stdin, timeout=120)


def _one_line(proc, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


async def _users(db) -> dict[str, str | None]:
    async with db.sessionmaker() as s:
        return {u.username: u.password_hash for u in (await s.execute(select(User))).scalars()}


async def test_a_duplicate_user_is_refused_in_one_line(db):
    assert _cli(["user", "add", "nora", "--role", "noc", "--password-stdin"], db.url, "s3cret\n").returncode == 0
    err = _one_line(_cli(["user", "add", "nora", "--role", "admin", "--password-stdin"], db.url, "x\n"), 2)
    assert err == "negahban: error: username: user 'nora' already exists"
    assert list(await _users(db)) == ["nora"]


async def test_a_user_without_a_password_needs_an_explicit_choice(db):
    missing = _cli(["user", "add", "svc", "--role", "noc"], db.url)
    assert missing.returncode == 2 and "--password-stdin --no-password is required" in missing.stderr
    empty = _one_line(_cli(["user", "add", "svc", "--role", "noc", "--password-stdin"], db.url, ""), 2)
    assert "no password on standard input" in empty
    assert await _users(db) == {}
    made = _cli(["user", "add", "svc", "--role", "noc", "--no-password"], db.url)
    assert made.returncode == 0 and "token-only" in made.stdout
    assert await _users(db) == {"svc": None}
    assert _cli(["user", "add", "eve", "--role", "noc", "--password-stdin"], db.url, "pw\n").returncode == 0
    assert (await _users(db))["eve"].startswith("$argon2")


@pytest.mark.parametrize("canaries, reason", [
    ("nonsense", "expected http(s)://... or kind:target"),
    ("gopher:10.0.0.1:70", "unknown probe kind 'gopher'"),
    ("tcp:10.0.0.53", "host:port"),
    ("icmp:10.0.0.1,http://", "http:// or https:// URL"),
])
def test_check_config_refuses_an_invalid_canary_like_start_up(tmp_path, canaries, reason):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    err = _one_line(_cli(["check-config"], url, NEGAHBAN_CANARIES=canaries), 2)
    assert err.startswith("negahban: error: NEGAHBAN_CANARIES=") and reason in err, err
    good = _cli(["check-config"], url, NEGAHBAN_CANARIES="tcp:10.0.0.53:53, icmp:10.0.0.1,https://example.com/")
    assert good.returncode == 0, good.stderr


def test_check_config_refuses_a_gateway_url_that_is_not_http(tmp_path):
    err = _one_line(_cli(["check-config"], f"sqlite+aiosqlite:///{tmp_path}/x.db", NEGAHBAN_SMS_GATEWAY_URL="gw"), 2)
    assert "NEGAHBAN_SMS_GATEWAY_URL='gw'" in err


def test_check_config_refuses_a_bad_notification_channel_naming_its_field(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    err = _one_line(_cli(["check-config"], url, NEGAHBAN_NOTIFICATION_CHANNELS="noc-pd: pagerdoody noc k"), 2)
    assert err.startswith("negahban: error: NEGAHBAN_NOTIFICATION_CHANNELS: notification_channels[0].kind: "
                          "'pagerdoody' is not one of"), err
    good = _cli(["check-config"], url, NEGAHBAN_NOTIFICATION_CHANNELS="noc-pd: pagerduty noc env:PD_KEY")
    assert good.returncode == 0, good.stderr


def _errors(proc) -> list[str]:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    return [line.removeprefix("negahban: error: ") for line in proc.stderr.strip().splitlines()]


async def test_inventory_apply_reports_every_error_with_its_line(db, tmp_path):
    text = (GOOD.replace("parent: r1", "parent: r9").replace("server: web1", "server: web9")
            .replace("interval: 30", "interval: often"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert _errors(_cli(["inventory", "apply", str(bad)], db.url)) == [f"{bad}:25: monitors[0].interval: "
                                                                        "Input should be a valid number, "
                                                                        "unable to parse string as a number"]
    bad.write_text(text.replace("interval: often", "interval: 30"))
    assert _errors(_cli(["inventory", "apply", str(bad)], db.url)) == [
        f"{bad}:7: devices[0].parent: unknown parent device 'r9'",
        f"{bad}:24: monitors[0].server: unknown server 'web9'",
    ]
    async with db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Monitor))).scalar() == 0


def test_inventory_errors_stop_at_the_limit_and_say_how_many_more(tmp_path):
    monitors = "".join(f"  - name: m{i}\n    kind: tcp\n    target: nowhere\n" for i in range(60))
    bad = tmp_path / "many.yaml"
    bad.write_text("monitors:\n" + monitors)
    lines = _errors(_cli(["inventory", "apply", "--check", str(bad)], f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    assert len(lines) == 51 and lines[-1] == f"{bad}: 10 more errors not shown"
    assert lines[0] == f"{bad}:4: monitors[0].target: Value error, target must be host:port (IPv6 as [addr]:port)"
    assert lines[49].startswith(f"{bad}:151: monitors[49].target:")


async def test_an_empty_inventory_is_refused_unless_allowed(db, tmp_path):
    good, empty = tmp_path / "good.yaml", tmp_path / "empty.yaml"
    good.write_text(GOOD)
    assert _cli(["inventory", "apply", str(good)], db.url).returncode == 0
    for text in ("", "monitors: []\n"):
        empty.write_text(text)
        err = _one_line(_cli(["inventory", "apply", "--prune", str(empty)], db.url), 2)
        assert "the inventory is empty" in err and "--allow-empty" in err, err
    async with db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Monitor))).scalar() == 1
    assert _cli(["inventory", "apply", "--prune", "--allow-empty", str(empty)], db.url).returncode == 0
    async with db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Monitor))).scalar() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_until_healthy(db_url: str, canary_port: int) -> None:
    """Run ``negahban serve`` (self-check and canary included) until /healthz answers, then stop it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEGAHBAN_")}
    env.update(NEGAHBAN_DATABASE_URL=db_url, NEGAHBAN_ICMP="off", NEGAHBAN_CANARIES=f"tcp:127.0.0.1:{canary_port}",
               NEGAHBAN_LISTEN_PORT=str(port), NEGAHBAN_COOKIE_SECURE="false")
    proc = subprocess.Popen([NEGAHBAN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/healthz", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


async def test_inventory_export_round_trips_after_the_service_has_run(db, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert _cli(["inventory", "apply", str(good)], db.url).returncode == 0
    with socket.socket() as canary:
        canary.bind(("127.0.0.1", 0))
        canary.listen()
        _serve_until_healthy(db.url, canary.getsockname()[1])
    async with db.sessionmaker() as s:
        names = set((await s.execute(select(Monitor.name))).scalars())
    assert "negahban-self-check" in names and any(n.startswith("canary:") for n in names), names
    first = tmp_path / "first.yaml"
    assert _cli(["inventory", "export", "-o", str(first)], db.url).returncode == 0
    assert {m["name"] for m in yaml.safe_load(first.read_text())["monitors"]} == {"web1-http"}
    if db.kind == "sqlite":
        fresh = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    else:
        await _truncate_pg(db.engine)
        fresh = db.url
    applied = _cli(["inventory", "apply", str(first)], fresh)
    assert applied.returncode == 0, applied.stderr
    second = _cli(["inventory", "export"], fresh)
    assert second.returncode == 0 and second.stdout == first.read_text()
