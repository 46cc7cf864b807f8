"""Locations in the inventory: validated with the field named, applied in one transaction, exported back."""

import pytest
import yaml
from sqlalchemy import select

from monitor.catalog import load_catalog
from monitor.errors import InventoryError
from monitor.inventory import apply_inventory, export_inventory, parse_inventory
from monitor.models import Location, Monitor

GOOD = """\
locations:
  - name: teh
    display_name: تهران
    canaries: ["tcp:10.0.0.1:53", "http://10.0.0.2/"]
  - name: mhd
    display_name: مشهد
monitors:
  - name: web
    kind: http
    target: http://127.0.0.1:1/
    locations: [central, teh, mhd]
    quorum: 2
  - name: plain
    kind: tcp
    target: 127.0.0.1:1
"""


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


BAD = [
    ("unknown location", _replace("[central, teh, mhd]", "[central, teh, isf]"), 11, "monitors[0].locations[2]",
     "unknown location 'isf'"),
    ("listed twice", _replace("[central, teh, mhd]", "[teh, teh]"), 11, "monitors[0].locations[1]",
     "listed twice"),
    ("quorum above the locations", _replace("quorum: 2", "quorum: 4"), 12, "monitors[0].quorum",
     "4 locations cannot confirm a failure seen from 3"),
    ("quorum of zero", _replace("quorum: 2", "quorum: 0"), 12, "monitors[0].quorum", "greater than or equal to 1"),
    ("bad canary", _replace('"tcp:10.0.0.1:53"', '"smoke:10.0.0.1"'), 4, "locations[0].canaries[0]",
     "unknown probe kind 'smoke'"),
    ("duplicate location", _replace("  - name: mhd\n", "  - name: teh\n"), 5, "locations[1].name",
     "duplicate name 'teh' in locations"),
    ("central is not declared", _replace("  - name: mhd\n", "  - name: central\n"), 5, "locations[1].name",
     "central service's own location"),
    ("unknown field", _replace("    display_name: مشهد\n", "    display_name: مشهد\n    colour: red\n"), 7,
     "locations[1].colour", "unknown field"),
    ("reserved monitor name", _replace("name: plain", "name: 'location:teh'"), 13, "monitors[1].name",
     "reserved"),
]


@pytest.mark.parametrize("case, text, line, path, reason", BAD, ids=[b[0] for b in BAD])
def test_a_bad_location_entry_names_the_field_and_the_reason(case, text, line, path, reason):
    with pytest.raises(InventoryError) as err:
        parse_inventory(text, "inv.yaml")
    e = err.value
    assert (e.file, e.line, e.path) == ("inv.yaml", line, path), str(e)
    assert reason in e.reason


async def test_locations_are_applied_with_an_internal_alert_each_and_exported_back(sessionmaker, clock):
    inv, specs = parse_inventory(GOOD)
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    async with sessionmaker() as s:
        locs = {x.name: x for x in (await s.execute(select(Location))).scalars()}
        names = set((await s.execute(select(Monitor.name))).scalars())
    assert locs["teh"].display_name == "تهران" and len(locs["teh"].canaries) == 2
    assert {"location:teh", "location:mhd"} <= names
    catalog = {c.name: c for c in (await load_catalog(sessionmaker)).values()}
    assert catalog["web"].assigned == ("central", "teh", "mhd") and catalog["web"].quorum == 2
    assert catalog["web"].voted and not catalog["plain"].voted and catalog["plain"].assigned == ("central",)
    exported = await export_inventory(sessionmaker)
    doc = yaml.safe_load(exported)
    assert [x["name"] for x in doc["locations"]] == ["mhd", "teh"]
    assert not any(m["name"].startswith("location:") for m in doc["monitors"])
    again, again_specs = parse_inventory(exported)
    await apply_inventory(sessionmaker, again, again_specs, clock.now(), prune=True)
    assert yaml.safe_load(await export_inventory(sessionmaker)) == doc
