"""Servers for the port probes' tests: the real MariaDB, PostgreSQL and Redis, and scripted loopback servers
that send the faults a real server cannot be made to send on demand (a MySQL ERR greeting, PostgreSQL 57P03,
Redis LOADING), to test the classifiers.

MariaDB: the one on 127.0.0.1:3306 when it answers; otherwise a private ``mariadbd`` the fixture starts in a
temporary directory on a free port. Redis: private ``redis-server`` processes on free ports (one open, one with
a password and an ACL user). Both skip only when the server binary is absent. PostgreSQL: 127.0.0.1:5432,
which the whole suite needs (``.ci/run`` starts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.loopback import stop_process

POLL_S = 0.1
MARIADB_PORT = int(os.environ.get("MARIADB_TEST_PORT", "3306"))  # a port nobody answers on forces a private one
PG_TARGET = "127.0.0.1:5432"
REDIS_PASSWORD = "s3cret with spaces"
REDIS_ACL = ("probe", "wonder land")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int, hello: bytes, good: Callable[[bytes], bool], tls: bool = False) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            s = _unverified().wrap_socket(raw) if tls else raw
            if hello:
                s.sendall(hello)
            return good(s.recv(256))
    except OSError:
        return False


def _unverified() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def wait_for(port: int, proc: subprocess.Popen, hello: bytes, good, timeout_s: float = 60, tls: bool = False) -> None:
    """A bounded poll until the server process answers on ``port``; fail at once if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}")
        if _answers(port, hello, good, tls):
            return
        time.sleep(POLL_S)
    raise AssertionError(f"{proc.args[0]} did not answer on {port} within {timeout_s} s")


def _is_greeting(data: bytes) -> bool:
    return len(data) > 5 and data[4] == 0x0A




@pytest.fixture(scope="session")
def mariadb() -> str:
    """``host:port`` of a real MariaDB/MySQL server."""
    if _answers(MARIADB_PORT, b"", _is_greeting):
        yield f"127.0.0.1:{MARIADB_PORT}"
        return
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd") or shutil.which("mysqld")
    if not (install and server):
        pytest.fail("no MariaDB on 127.0.0.1:3306 and no mariadbd binary to start one (apt-get install mariadb-server)")
    with tempfile.TemporaryDirectory(prefix="negahban-mariadb-") as tmp:
        subprocess.run([install, "--no-defaults", f"--datadir={tmp}/data", "--user=root", "--skip-test-db",
                        "--auth-root-authentication-method=normal"], check=True, capture_output=True)
        port = free_port()
        proc = subprocess.Popen([server, "--no-defaults", f"--datadir={tmp}/data", "--user=root", f"--port={port}",
                                 "--bind-address=127.0.0.1", f"--socket={tmp}/sock", "--skip-log-bin",
                                 "--innodb-buffer-pool-size=8M"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(port, proc, b"", _is_greeting)
            yield f"127.0.0.1:{port}"
        finally:
            stop_process(proc)


def _redis(*args: str, tls: bool = False) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no redis-server binary (apt-get install redis-server)")
    port = free_port()
    listen = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    proc = subprocess.Popen([binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port, proc, b"PING\r\n", lambda data: data.startswith((b"+PONG", b"-NOAUTH")), tls=tls)
    return proc, port


@pytest.fixture(scope="session")
def redis_tls(ca, tmp_path_factory) -> str:
    """``host:port`` of a real redis-server speaking only TLS, its certificate for ``cache.test`` by ``ca``."""
    where = tmp_path_factory.mktemp("redis-tls")
    cert = ca.issue_cert("cache.test")
    cert.private_key_pem.write_to_path(where / "key.pem")
    cert.cert_chain_pems[0].write_to_path(where / "cert.pem")
    ca.cert_pem.write_to_path(where / "ca.pem")
    proc, port = _redis("--tls-cert-file", str(where / "cert.pem"), "--tls-key-file", str(where / "key.pem"),
                        "--tls-ca-cert-file", str(where / "ca.pem"), "--tls-auth-clients", "no", tls=True)
    yield f"127.0.0.1:{port}"
    stop_process(proc)


@pytest.fixture(scope="session")
def redis_servers() -> dict[str, str]:
    """``{"open": host:port, "locked": host:port}``: a real redis-server without and with a password."""
    open_proc, open_port = _redis()
    user, password = REDIS_ACL
    locked_proc, locked_port = _redis("--requirepass", REDIS_PASSWORD, "--user", user, "on", f">{password}",
                                      "~*", "+@all")
    yield {"open": f"127.0.0.1:{open_port}", "locked": f"127.0.0.1:{locked_port}"}
    stop_process(open_proc)
    stop_process(locked_proc)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted(handler: Handler):
    """A loopback TCP server running ``handler`` per connection; yields ``127.0.0.1:port``. Handlers that wait
    are released when the block ends."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


def says(data: bytes, read_first: int = 0) -> Handler:
    """A handler that (after reading ``read_first`` bytes) sends ``data`` and closes."""

    async def handler(reader, writer):
        if read_first:
            await reader.readexactly(read_first)
        writer.write(data)
        await writer.drain()
        writer.close()

    return handler


def silent(release: asyncio.Event) -> Handler:
    async def handler(reader, writer):
        await release.wait()
        writer.close()

    return handler
