"""The heartbeat token as staff meet it on the command line: printed once by ``inventory apply`` and by
``heartbeat token``, stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from monitor.models import Heartbeat
from tests.test_cli import _cli, _one_line

FILE = "monitors: [{name: nightly, kind: heartbeat, period_s: 86400, grace_s: 1800}]\n"


async def _digest(db) -> str:
    async with db.sessionmaker() as s:
        return (await s.execute(select(Heartbeat.token_sha256))).scalar_one()


async def test_the_token_is_printed_once_and_stored_as_its_digest(db, tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(FILE)
    applied = _cli(["inventory", "apply", str(path)], db.url)
    assert applied.returncode == 0, applied.stderr
    (token,) = re.findall(r"heartbeat nightly: ping URL /hb/([A-Za-z0-9_-]{32})\b", applied.stdout)
    assert await _digest(db) == hashlib.sha256(token.encode()).hexdigest()
    again = _cli(["inventory", "apply", str(path)], db.url)
    assert again.returncode == 0 and "ping URL" not in again.stdout  # kept, not re-issued
    rotated = _cli(["heartbeat", "token", "nightly", "--base-url", "https://noc.example.com/"], db.url)
    assert rotated.returncode == 0, rotated.stderr
    (new,) = re.findall(r"^https://noc\.example\.com/hb/([A-Za-z0-9_-]{32})$", rotated.stdout.strip())
    assert new != token and await _digest(db) == hashlib.sha256(new.encode()).hexdigest()
    err = _one_line(_cli(["heartbeat", "token", "nope"], db.url), 2)
    assert err == "negahban: error: monitor: unknown monitor 'nope'"
