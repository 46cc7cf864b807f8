"""The namespace helpers other tests build topologies with: they must work and leave nothing behind."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.netns import Netns

pytestmark = pytest.mark.netns


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_a_namespace_and_its_veth_are_removed_on_delete():
    ns = Netns.create()
    link = ns.veth()
    assert ns.name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert link.root_if in _root_links()
    ns.delete()
    assert ns.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert link.root_if not in _root_links()


def test_a_socket_made_in_the_namespace_is_reachable_over_the_veth_until_the_link_goes_down(netns_link):
    ns, link = netns_link
    server = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((link.ns_addr, 0))
    server.listen(1)
    port = server.getsockname()[1]
    with socket.create_connection((link.ns_addr, port), timeout=2):
        pass
    link.down()
    with pytest.raises(OSError):
        socket.create_connection((link.ns_addr, port), timeout=0.5)
    link.up()
    with socket.create_connection((link.ns_addr, port), timeout=2):
        pass
    server.close()


def test_a_process_runs_inside_the_namespace_with_its_own_sysctls(netns_link):
    ns, link = netns_link
    ns.sysctl("net.ipv4.ping_group_range", "0 2147483647")
    inside = ns.run(["cat", "/proc/sys/net/ipv4/ping_group_range"]).stdout.split()
    assert inside == ["0", "2147483647"]
    assert link.ns_addr in ns.run(["ip", "-4", "-o", "addr"]).stdout


def test_two_namespaces_get_different_subnets():
    a, b = Netns.create(), Netns.create()
    try:
        la, lb = a.veth(), b.veth()
        assert la.root_addr != lb.root_addr and la.ns_addr != lb.ns_addr
    finally:
        a.delete()
        b.delete()


def test_drop_rejects_a_bad_percentage(netns):
    with pytest.raises(ValueError, match="percent"):
        netns.drop(130)
