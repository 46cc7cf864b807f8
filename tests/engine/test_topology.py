"""Dependencies: which monitors are parents, and what their memories say to a child."""

from __future__ import annotations

import pytest

from monitor.evaluate import Memory, ParentStatus
from monitor.models import State
from monitor.topology import Node, build_topology, parent_status

# uplink(1) <- router(2) <- switch(3) <- server 10 (ping 103, http 104), server 11 (http 105)
DEVICES = {1: None, 2: 1, 3: 2}
SERVERS = {10: 3, 11: 3}
NODES = [Node(100, "icmp", device_id=1), Node(101, "icmp", device_id=2), Node(102, "icmp", device_id=3),
         Node(103, "icmp", server_id=10, customer_id=7), Node(104, "http", server_id=10, customer_id=7),
         Node(105, "http", server_id=11)]


@pytest.fixture
def topo():
    return build_topology(NODES, SERVERS, DEVICES)


def test_levels_run_from_the_host_check_up_the_device_chain(topo):
    assert topo.parents[104] == [[103], [102], [101], [100]]
    assert topo.parents[103] == [[102], [101], [100]]
    assert topo.parents[105] == [[102], [101], [100]]
    assert topo.parents[102] == [[101], [100]]
    assert topo.parents[100] == []
    assert topo.scope_keys[104] == [("monitor", 104), ("device", 3), ("device", 2), ("device", 1),
                                    ("server", 10), ("customer", 7)]


UP, DOWN = Memory(state=State.UP), Memory(state=State.DOWN, down=3, failing=3)
FAILING = Memory(state=State.UP, down=1, failing=1)
UNREACH = Memory(state=State.UNREACHABLE, failing=3, root_monitor_id=101)


@pytest.mark.parametrize("monitor, memories, expected", [
    (105, {102: UP, 101: UP, 100: UP}, (ParentStatus.OK, None)),
    (105, {102: DOWN, 101: UP, 100: UP}, (ParentStatus.DOWN, 102)),
    (105, {102: FAILING, 101: UP}, (ParentStatus.SUSPECT, 102)),
    # the switch is itself unreachable behind the router: the child's root is the router
    (105, {102: UNREACH, 101: DOWN}, (ParentStatus.DOWN, 101)),
    # the server's own host check is the nearest parent
    (104, {103: DOWN, 102: UP}, (ParentStatus.DOWN, 103)),
    (104, {103: UP, 102: DOWN}, (ParentStatus.OK, None)),
    # a parent that knows nothing yet is skipped
    (105, {102: Memory(), 101: DOWN}, (ParentStatus.DOWN, 101)),
    (100, {}, (ParentStatus.OK, None)),
])
def test_parent_status(topo, monitor, memories, expected):
    assert parent_status(topo.parents[monitor], memories) == expected
