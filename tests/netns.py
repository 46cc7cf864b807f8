"""Network namespaces for tests: a namespace, a veth pair into it, processes and sockets inside it, faults.

Reusable by any test that needs a host behind a link (probes, switches, servers). Everything is created with
unique names and removed in the fixtures' finalizers. The root namespace keeps its own ``lo``, routes and
firewall untouched: the only thing added there is the root end of a veth pair with a /30 address from
10.231.0.0/16, removed again at cleanup.

    ns = Netns.create()                   # ip netns add ngb-xxxxxx, lo up inside
    link = ns.veth()                      # root end 10.231.a.b+1/30 <-> ns end 10.231.a.b+2/30
    sock = ns.socket(AF_INET, SOCK_STREAM) # a socket living in the namespace, usable from this process
    ns.popen([sys.executable, "-c", ...])  # a process inside
    ns.sysctl("net.ipv4.icmp_echo_ignore_all", 1); ns.drop(30)   # 30% of ICMP in; ns.nft(ruleset)
    link.down(); link.up()
    ns.delete()

Fixtures: ``netns`` (a fresh namespace) and ``netns_link`` (a namespace and a veth into it).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

__all__ = ["Netns", "Veth", "netns_available", "netns", "netns_link", "requires_netns"]

_CLONE_NEWNET = 0x40000000
_POOL = ipaddress.ip_network("10.231.0.0/16")


def _ip(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, input=input, timeout=30)


def in_namespace(name: str) -> None:
    """Move the calling thread into namespace ``name`` (threads it starts later are born there too)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{name}") as f:
        if libc.setns(f.fileno(), _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")


def socket_in(name: str, family: int, type: int, proto: int = 0) -> socket.socket:
    """A socket created inside namespace ``name`` (setns in a short-lived thread); it stays in that
    namespace whichever thread uses it."""
    out: dict = {}

    def make() -> None:
        try:
            in_namespace(name)
            out["sock"] = socket.socket(family, type, proto)
        except BaseException as exc:  # handed to the caller's thread
            out["exc"] = exc

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "exc" in out:
        raise out["exc"]
    return out["sock"]


def netns_available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


requires_netns = pytest.mark.skipif(not netns_available(), reason="needs root and iproute2")


@dataclass
class Veth:
    """A veth pair: ``root_if`` in the root namespace, ``ns_if`` inside ``ns``; /30 addresses on both."""

    ns: Netns
    root_if: str
    ns_if: str
    root_addr: str
    ns_addr: str

    def down(self, side: str = "ns") -> None:
        """Take the link down (by default the namespace end, so no root route changes)."""
        self._set(side, "down")

    def up(self, side: str = "ns", ready_within_s: float = 5.0) -> None:
        """Bring the link up and return once both ends have carrier (bounded), so a test that probes
        right after does not race the kernel on a loaded machine."""
        self._set(side, "up")
        deadline = time.monotonic() + ready_within_s
        while time.monotonic() < deadline:
            ns_up = "LOWER_UP" in self.ns.ip("link", "show", "dev", self.ns_if).stdout
            root_up = "LOWER_UP" in _ip("link", "show", "dev", self.root_if).stdout
            if ns_up and root_up:
                return
        raise AssertionError(f"{self.ns_if}/{self.root_if} had no carrier {ready_within_s}s after up")

    def _set(self, side: str, state: str) -> None:
        if side == "ns":
            self.ns.ip("link", "set", self.ns_if, state)
        else:
            _ip("link", "set", self.root_if, state)

    def delete(self) -> None:
        _ip("link", "del", self.root_if, check=False)


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name
        self.links: list[Veth] = []

    @classmethod
    def create(cls, prefix: str = "ngb") -> Netns:
        ns = cls(f"{prefix}-{uuid.uuid4().hex[:8]}")
        _ip("netns", "add", ns.name)
        ns.ip("link", "set", "lo", "up")
        return ns

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _ip("-n", self.name, *args, check=check)

    def run(self, argv: list[str], check: bool = True, input: str | None = None, timeout: float = 60,
            env: dict | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` inside the namespace and wait for it."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], check=check, capture_output=True,
                              text=True, input=input, timeout=timeout, env=env)

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside the namespace; the caller stops it."""
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)

    def sysctl(self, key: str, value) -> None:
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset inside the namespace (its own firewall; the root one is untouched)."""
        self.run(["nft", "-f", "-"], input=ruleset)

    def nft_flush(self) -> None:
        self.run(["nft", "flush", "ruleset"])

    def drop(self, percent: int, match: str = "meta l4proto icmp") -> None:
        """Drop ``percent`` % of the packets matching ``match`` that arrive in the namespace, at random
        (nftables ``numgen random``; this kernel has no netem). ``clear_drops()`` undoes it."""
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be 0..100, not {percent}")
        self.nft(f"""
            table inet ngb_drop {{
                chain input {{
                    type filter hook input priority 0; policy accept;
                    {match} numgen random mod 100 < {percent} drop
                }}
            }}""")

    def clear_drops(self) -> None:
        self.run(["nft", "delete", "table", "inet", "ngb_drop"], check=False)

    def socket(self, family: int, type: int, proto: int = 0) -> socket.socket:
        """A socket created inside the namespace; use it from anywhere."""
        return socket_in(self.name, family, type, proto)

    def veth(self) -> Veth:
        """A veth pair from the root namespace into this one, with a free /30 from 10.231.0.0/16."""
        base = _free_block()
        tag = self.name.rsplit("-", 1)[-1][:6] + f"{len(self.links)}"
        link = Veth(self, f"ngb{tag}r", f"ngb{tag}n", str(base + 1), str(base + 2))
        _ip("link", "add", link.root_if, "type", "veth", "peer", "name", link.ns_if, "netns", self.name)
        self.links.append(link)
        _ip("addr", "add", f"{link.root_addr}/30", "dev", link.root_if)
        _ip("link", "set", link.root_if, "up")
        self.ip("addr", "add", f"{link.ns_addr}/30", "dev", link.ns_if)
        self.ip("link", "set", link.ns_if, "up")
        return link

    def delete(self) -> None:
        for link in self.links:
            link.delete()
        _ip("netns", "del", self.name, check=False)


def _free_block() -> ipaddress.IPv4Address:
    used = _ip("-4", "-o", "addr", "show").stdout
    for _ in range(100):
        block = _POOL.network_address + 4 * random.randrange(_POOL.num_addresses // 4)
        if f" {block + 1}/" not in used and f" {block + 2}/" not in used:
            return block
    raise RuntimeError("no free /30 in 10.231.0.0/16")


@pytest.fixture
def netns():
    if not netns_available():
        pytest.skip("needs root and iproute2")
    ns = Netns.create()
    yield ns
    ns.delete()


@pytest.fixture
def netns_link(netns):
    return netns, netns.veth()
