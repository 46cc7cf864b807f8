"""Real mail servers on loopback for the mail probe tests: aiosmtpd in the test's own loop, Debian's dovecot
as the test's own foreground process (a config in a temp dir, high ports on 127.0.0.1, passwd-file auth;
the system dovecot service and /etc/dovecot are never touched), and a raw greeter for the faults."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER, PASSWORD = "alice", "wonder land\"\\1"  # a space, a quote and a backslash: quoting must be right
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
POLL_S = 0.1


@dataclass
class SmtpSeen:
    """What the aiosmtpd server saw."""

    ehlo: list[str] = field(default_factory=list)
    quits: int = 0
    logins: list[tuple[str, bytes, bool]] = field(default_factory=list)


class _Handler:
    def __init__(self, seen: SmtpSeen) -> None:
        self.seen = seen

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.seen.ehlo.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server, session, envelope):
        self.seen.quits += 1
        return "221 Bye"


def _authenticator(seen: SmtpSeen):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
            and auth_data.password == PASSWORD.encode()
        seen.logins.append((mechanism, auth_data.login if isinstance(auth_data, LoginPassword) else b"", ok))
        return AuthResult(success=ok, handled=False)  # handled=True would send no 535
    return check


async def start_smtp(seen: SmtpSeen, *, starttls: ssl.SSLContext | None = None,
                     implicit: ssl.SSLContext | None = None, auth: bool = False) -> asyncio.Server:
    """aiosmtpd on 127.0.0.1 (free port): STARTTLS offered with ``starttls``, SMTPS with ``implicit``, AUTH
    PLAIN/LOGIN (over TLS only) with ``auth``."""
    def factory() -> SMTP:
        return SMTP(_Handler(seen), hostname="mx.test", ident="NegahbanTestMTA", tls_context=starttls,
                    authenticator=_authenticator(seen),
                    auth_exclude_mechanism=() if auth else ("PLAIN", "LOGIN"),
                    auth_require_tls=implicit is None)  # aiosmtpd cannot tell SMTPS is TLS
    return await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=implicit)


def port_of(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


async def start_greeter(greeting: bytes | None, answers: dict[bytes, bytes] | None = None) -> asyncio.Server:
    """A server that sends ``greeting`` (or says nothing at all: ``None``), then answers each line whose
    first word is in ``answers`` with its bytes, and ignores the rest."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if greeting is not None:
            writer.write(greeting)
        try:
            while line := await reader.readline():
                reply = (answers or {}).get(line.split(b" ", 1)[0].strip().upper())
                if reply is not None:
                    writer.write(reply)
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dovecot:
    proc: subprocess.Popen
    ports: dict[str, int]  # imap, pop3 and, with TLS, imaps, pop3s
    log: Path


_CONFIG = """
protocols = imap pop3
listen = 127.0.0.1, ::1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
{imap}
}}
service pop3-login {{
{pop3}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
"""


def _listener(name: str, port: int, tls: bool) -> str:
    return f"  inet_listener {name} {{\n    port = {port}\n    ssl = {'yes' if tls else 'no'}\n  }}"


def start_dovecot(ca: trustme.CA | None, days_left: float = 90) -> tuple[Dovecot, tempfile.TemporaryDirectory]:
    """Start dovecot in the foreground with its own config: TLS (STARTTLS and implicit) with a certificate
    from ``ca`` that expires in ``days_left`` days, or no TLS at all when ``ca`` is None. The caller stops it
    with ``stop_dovecot``."""
    tmp = tempfile.TemporaryDirectory(prefix="negahban-dovecot-")
    root = Path(tmp.name)
    root.chmod(0o755)  # the mail process runs as nobody
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "nobody", "nogroup")
    # passwd-file: user:{scheme}password; the password holds no colon.
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    names = ["imap", "pop3"] + (["imaps", "pop3s"] if ca else [])
    ports = {name: closed_port() for name in names}
    ssl_files = ""
    if ca is not None:
        now = datetime.now(UTC)
        cert = ca.issue_cert("127.0.0.1", "localhost", not_before=now - timedelta(days=30),
                             not_after=now + timedelta(days=days_left))
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        ssl_files = f"ssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"
    config = _CONFIG.format(
        dir=root, ssl="yes" if ca else "no", ssl_files=ssl_files,
        imap="\n".join(_listener(n, p, n == "imaps") for n, p in ports.items() if n.startswith("imap")),
        pop3="\n".join(_listener(n, p, n == "pop3s") for n, p in ports.items() if n.startswith("pop3")))
    (root / "dovecot.conf").write_text(config)
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Dovecot(proc, ports, root / "dovecot.log")
    try:
        _wait_listening(server)
    except BaseException:
        stop_dovecot(server)
        tmp.cleanup()
        raise
    return server, tmp


def _wait_listening(server: Dovecot, timeout_s: float = 30.0) -> None:
    """A bounded poll: dovecot says nothing on its own when its listeners are up."""
    deadline = time.monotonic() + timeout_s
    pending = set(server.ports.values())
    while pending and time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log = server.log.read_text() if server.log.exists() else ""
            raise AssertionError(f"dovecot exited with {server.proc.returncode}: "
                                 f"{server.proc.stderr.read().decode(errors='replace')} {log[-2000:]}")
        for port in list(pending):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    pending.discard(port)
        time.sleep(POLL_S)
    if pending:
        raise AssertionError(f"dovecot did not listen on {sorted(pending)} within {timeout_s} s")


def stop_dovecot(server: Dovecot) -> None:
    if server.proc.poll() is None:
        os.kill(server.proc.pid, 15)
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)
