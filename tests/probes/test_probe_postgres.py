"""PostgreSQL probe against the local PostgreSQL and scripted servers for the states it cannot be put in."""

from __future__ import annotations

import asyncio
import struct

import pytest

from probes import PROBERS, Outcome, PostgresSpec, probe_postgres
from tests.probes.conftest import leaf_context
from tests.probes.port_servers import PG_TARGET, free_port, says, scripted, silent


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def error(sqlstate: str, text: str, severity: str = "FATAL") -> bytes:
    fields = f"S{severity}\0V{severity}\0C{sqlstate}\0M{text}\0".encode() + b"\0"
    return message(b"E", fields)


async def test_the_real_server_asks_a_stranger_to_authenticate_or_refuses_the_role_and_is_up(ctx):
    result = await PROBERS["postgres"](PostgresSpec(target=PG_TARGET), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    # trust auth tells a missing role after AuthenticationOk; password auth asks for it first
    assert result.details.get("sqlstate") == "28000" or result.details["auth"] in {"md5", "sasl", "password"}
    assert {"resolve", "connect", "processing"} <= result.phases.keys()


async def test_a_missing_database_still_proves_the_server_alive(ctx):
    result = await probe_postgres(PostgresSpec(target=PG_TARGET, user="postgres",
                                               database="negahban_no_such_db"), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    assert result.details["sqlstate"] == "3D000"
    assert "does not exist" in result.details["error"]


async def test_with_trust_auth_it_logs_in_reads_the_version_and_says_goodbye(ctx):
    result = await probe_postgres(PostgresSpec(target=PG_TARGET, user="postgres", database="postgres"), ctx)
    assert result.ok, result.message
    if result.details["auth"] != "ok":
        pytest.fail(f"the local PostgreSQL asks postgres for {result.details['auth']} authentication")
    assert result.details["server_version"][:2].isdigit()


async def test_tls_required_from_a_server_without_tls_is_down(ctx):
    result = await probe_postgres(PostgresSpec(target=PG_TARGET, tls=True), ctx)
    if result.details.get("tls"):
        pytest.skip("the local PostgreSQL has ssl=on; the scripted TLS server below covers the refusal")
    assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_unavailable")


@pytest.mark.parametrize(("reply", "outcome", "reason"), [
    (error("57P03", "the database system is starting up"), Outcome.DOWN, "starting_up"),
    (error("57P03", "the database system is shutting down"), Outcome.DOWN, "shutting_down"),
    (error("57P03", "the database system is not yet accepting connections"), Outcome.DOWN, "cannot_connect_now"),
    (error("57P01", "terminating connection due to administrator command"), Outcome.DOWN, "shutting_down"),
    (error("53300", "sorry, too many clients already"), Outcome.DEGRADED, "too_many_clients"),
    (error("53300", "remaining connection slots are reserved for roles with the SUPERUSER attribute"),
     Outcome.DEGRADED, "too_many_clients"),
    (error("53100", "could not extend file: No space left on device"), Outcome.DEGRADED, "insufficient_resources"),
    (error("28P01", 'password authentication failed for user "negahban"'), Outcome.UP, "ok"),
    (message(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\0\0"), Outcome.UP, "ok"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", Outcome.DOWN, "protocol_error"),
    (b"", Outcome.DOWN, "closed"),
])
async def test_the_first_answer_is_classified(ctx, reply, outcome, reason):
    async with scripted(says(reply, read_first=8)) as target:
        result = await probe_postgres(PostgresSpec(target=target), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message


async def test_the_sqlstate_and_message_are_in_details_and_message(ctx):
    async with scripted(says(error("57P03", "the database system is starting up"), read_first=8)) as target:
        result = await probe_postgres(PostgresSpec(target=target), ctx)
    assert result.details["sqlstate"] == "57P03"
    assert "57P03" in result.message and "starting up" in result.message


def tls_server(server_tls, answer: bytes = b"S"):
    async def handler(reader, writer):
        assert struct.unpack("!II", await reader.readexactly(8)) == (8, 80877103)
        writer.write(answer)
        await writer.drain()
        if answer != b"S":
            writer.close()
            return
        await writer.start_tls(server_tls)
        size = struct.unpack("!I", await reader.readexactly(4))[0]
        startup = await reader.readexactly(size - 4)
        assert b"user\0negahban\0" in startup
        writer.write(message(b"R", struct.pack("!I", 5) + b"salt"))
        await writer.drain()
        writer.close()

    return handler


@pytest.mark.parametrize(("days_left", "outcome", "reason"), [
    (90, Outcome.UP, "ok"),
    (3, Outcome.DEGRADED, "cert_expiring"),
])
async def test_over_tls_it_checks_the_certificate_then_the_server(ca, ctx, days_left, outcome, reason):
    async with scripted(tls_server(leaf_context(ca, "db.test", days_left=days_left))) as target:
        result = await probe_postgres(PostgresSpec(target=target, tls=True, server_name="db.test"), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    assert result.details["tls"] is True and result.details["auth"] == "md5"
    assert "tls" in result.phases


async def test_a_certificate_for_another_name_is_a_tls_error(ca, ctx):
    async with scripted(tls_server(leaf_context(ca, "other.test", days_left=90))) as target:
        result = await probe_postgres(PostgresSpec(target=target, tls=True, server_name="db.test"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_error")


async def test_a_silent_server_times_out_and_a_closed_port_is_refused(ctx):
    release = asyncio.Event()
    async with scripted(silent(release)) as target:
        result = await probe_postgres(PostgresSpec(target=target, timeout_s=0.3), ctx)
        release.set()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout")
    closed = await probe_postgres(PostgresSpec(target=f"127.0.0.1:{free_port()}"), ctx)
    assert (closed.outcome, closed.reason) == (Outcome.DOWN, "refused")
