"""MySQL/MariaDB probe against the real MariaDB and scripted servers for the errors it cannot be made to send."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
from pydantic import ValidationError

from probes import PROBERS, MysqlSpec, Outcome, probe_mysql
from tests.probes.port_servers import free_port, says, scripted, silent


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def err(code: int, message: str, sqlstate: str | None = None) -> bytes:
    marker = b"#" + sqlstate.encode() if sqlstate else b""
    return packet(0, b"\xff" + code.to_bytes(2, "little") + marker + message.encode())


async def test_the_real_server_greets_with_its_version_and_a_connection_id(mariadb, ctx):
    result = await PROBERS["mysql"](MysqlSpec(target=mariadb), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    assert result.details["protocol"] == 10
    assert result.details["server_version"][0].isdigit()
    assert not result.details["server_version"].startswith("5.5.5-")
    assert result.details["connection_id"] > 0
    assert result.details["auth"] in {"denied", "ok"}
    assert {"resolve", "connect", "processing"} <= result.phases.keys()


async def test_each_check_is_a_new_connection_with_a_new_id(mariadb, ctx):
    ids = [(await probe_mysql(MysqlSpec(target=mariadb, user=None), ctx)).details["connection_id"]
           for _ in range(2)]
    assert ids[1] > ids[0]


def _sql(target: str, query: str) -> str | None:
    """Run ``query`` as root without a password with the server's own client; None if that is impossible."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        return None
    host, port = target.split(":")
    run = subprocess.run([client, "-h", host, "-P", port, "-u", "root", "-N", "-e", query],
                         capture_output=True, text=True)
    return run.stdout if run.returncode == 0 else None


def _preauth_aborts(target: str) -> int | None:
    out = _sql(target, "show global status like 'Aborted_connects_preauth'")
    return int(out.split()[1]) if out else None


async def _settled(target: str, ids: list[int]) -> None:
    """Wait (a bounded poll) until the server's threads for ``ids`` ended: only then are the counters final.
    The loop must keep running meanwhile: it is what closes the probes' sockets."""
    deadline = time.monotonic() + 10
    query = f"select count(*) from information_schema.processlist where id in ({','.join(map(str, ids))})"
    while time.monotonic() < deadline:
        if (await asyncio.to_thread(_sql, target, query)).strip() == "0":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"connections {ids} still open on the server after 10 s")


async def _ids(target: str, ctx, n: int, **spec) -> list[int]:
    results = [await probe_mysql(MysqlSpec(target=target, **spec), ctx) for _ in range(n)]
    assert all(r.ok for r in results), [r.message for r in results]
    return [r.details["connection_id"] for r in results]


async def test_the_login_attempt_is_not_a_handshake_error_that_would_block_the_probing_host(mariadb, ctx):
    """A hang-up after the greeting counts towards max_connect_errors (Aborted_connects_preauth); the default
    password-less login attempt does not."""
    before = _preauth_aborts(mariadb)
    if before is None:
        pytest.fail("cannot run SQL as root without a password on this server")
    await _settled(mariadb, await _ids(mariadb, ctx, 3, user=None))
    greeting_only = _preauth_aborts(mariadb)
    await _settled(mariadb, await _ids(mariadb, ctx, 3))
    after = _preauth_aborts(mariadb)
    assert greeting_only - before >= 3
    assert after == greeting_only


@pytest.mark.parametrize(("reply", "reason", "words"), [
    (err(1129, "Host '10.0.0.7' is blocked because of many connection errors"), "host_blocked", "1129"),
    (err(1040, "Too many connections", "08004"), "too_many_connections", "Too many connections"),
    (err(1130, "Host '10.0.0.7' is not allowed to connect to this MariaDB server"), "host_not_allowed", "1130"),
    (err(1234, "something else"), "server_error", "something else"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "protocol_error", "not a MySQL greeting"),
    (packet(0, b"\x0a5.7"), "protocol_error", "truncated"),
    (b"\x10\x00", "closed", "closed the connection"),
])
async def test_an_error_greeting_is_down_with_its_code_and_message(ctx, reply, reason, words):
    async with scripted(says(reply)) as target:
        result = await probe_mysql(MysqlSpec(target=target), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, reason), result.message
    assert words in result.message


def greeting(version: bytes = b"8.0.36") -> bytes:
    caps = (0xFFFF).to_bytes(2, "little")
    return packet(0, b"\x0a" + version + b"\x00" + (77).to_bytes(4, "little") + b"12345678\x00" + caps
                  + b"\x21\x02\x00" + caps + b"\x15" + bytes(10) + b"123456789012\x00mysql_native_password\x00")


async def test_an_error_after_the_login_attempt_is_down_unless_it_is_access_denied(ctx):
    async def login_then(reply: bytes):
        async def handler(reader, writer):
            writer.write(greeting())
            size = int.from_bytes(await reader.readexactly(3), "little")
            await reader.readexactly(1 + size)
            writer.write(reply)
            await writer.drain()
            writer.close()
        async with scripted(handler) as target:
            return await probe_mysql(MysqlSpec(target=target), ctx)

    denied = await login_then(packet(2, b"\xff" + (1045).to_bytes(2, "little") + b"#28000Access denied"))
    assert (denied.outcome, denied.details["auth"], denied.details["connection_id"]) == (Outcome.UP, "denied", 77)
    full = await login_then(packet(2, b"\xff" + (1040).to_bytes(2, "little") + b"#08004Too many connections"))
    assert (full.outcome, full.reason, full.details["error_code"]) == (Outcome.DOWN, "too_many_connections", 1040)


async def test_a_silent_server_times_out_and_a_closed_port_is_refused(ctx):
    release = asyncio.Event()
    async with scripted(silent(release)) as target:
        result = await probe_mysql(MysqlSpec(target=target, timeout_s=0.3), ctx)
        release.set()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout")
    assert "did not answer" in result.message
    closed = await probe_mysql(MysqlSpec(target=f"127.0.0.1:{free_port()}"), ctx)
    assert (closed.outcome, closed.reason) == (Outcome.DOWN, "refused")


@pytest.mark.parametrize(("target", "ok"), [
    ("db1.example", True), ("db1.example:3307", True), ("[::1]", True), ("::1", True), ("[::1]:3307", True),
    ("db1.example:0", False), ("db1.example:x", False), ("", False),
])
def test_the_target_is_a_host_with_an_optional_port(target, ok):
    if ok:
        MysqlSpec(target=target)
    else:
        with pytest.raises(ValidationError, match="target"):
            MysqlSpec(target=target)
