"""Inventory as code: complete validation with located errors, one-transaction apply, export round trip."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from monitor.errors import InventoryError
from monitor.inventory import apply_inventory, export_inventory, parse_inventory
from monitor.models import Monitor, NetworkDevice, Server

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
datacenters:
  - name: dc1
devices:
  - name: sw1
    kind: switch
    datacenter: dc1
    parent: r1
  - name: r1
    kind: router
customers:
  - name: acme
    verified: true
    services:
      - name: acme-web
servers:
  - name: web1
    address: 127.0.0.1
    parent: sw1
    service: acme-web
monitors:
  - name: web1-http
    kind: http
    target: http://127.0.0.1:1/
    server: web1
    interval: 30
    expected_status: [200]
"""


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


BAD = [
    ("broken yaml", "monitors: [\n  - {name: x\n", 2, "", "invalid YAML"),
    ("unknown field", _replace("    interval: 30\n", "    interval: 30\n    colour: red\n"), 26,
     "monitors[0].colour", "unknown field"),
    ("unknown top-level field", GOOD + "switches: []\n", 27, "switches", "unknown field"),
    ("wrong type", _replace("interval: 30", "interval: often"), 25, "monitors[0].interval", "number"),
    ("wrong type in spec", _replace("expected_status: [200]", "expected_status: yes"), 26,
     "monitors[0].expected_status", "list"),
    ("duplicate name", GOOD + "  - name: web1-http\n    kind: http\n    target: http://127.0.0.1:2/\n", 27,
     "monitors[1].name", "duplicate name 'web1-http'"),
    ("unknown parent", _replace("parent: r1", "parent: r9"), 7, "devices[0].parent", "unknown parent device 'r9'"),
    ("unknown server", _replace("server: web1", "server: web9"), 24, "monitors[0].server", "unknown server"),
    ("cycle of parents", _replace("    kind: router\n", "    kind: router\n    parent: sw1\n"), 7,
     "devices[0].parent", "cycle of parents: sw1 -> r1 -> sw1"),
    ("unknown kind", _replace("kind: http", "kind: smoke"), 22, "monitors[0].kind", "unknown kind 'smoke'"),
]


@pytest.mark.parametrize("case, text, line, path, reason", BAD, ids=[b[0] for b in BAD])
def test_an_invalid_inventory_names_file_line_path_and_reason(case, text, line, path, reason):
    with pytest.raises(InventoryError) as err:
        parse_inventory(text, "inv.yaml")
    e = err.value
    assert (e.file, e.line, e.path) == ("inv.yaml", line, path), str(e)
    assert reason in e.reason
    assert "\n" not in str(e)


async def _count(sm, model) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar()


async def test_apply_links_parents_declared_later_and_export_round_trips(sessionmaker, clock):
    inv, specs = parse_inventory(GOOD)
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    async with sessionmaker() as s:
        sw = (await s.execute(select(NetworkDevice).where(NetworkDevice.name == "sw1"))).scalar_one()
        r1 = (await s.execute(select(NetworkDevice).where(NetworkDevice.name == "r1"))).scalar_one()
        mon = (await s.execute(select(Monitor))).scalar_one()
    assert sw.parent_id == r1.id
    assert mon.spec["expected_status"] == [200] and mon.service_id is not None
    exported = await export_inventory(sessionmaker)
    again, again_specs = parse_inventory(exported)
    await apply_inventory(sessionmaker, again, again_specs, clock.now())
    assert await _count(sessionmaker, Monitor) == 1
    assert yaml.safe_load(await export_inventory(sessionmaker)) == yaml.safe_load(exported)


async def test_prune_removes_what_the_file_no_longer_names(sessionmaker, clock):
    inv, specs = parse_inventory(GOOD)
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    smaller = GOOD.split("monitors:")[0]
    inv2, specs2 = parse_inventory(smaller)
    await apply_inventory(sessionmaker, inv2, specs2, clock.now(), prune=True)
    assert await _count(sessionmaker, Monitor) == 0
    assert await _count(sessionmaker, Server) == 1


def _cli(args, db_url, stdin=None):
    env = dict(os.environ, NEGAHBAN_DATABASE_URL=db_url, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "negahban.cli", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


CLI_CASES = [BAD[i] for i in (0, 1, 3, 5, 6, 8)]  # the six kinds the issue names


@pytest.mark.parametrize("case, text, line, path, reason", CLI_CASES, ids=[b[0] for b in CLI_CASES])
async def test_the_cli_refuses_an_invalid_file_with_exit_2_and_changes_nothing(
        db, tmp_path, clock, case, text, line, path, reason):
    inv, specs = parse_inventory(GOOD)
    await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    before = await export_inventory(db.sessionmaker)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("web1-http", "web2-http", 1) if case != "duplicate name" else text)
    proc = _cli(["inventory", "apply", str(bad)], db.url)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and f"bad.yaml:{line}" in err and reason in err, err
    assert await export_inventory(db.sessionmaker) == before


def test_every_command_explains_itself_with_help():
    for args in (["--help"], ["serve", "--help"], ["db", "upgrade", "--help"], ["inventory", "apply", "--help"],
                 ["inventory", "export", "--help"], ["check-config", "--help"], ["version", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "negahban.cli", *args], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
        assert proc.returncode == 0 and "usage: negahban" in proc.stdout, args


async def test_prune_refuses_to_delete_a_customer_with_money_on_record_and_applies_nothing(sessionmaker, clock):
    from monitor.errors import InventoryError as Err
    from monitor.models import Customer
    from tickets.ledger.entries import post
    from tickets.ledger.models import EntryKind

    inv, specs = parse_inventory(GOOD)
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    async with sessionmaker.begin() as s:
        acme = (await s.execute(select(Customer).where(Customer.name == "acme"))).scalar_one()
        await post(s, key="payment:test-1", customer_id=acme.id, kind=EntryKind.PAYMENT, amount_rials=-1000,
                   now=clock.now())
    before = await export_inventory(sessionmaker)
    without_customers = GOOD.replace("    service: acme-web\n", "").split("customers:")[0] + \
        "servers:" + GOOD.split("servers:")[1].replace("    service: acme-web\n", "")
    inv2, specs2 = parse_inventory(without_customers)
    with pytest.raises(Err, match="cannot prune acme: still referenced"):
        await apply_inventory(sessionmaker, inv2, specs2, clock.now(), prune=True, file="inv.yaml")
    assert await export_inventory(sessionmaker) == before
