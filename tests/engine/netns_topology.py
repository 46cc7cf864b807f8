"""A small routed network of namespaces for the engine's dependency and self-check test.

Nothing touches the root namespace: every veth pair is created inside a namespace and its peer moved
straight into another one.

    prober ──(uplink)── router ──(switch link)── switch ──┬── server1
                       (canary)                          ├── server2
                                                          └── server3

``Topology.socket(ns, ...)`` creates a listening socket inside a namespace (setns in a short-lived thread),
which the test process can serve from its own event loop. ``in_namespace(ns)`` enters a namespace in the
calling thread (used by the thread that runs the prober's event loop).
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from dataclasses import dataclass, field

from tests.netns import _ip, in_namespace, netns_available, socket_in

__all__ = ["Topology", "in_namespace", "netns_available"]

@dataclass
class Link:
    a: str
    a_if: str
    b: str
    b_if: str


@dataclass
class Topology:
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    names: dict[str, str] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    routes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    # addresses
    PROBER, GATEWAY = "10.77.0.1", "10.77.0.2"  # the uplink /30; the router is the canary
    ROUTER_SW, SWITCH = "10.77.1.1", "10.77.1.2"  # the switch link /30; the switch's management address

    @staticmethod
    def server(i: int) -> str:
        return f"10.77.2.{4 * i + 2}"

    @staticmethod
    def server_gw(i: int) -> str:
        return f"10.77.2.{4 * i + 1}"

    def ns(self, role: str) -> str:
        return self.names[role]

    def _add_ns(self, role: str) -> None:
        name = f"ngb-{self.tag}-{role}"
        _ip("netns", "add", name)
        self.names[role] = name
        _ip("-n", name, "link", "set", "lo", "up")

    def _link(self, key: str, a: str, a_addr: str, b: str, b_addr: str) -> None:
        a_if, b_if = f"{key}a", f"{key}b"
        _ip("-n", self.ns(a), "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", self.ns(b))
        for role, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            _ip("-n", self.ns(role), "addr", "add", f"{addr}/30", "dev", ifname)
            _ip("-n", self.ns(role), "link", "set", ifname, "up")
        self.links[key] = Link(a, a_if, b, b_if)

    def _route(self, role: str, *args: str) -> None:
        self.routes.append((role, args))
        _ip("-n", self.ns(role), "route", "replace", *args)

    def _forwarding(self, role: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.ns(role), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
                       check=True, capture_output=True, timeout=30)

    @classmethod
    def build(cls, servers: int = 3) -> Topology:
        t = cls()
        try:
            for role in ("prober", "router", "switch", *(f"s{i}" for i in range(servers))):
                t._add_ns(role)
            t._link("up", "prober", t.PROBER, "router", t.GATEWAY)
            t._link("sw", "router", t.ROUTER_SW, "switch", t.SWITCH)
            for i in range(servers):
                t._link(f"h{i}", "switch", t.server_gw(i), f"s{i}", t.server(i))
                t._route(f"s{i}", "default", "via", t.server_gw(i))
            t._forwarding("router")
            t._forwarding("switch")
            t._route("prober", "default", "via", t.GATEWAY)
            t._route("router", "10.77.2.0/24", "via", t.SWITCH)
            t._route("switch", "default", "via", t.ROUTER_SW)
        except BaseException:
            t.delete()
            raise
        return t

    def cut(self, key: str) -> None:
        """Take a link down at both ends (a pulled cable)."""
        link = self.links[key]
        _ip("-n", self.ns(link.a), "link", "set", link.a_if, "down")
        _ip("-n", self.ns(link.b), "link", "set", link.b_if, "down")

    def restore(self, key: str) -> None:
        """Bring a link back, and the static routes the kernel dropped with it."""
        link = self.links[key]
        _ip("-n", self.ns(link.a), "link", "set", link.a_if, "up")
        _ip("-n", self.ns(link.b), "link", "set", link.b_if, "up")
        for role, args in self.routes:
            _ip("-n", self.ns(role), "route", "replace", *args)

    def socket(self, role: str, address: str, port: int = 80) -> socket.socket:
        """A listening TCP socket bound inside ``role``'s namespace."""
        s = socket_in(self.ns(role), socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(64)
        s.setblocking(False)
        return s

    def delete(self) -> None:
        for name in self.names.values():
            _ip("netns", "del", name, check=False)
