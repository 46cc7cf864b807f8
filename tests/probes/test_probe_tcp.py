"""TCP probe against loopback servers: banner, silent, send/expect, refused."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from probes import Outcome, TcpSpec, probe_tcp
from probes.tcp import split_host_port


@pytest.fixture
async def tcp_servers():
    """Three servers: one greets with an SSH banner, one says nothing, one answers PING with PONG."""
    closing = asyncio.Event()

    async def banner(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.6 test\r\n")
        await writer.drain()
        await closing.wait()
        writer.close()

    async def silent(reader, writer):
        await closing.wait()
        writer.close()

    async def pong(reader, writer):
        line = await reader.readline()
        writer.write(b"PONG\r\n" if line == b"PING\r\n" else b"ERR\r\n")
        await writer.drain()
        writer.close()

    servers = {name: await asyncio.start_server(fn, "127.0.0.1", 0)
               for name, fn in (("banner", banner), ("silent", silent), ("pong", pong))}
    yield {name: f"127.0.0.1:{s.sockets[0].getsockname()[1]}" for name, s in servers.items()}
    closing.set()
    for server in servers.values():
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("server", "spec", "outcome", "reason"), [
    ("banner", {}, Outcome.UP, "ok"),
    ("banner", {"expect": "^SSH-2\\.0-"}, Outcome.UP, "ok"),
    ("banner", {"expect": "^220 "}, Outcome.DOWN, "expect_mismatch"),
    ("silent", {}, Outcome.UP, "ok"),
    ("silent", {"expect": "^SSH-"}, Outcome.DOWN, "expect_mismatch"),
    ("pong", {"send": "PING\r\n", "expect": "PONG"}, Outcome.UP, "ok"),
    ("pong", {"send": "HELLO\r\n", "expect": "PONG"}, Outcome.DOWN, "expect_mismatch"),
])
async def test_it_connects_and_checks_the_answer(tcp_servers, ctx, server, spec, outcome, reason):
    result = await probe_tcp(TcpSpec(target=tcp_servers[server], timeout_s=0.5, **spec), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    assert result.latency_s < 1.0


async def test_a_silent_server_is_down_within_the_timeout_and_says_so(tcp_servers, ctx):
    result = await probe_tcp(TcpSpec(target=tcp_servers["silent"], expect="^SSH-", timeout_s=0.4), ctx)
    assert 0.4 <= result.latency_s < 0.8
    assert "connected" in result.message
    assert "connect" in result.phases


async def test_the_banner_is_kept_in_details(tcp_servers, ctx):
    result = await probe_tcp(TcpSpec(target=tcp_servers["banner"], expect="OpenSSH"), ctx)
    assert result.details["banner"].startswith("SSH-2.0-OpenSSH_9.6")


async def test_a_closed_port_is_refused(ctx):
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    result = await probe_tcp(TcpSpec(target=f"127.0.0.1:{port}"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "refused")


async def test_many_hanging_targets_do_not_delay_a_healthy_one(tcp_servers, ctx):
    # By order, not by a timer: the healthy check must finish while all 50 hanging ones are still waiting.
    finished: list[str] = []

    async def run(name: str, spec: TcpSpec):
        result = await probe_tcp(spec, ctx)
        finished.append(name)
        return result

    slow = [run("slow", TcpSpec(target=tcp_servers["silent"], expect="x", timeout_s=3)) for _ in range(50)]
    fast = run("fast", TcpSpec(target=tcp_servers["banner"], expect="SSH"))
    results = await asyncio.gather(fast, *slow)
    assert results[0].ok and finished[0] == "fast"
    assert all(r.reason == "expect_mismatch" for r in results[1:])


async def test_cancelling_a_probe_closes_its_connection(ctx):
    connected, closed = asyncio.Event(), asyncio.Event()

    async def silent_until_eof(reader, writer):
        connected.set()
        await reader.read()  # returns at EOF, i.e. when the prober's side is gone
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent_until_eof, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    task = asyncio.create_task(probe_tcp(TcpSpec(target=f"127.0.0.1:{port}", expect="x", timeout_s=30), ctx))
    await asyncio.wait_for(connected.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(closed.wait(), 5)
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(("target", "expected"), [
    ("example.test:22", ("example.test", 22)), ("[::1]:25", ("::1", 25)), ("10.0.0.1:443", ("10.0.0.1", 443)),
])
def test_targets_split_into_host_and_port(target, expected):
    assert split_host_port(target) == expected


@pytest.mark.parametrize("target", ["example.test", "::1:25", "host:0", "host:http", ":22"])
def test_a_bad_target_is_rejected(target):
    with pytest.raises(ValidationError, match="target"):
        TcpSpec(target=target)
