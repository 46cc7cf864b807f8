"""Small real servers on loopback for tests."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from aiohttp import web

POLL_S = 0.2


def wait_until_answering(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Wait until the server process ``proc`` answers ``url`` with 200. A bounded poll: no event crosses the
    process boundary; fails at once if the process exits, with the end of its stderr when it was piped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            raise AssertionError(f"the server exited with {proc.returncode}: {err}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.HTTPError, OSError):
            pass
        time.sleep(POLL_S)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s} s")


def stop_process(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Stop a server process the way its service manager would: SIGTERM, then SIGKILL after ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


async def status_target(status: dict) -> web.AppRunner:
    """An HTTP server on 127.0.0.1 (any free port) answering ``/`` with ``status["code"]``, read per request,
    so a test flips the target between up and down by changing the dict."""

    async def handler(request):
        return web.Response(status=status["code"], text="hello")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


class AcceptingPort:
    """A TCP port on 127.0.0.1 that accepts and closes every connection (a live TCP service) until ``close``;
    a closed one refuses, and ``open`` serves it again on the same port. Served from a thread, so a test's
    event loop and real processes alike can connect to it."""

    def __init__(self) -> None:
        self.sock = self._bind(0)
        self.port = self.sock.getsockname()[1]
        self.open()

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    def open(self) -> None:
        if self.sock.fileno() == -1:
            self.sock = self._bind(self.port)
        self.sock.listen(4096)
        sock = self.sock

        def serve() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                conn.close()

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.sock.close()
