"""Debian's real ``snmpd`` as a test's own foreground process (never the system service or /etc/snmp).

    agent = SnmpAgent(tmp_path, v3_users=[V3User(...)])   # writes its own config and persistent dir
    agent.start()           # snmpd -f -Lo -C -c <config> udp:127.0.0.1:<free port>; returns once it answers
    agent.restart(); agent.stop()

``ns=`` runs it inside a network namespace (tests/netns.py), listening on the namespace's address.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["SnmpAgent", "V3User", "requires_snmpd", "free_udp_port"]

SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd") else None)
requires_snmpd = pytest.mark.skipif(SNMPD is None, reason="needs Debian's snmpd (tools/system-deps.sh)")


@dataclass(frozen=True)
class V3User:
    name: str
    auth: str  # SHA or SHA-256
    auth_key: str
    priv: str | None = None  # AES
    priv_key: str | None = None


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _get_request(community: str) -> bytes:
    """A minimal SNMPv2c GET of sysUpTime.0 (BER by hand, so readiness does not depend on the code under test)."""
    oid = bytes([0x06, 0x08, 0x2B, 6, 1, 2, 1, 1, 3, 0])
    varbind = bytes([0x30, len(oid) + 2]) + oid + b"\x05\x00"
    varbinds = bytes([0x30, len(varbind)]) + varbind
    pdu_body = b"\x02\x01\x01" + b"\x02\x01\x00" + b"\x02\x01\x00" + varbinds
    pdu = bytes([0xA0, len(pdu_body)]) + pdu_body
    comm = bytes([0x04, len(community)]) + community.encode()
    body = b"\x02\x01\x01" + comm + pdu
    return bytes([0x30, len(body)]) + body


@dataclass
class SnmpAgent:
    workdir: Path
    community: str = "public"
    v3_users: list[V3User] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    ns: object | None = None  # a tests.netns.Netns to run inside
    extra_config: str = ""
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "persist").mkdir(exist_ok=True)
        self.port = self.port or (161 if self.ns is not None else free_udp_port(self.host))
        self.config = self.workdir / "snmpd.conf"
        self.config.write_text(self._config_text())

    def _config_text(self) -> str:
        lines = [f"rocommunity {self.community} default"] if self.community else []
        for u in self.v3_users:
            priv = f" {u.priv} \"{u.priv_key}\"" if u.priv else ""
            lines.append(f"createUser {u.name} {u.auth} \"{u.auth_key}\"{priv}")
            lines.append(f"rouser {u.name} {'priv' if u.priv else 'auth'}")
        return "\n".join(lines) + "\n" + self.extra_config

    def argv(self) -> list[str]:
        return [SNMPD, "-f", "-Lo", "-C", "-c", str(self.config), f"udp:{self.host}:{self.port}"]

    def start(self, ready_within_s: float = 10.0) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"), "MIBS": "",
               "SNMP_PERSISTENT_DIR": str(self.workdir / "persist")}
        out = open(self.workdir / "snmpd.log", "ab")
        argv = self.argv()
        self.proc = self.ns.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env) if self.ns is not None \
            else subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        self._wait_answering(ready_within_s)

    def _wait_answering(self, bound_s: float) -> None:
        if not self.community:
            return self._wait_bound(bound_s)
        deadline = time.monotonic() + bound_s
        sock = self.ns.socket(socket.AF_INET, socket.SOCK_DGRAM) if self.ns is not None else \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"snmpd exited: {(self.workdir / 'snmpd.log').read_text()[-2000:]}")
                sock.sendto(_get_request(self.community), (self.host, self.port))
                try:
                    sock.recvfrom(4096)
                    return None
                except TimeoutError:
                    continue
        raise AssertionError(f"snmpd did not answer within {bound_s}s")

    def _wait_bound(self, bound_s: float) -> None:
        """Without a community: wait until the UDP port is bound (ss lists it)."""
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            ss = ["ss", "-Hlun", f"sport = :{self.port}"]
            out = (self.ns.run(ss).stdout if self.ns is not None else
                   subprocess.run(ss, capture_output=True, text=True).stdout)
            if out.strip():
                return
        raise AssertionError(f"snmpd did not bind within {bound_s}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
