"""Network devices that declare SNMP get an SNMP uptime monitor by default; their SNMP monitors inherit access."""

import pytest
import yaml
from sqlalchemy import select

from monitor.errors import InventoryErrors
from monitor.inventory import apply_inventory, export_inventory, parse_inventory
from monitor.models import Monitor, NetworkDevice

SWITCH = """\
devices:
  - name: sw1
    kind: switch
    address: 10.20.0.2
    snmp:
      version: "3"
      user: noc
      auth_protocol: SHA-256
      auth_key: noc-auth-key
      priv_protocol: AES
      priv_key: noc-priv-key
      interval: 30
  - name: r1
    kind: router
    address: 10.20.0.1
monitors:
  - name: sw1-uplink-port
    kind: snmp
    device: sw1
    mode: interface
    interface: Gi0/1
"""


def monitors(text: str) -> dict:
    inv, specs = parse_inventory(text)
    return {m.name: (m, spec) for m, spec in zip(inv.monitors, specs, strict=True)}


def test_a_device_declaring_snmp_gets_an_uptime_monitor_and_one_without_does_not():
    got = monitors(SWITCH)
    assert set(got) == {"sw1-uplink-port", "sw1:snmp-uptime"}
    m, spec = got["sw1:snmp-uptime"]
    assert (m.kind, m.device, m.interval) == ("snmp", "sw1", 30)
    assert spec["target"] == "10.20.0.2"
    assert (spec["mode"], spec["version"], spec["user"], spec["priv_protocol"]) == ("uptime", "3", "noc", "AES")


def test_the_devices_snmp_monitors_take_its_address_and_access():
    m, spec = monitors(SWITCH)["sw1-uplink-port"]
    assert spec["target"] == "10.20.0.2" and spec["interface"] == "Gi0/1"
    assert (spec["user"], spec["auth_key"], spec["priv_key"]) == ("noc", "noc-auth-key", "noc-priv-key")


def test_the_default_can_be_turned_off_or_replaced_by_a_monitor_of_its_name():
    off = monitors(SWITCH.replace("      interval: 30\n", "      interval: 30\n      uptime_monitor: false\n"))
    assert "sw1:snmp-uptime" not in off
    replaced = monitors(SWITCH + "  - name: sw1:snmp-uptime\n    kind: snmp\n    device: sw1\n    interval: 300\n")
    assert replaced["sw1:snmp-uptime"][0].interval == 300
    assert replaced["sw1:snmp-uptime"][1]["user"] == "noc"  # still the device's access


@pytest.mark.parametrize(("change", "path", "reason"), [
    (("    address: 10.20.0.2\n", ""), "devices[0].address", "required"),
    (('      version: "3"\n', '      version: "1"\n'), "devices[0].snmp.version", "'2c' or '3'"),
    (("      interval: 30\n", "      interval: 30\n      colour: red\n"), "devices[0].snmp.colour", "unknown field"),
    (("      interval: 30\n", "      interval: 30\n      mode: interface\n"), "devices[0].snmp.mode",
     "belongs on a monitor"),
    (("      auth_key: noc-auth-key\n", "      auth_key: short\n"), "devices[0].snmp.auth_key", "at least 8"),
    (("      interval: 30\n", "      interval: 1\n"), "devices[0].snmp.interval", "greater than or equal"),
])
def test_a_bad_snmp_block_is_an_error_at_its_line(change, path, reason):
    with pytest.raises(InventoryErrors) as exc:
        parse_inventory(SWITCH.replace(*change), "inv.yaml")
    errors = [(e.path, e.reason, e.line) for e in exc.value.errors]
    assert any(p == path and reason in r and line is not None for p, r, line in errors), errors


async def test_the_default_monitor_is_applied_and_the_export_round_trips(sessionmaker, clock):
    inv, specs = parse_inventory(SWITCH)
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    async with sessionmaker() as s:
        row = (await s.execute(select(Monitor).where(Monitor.name == "sw1:snmp-uptime"))).scalar_one()
        sw1 = (await s.execute(select(NetworkDevice).where(NetworkDevice.name == "sw1"))).scalar_one()
    assert (row.kind, row.target, row.device_id, row.spec["mode"]) == ("snmp", "10.20.0.2", sw1.id, "uptime")
    exported = await export_inventory(sessionmaker)
    again, again_specs = parse_inventory(exported)
    await apply_inventory(sessionmaker, again, again_specs, clock.now(), prune=True)
    assert yaml.safe_load(await export_inventory(sessionmaker)) == yaml.safe_load(exported)
    assert sorted(m.name for m in again.monitors) == ["sw1-uplink-port", "sw1:snmp-uptime"]
