"""Monitors a network device gets by default from its declaration in the inventory.

A device that declares ``snmp:`` (how to reach its agent: port, version, community or v3 user and keys,
timeout, retries; and ``interval``) gets an SNMP ``uptime`` monitor named ``<device>:snmp-uptime``, so a
switch or router is watched (reachability, and its reboots as events) without a monitor entry of its own.
``uptime_monitor: false`` turns the default off; a monitor of that name in the file replaces it (this is also
how an exported inventory comes back: the export lists the monitor itself).

Other SNMP monitors on the device (``kind: snmp``, ``device: sw1``, e.g. ``mode: interface``) take the
device's address as their target and its SNMP access as defaults for what they do not say themselves, so
credentials are written once per device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from monitor.inventory_schema import InventoryDoc, MonitorEntry
from probes import SnmpSpec

__all__ = ["with_device_monitors", "DEFAULT_SUFFIX"]

DEFAULT_SUFFIX = ":snmp-uptime"
OWN_KEYS = ("interval", "uptime_monitor")  # the device block's own keys, not the probe's
MONITOR_ONLY = ("kind", "mode", "target", "interface", "oid", "equals", "regex", "min", "max")

Add = Callable[[tuple, str], None]


def _access(snmp: dict[str, Any], loc: tuple, add: Add) -> dict[str, Any] | None:
    """The probe fields of a device's snmp block; errors are added at their place in the block."""
    bad = [k for k in snmp if k in MONITOR_ONLY]
    for key in bad:
        add((*loc, key), "belongs on a monitor of the device (kind: snmp, device: ...), not on the device")
    return None if bad else {k: v for k, v in snmp.items() if k not in OWN_KEYS}


def _default_monitor(device, access: dict[str, Any], loc: tuple, add: Add) -> MonitorEntry | None:
    fields = {"name": device.name + DEFAULT_SUFFIX, "kind": "snmp", "device": device.name,
              "target": device.address, "mode": "uptime", **access}
    if "interval" in device.snmp:
        fields["interval"] = device.snmp["interval"]
    try:
        SnmpSpec.model_validate({k: v for k, v in fields.items() if k not in ("name", "device", "interval")})
        return MonitorEntry.model_validate(fields)
    except ValidationError as exc:
        for err in exc.errors():
            where = ("devices", loc[1], "address") if err["loc"][:1] == ("target",) else (*loc, *err["loc"])
            add(where, "unknown field" if err["type"] == "extra_forbidden" else err["msg"])
        return None


def _inherit(m: MonitorEntry, access: dict[str, Any], address: str | None) -> MonitorEntry:
    own = m.model_dump(exclude_unset=True)
    defaults = ({"target": address} if address else {}) | access
    return MonitorEntry.model_validate(defaults | own)


def with_device_monitors(inv: InventoryDoc, add: Add) -> InventoryDoc:
    """Return ``inv`` with the devices' default monitors added and device access filled into their SNMP
    monitors; problems are reported through ``add(location, reason)``."""
    named = {m.name for m in inv.monitors}
    accesses: dict[str, dict[str, Any]] = {}
    extra: list[MonitorEntry] = []
    for i, d in enumerate(inv.devices):
        if d.snmp is None:
            continue
        loc = ("devices", i, "snmp")
        access = _access(d.snmp, loc, add)
        if not isinstance(d.snmp.get("uptime_monitor", True), bool):
            add((*loc, "uptime_monitor"), "must be true or false")
            continue
        if access is None:
            continue
        accesses[d.name] = access
        if d.snmp.get("uptime_monitor", True) is False or d.name + DEFAULT_SUFFIX in named:
            continue
        if not d.address:
            add(("devices", i, "address"), "required: the device declares snmp, its agent needs an address")
            continue
        monitor = _default_monitor(d, access, loc, add)
        if monitor is not None:
            extra.append(monitor)
    address = {d.name: d.address for d in inv.devices}
    monitors = [_inherit(m, accesses[m.device], address[m.device])
                if m.kind == "snmp" and m.device in accesses else m for m in inv.monitors]
    return inv.model_copy(update={"monitors": monitors + extra})
