"""Redis probe against real redis-server processes (open, and with a password and an ACL user) and scripted
servers for the states a real one cannot be put in on demand (LOADING, MASTERDOWN)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from probes import PROBERS, Outcome, RedisSpec, probe_redis
from tests.probes.port_servers import REDIS_ACL, REDIS_PASSWORD, free_port, says, scripted, silent


async def test_an_open_server_answers_pong(redis_servers, ctx):
    result = await PROBERS["redis"](RedisSpec(target=redis_servers["open"]), ctx)
    assert (result.outcome, result.reason, result.message) == (Outcome.UP, "ok", "Redis answers PONG")
    assert "auth" not in result.details
    assert {"resolve", "connect", "processing"} <= result.phases.keys()


async def test_a_locked_server_is_up_but_says_it_wants_a_password(redis_servers, ctx):
    result = await probe_redis(RedisSpec(target=redis_servers["locked"]), ctx)
    assert (result.outcome, result.reason, result.details["auth"]) == (Outcome.UP, "ok", "required")
    assert result.details["error"].startswith("NOAUTH")


async def test_a_spec_that_requires_auth_is_down_on_noauth(redis_servers, ctx):
    result = await probe_redis(RedisSpec(target=redis_servers["locked"], require_auth=True), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_required")


@pytest.mark.parametrize(("auth", "outcome", "reason"), [
    ({"password": REDIS_PASSWORD}, Outcome.UP, "ok"),
    ({"username": REDIS_ACL[0], "password": REDIS_ACL[1]}, Outcome.UP, "ok"),
    ({"password": "wrong"}, Outcome.DOWN, "auth_failed"),
    ({"username": REDIS_ACL[0], "password": "wrong"}, Outcome.DOWN, "auth_failed"),
])
async def test_auth_with_a_password_or_an_acl_user(redis_servers, ctx, auth, outcome, reason):
    result = await probe_redis(RedisSpec(target=redis_servers["locked"], require_auth=True, **auth), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    if outcome is Outcome.UP:
        assert result.details["auth"] == "ok"


async def test_a_password_sent_to_a_server_without_one_is_an_auth_failure(redis_servers, ctx):
    result = await probe_redis(RedisSpec(target=redis_servers["open"], password="not-configured"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_failed")


@pytest.mark.parametrize(("reply", "outcome", "reason"), [
    (b"-LOADING Redis is loading the dataset in memory\r\n", Outcome.DEGRADED, "loading"),
    (b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
     Outcome.DEGRADED, "master_down"),
    (b"-DENIED Redis is running in protected mode\r\n", Outcome.DOWN, "server_error"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", Outcome.DOWN, "protocol_error"),
    (b"+PONG", Outcome.DOWN, "closed"),
])
async def test_error_replies_are_classified(ctx, reply, outcome, reason):
    async with scripted(says(reply, read_first=14)) as target:
        result = await probe_redis(RedisSpec(target=target), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message


async def test_a_silent_server_times_out_and_a_closed_port_is_refused(ctx):
    release = asyncio.Event()
    async with scripted(silent(release)) as target:
        result = await probe_redis(RedisSpec(target=target, timeout_s=0.3), ctx)
        release.set()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout")
    closed = await probe_redis(RedisSpec(target=f"127.0.0.1:{free_port()}"), ctx)
    assert (closed.outcome, closed.reason) == (Outcome.DOWN, "refused")


def test_a_username_without_a_password_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as err:
        RedisSpec(target="cache1", username="probe")
    assert err.value.errors()[0]["loc"] == ("password",)


async def test_over_tls_it_verifies_the_certificate_and_pings(redis_tls, ctx):
    result = await probe_redis(RedisSpec(target=redis_tls, tls=True, server_name="cache.test"), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    assert "tls" in result.phases and result.details["cert_days_left"] > 14
    wrong_name = await probe_redis(RedisSpec(target=redis_tls, tls=True, server_name="other.test"), ctx)
    assert (wrong_name.outcome, wrong_name.reason) == (Outcome.DOWN, "tls_error")
    plain = await probe_redis(RedisSpec(target=redis_tls, timeout_s=1), ctx)  # plain text to a TLS port
    assert plain.outcome is Outcome.DOWN
