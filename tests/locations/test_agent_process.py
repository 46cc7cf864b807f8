"""``negahban agent`` and ``negahban location token`` as an operator runs them: real processes, a real
``negahban serve``, a TCP target on loopback, the central process stopped and started again under the agent."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from sqlalchemy import func, select

from monitor.models import LocationResult
from tests.loopback import AcceptingPort, wait_until_answering
from tests.test_cli import NEGAHBAN, _cli, _free_port, _one_line

pytestmark = pytest.mark.serial


def _env(db_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEGAHBAN_")}
    env.update(NEGAHBAN_DATABASE_URL=db_url, NEGAHBAN_ICMP="off", NEGAHBAN_COOKIE_SECURE="false", **extra)
    return env


def _serve(db_url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([NEGAHBAN, "serve"], env=_env(db_url, NEGAHBAN_LISTEN_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_answering(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def _agent(port: int, token_file, buffer, env: dict) -> subprocess.Popen:
    return subprocess.Popen([NEGAHBAN, "agent", "--central", f"http://127.0.0.1:{port}", "--token-file",
                             str(token_file), "--buffer", str(buffer), "--id", "east-1", "--icmp", "off",
                             "--send-every", "0.2", "--refresh-every", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


async def _rows(db) -> int:
    async with db.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(LocationResult))).scalar_one()


async def _until(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await pred():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def _buffered(path) -> int:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT (SELECT COUNT(*) FROM pending) + "
                           "(SELECT COALESCE(SUM(n), 0) FROM batches)").fetchone()[0]


async def test_an_agent_process_keeps_probing_while_the_central_process_is_down_and_delivers_after(db, tmp_path):
    target = AcceptingPort()
    tport = target.port
    inv = tmp_path / "inv.yaml"
    inv.write_text(f"""
locations:
  - {{name: east, display_name: شرق}}
monitors:
  - {{name: web, kind: tcp, target: '127.0.0.1:{tport}', interval: 5, locations: [east]}}
""", encoding="utf-8")
    assert _cli(["inventory", "apply", str(inv)], db.url).returncode == 0
    line = _one_line(_cli(["location", "token", "nowhere"], db.url), 2)
    assert "location 'nowhere'" in line and "east" in line
    issued = _cli(["location", "token", "east"], db.url)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert len(token) >= 32
    (tmp_path / "token").write_text(token + "\n")
    port = _free_port()
    central = _serve(db.url, port)
    buffer = tmp_path / "east.db"
    agent = _agent(port, tmp_path / "token", buffer, _env(db.url))
    try:
        async def some():
            return await _rows(db) >= 2

        await _until(some, 40, "two results from the agent")
        assert _stop(central) == 0
        before = await _rows(db)
        async def buffering():
            return _buffered(buffer) >= 2

        await _until(buffering, 30, "the agent buffering")  # it probes on with nobody to tell
        assert agent.poll() is None
        central = _serve(db.url, port)

        async def delivered():
            return _buffered(buffer) == 0 and await _rows(db) >= before + 2

        await _until(delivered, 40, "the buffered results delivered")
    finally:
        code = _stop(agent)
        err = agent.stderr.read()
        _stop(central)
        target.close()
    assert code == 0, err
    assert "Traceback" not in err and "agent_stopped" in err
    async with db.sessionmaker() as s:
        ats = (await s.execute(select(LocationResult.at).order_by(LocationResult.id))).scalars().all()
    assert len(ats) == len(set(ats)) and ats == sorted(ats)


def test_an_agent_with_an_unreadable_or_empty_token_file_says_so_in_one_line(tmp_path):
    for path, reason in ((tmp_path / "missing", "No such file"), (tmp_path / "empty", "is empty")):
        if path.name == "empty":
            path.write_text("\n")
        proc = subprocess.run([NEGAHBAN, "agent", "--central", "http://127.0.0.1:1", "--token-file", str(path),
                               "--buffer", str(tmp_path / "b.db")], capture_output=True, text=True, timeout=60)
        line = _one_line(proc, 2)
        assert "--token-file" in line and reason in line
