"""Dependencies: datacenter -> network devices (uplink, router, switch, with parents) -> servers -> monitors.

Parents are monitored too: a device's monitors are those with ``device_id`` set. For each monitor the
topology lists its parent *levels*, nearest first: for a monitor on a server, the server's host check (its
ICMP monitors, when the monitor is another kind) and then the monitors of each device up the chain; for a
monitor on a device, the monitors of the devices above it. ``parent_status`` turns those levels and the
current memories into the ``Context`` facts the evaluation needs:

* the nearest level whose monitors are all confirmed DOWN (or UNREACHABLE themselves) makes the parent
  DOWN, attributed to the first of them (or to *their* root, so a chain points at the real culprit);
* a level with any failing-but-unconfirmed monitor makes the parent SUSPECT (the child waits a little);
* a level with a monitor that is UP or DEGRADED means the path is alive: OK;
* levels that know nothing yet (UNKNOWN, MAINTENANCE) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from monitor.evaluate import Memory, ParentStatus
from monitor.maintenance import device_chain
from monitor.models import State

__all__ = ["Node", "Topology", "build_topology", "parent_status"]

CONFIRMED_DOWN = (State.DOWN, State.UNREACHABLE)
ALIVE = (State.UP, State.DEGRADED)


@dataclass(frozen=True, slots=True)
class Node:
    """What the topology needs of one monitor."""

    id: int
    kind: str
    server_id: int | None = None
    device_id: int | None = None
    customer_id: int | None = None


@dataclass
class Topology:
    parents: dict[int, list[list[int]]] = field(default_factory=dict)
    scope_keys: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    children: dict[int, set[int]] = field(default_factory=dict)


def _levels(node: Node, on_server: Mapping[int, list[Node]], on_device: Mapping[int, list[int]],
            server_parent: Mapping[int, int | None], device_parent: Mapping[int, int | None]) -> list[list[int]]:
    levels: list[list[int]] = []
    if node.device_id is not None:
        chain = device_chain(device_parent.get(node.device_id), device_parent)
    else:
        if node.server_id is not None and node.kind != "icmp":
            host = [n.id for n in on_server.get(node.server_id, ()) if n.kind == "icmp" and n.id != node.id]
            if host:
                levels.append(host)
        chain = device_chain(server_parent.get(node.server_id), device_parent) if node.server_id else []
    levels.extend(on_device[d] for d in chain if on_device.get(d))
    return levels


def build_topology(nodes: Iterable[Node], server_parent: Mapping[int, int | None],
                   device_parent: Mapping[int, int | None]) -> Topology:
    """``server_parent``: server id -> its device; ``device_parent``: device id -> parent device."""
    nodes = list(nodes)
    on_server: dict[int, list[Node]] = {}
    on_device: dict[int, list[int]] = {}
    for n in nodes:
        if n.server_id is not None:
            on_server.setdefault(n.server_id, []).append(n)
        if n.device_id is not None:
            on_device.setdefault(n.device_id, []).append(n.id)
    topo = Topology()
    for n in nodes:
        levels = _levels(n, on_server, on_device, server_parent, device_parent)
        topo.parents[n.id] = levels
        for level in levels:
            for p in level:
                topo.children.setdefault(p, set()).add(n.id)
        first_device = n.device_id if n.device_id is not None else server_parent.get(n.server_id)
        keys = [("monitor", n.id)] + [("device", d) for d in device_chain(first_device, device_parent)]
        if n.server_id is not None:
            keys.append(("server", n.server_id))
        if n.customer_id is not None:
            keys.append(("customer", n.customer_id))
        topo.scope_keys[n.id] = keys
    return topo


def parent_status(levels: list[list[int]], memories: Mapping[int, Memory]) -> tuple[ParentStatus, int | None]:
    """Pure: the parent facts for a monitor whose parent levels are ``levels``."""
    for level in levels:
        mems = [(m, memories.get(m) or Memory()) for m in level]
        if all(mem.state in CONFIRMED_DOWN for _, mem in mems):
            m, mem = mems[0]
            return ParentStatus.DOWN, (mem.root_monitor_id or m) if mem.state is State.UNREACHABLE else m
        failing = [m for m, mem in mems if mem.state in CONFIRMED_DOWN or mem.failing > 0]
        if failing:
            return ParentStatus.SUSPECT, failing[0]
        if any(mem.state in ALIVE for _, mem in mems):
            return ParentStatus.OK, None
    return ParentStatus.OK, None
