"""The port kinds in the inventory YAML: validated with errors naming file, line and field, stored, loaded by
the runner's catalog and probed against the real servers."""

from __future__ import annotations

import pytest

from monitor.catalog import load_catalog
from monitor.errors import InventoryError
from monitor.inventory import apply_inventory, parse_inventory
from probes import PROBERS, Outcome
from tests.probes.dns_server import DnsServer
from tests.probes.port_servers import PG_TARGET, REDIS_PASSWORD


def inventory(mariadb: str, redis: str, dns: str) -> str:
    return f"""\
monitors:
  - name: db-mysql
    kind: mysql
    target: {mariadb}
    interval: 30
  - name: db-postgres
    kind: postgres
    target: {PG_TARGET}
    database: negahban_probe_db
  - name: cache-redis
    kind: redis
    target: {redis}
    password: "{REDIS_PASSWORD}"
    require_auth: true
  - name: dns-udp
    kind: udp
    target: {dns}
    preset: dns
    dns_name: test.
"""


async def test_the_four_kinds_go_from_yaml_to_a_probe_of_the_real_server(sessionmaker, clock, ctx, mariadb,
                                                                         redis_servers):
    dns = await DnsServer().start()
    try:
        text = inventory(mariadb, redis_servers["locked"], f"127.0.0.1:{dns.port}")
        inv, specs = parse_inventory(text, "ports.yaml")
        await apply_inventory(sessionmaker, inv, specs, clock.now())
        catalog = await load_catalog(sessionmaker)
        results = {cfg.name: await PROBERS[cfg.kind](cfg.spec, ctx) for cfg in catalog.values()}
    finally:
        await dns.stop()
    assert {name: (r.outcome, r.reason) for name, r in results.items()} == {
        name: (Outcome.UP, "ok") for name in ("db-mysql", "db-postgres", "cache-redis", "dns-udp")}
    assert results["cache-redis"].details["auth"] == "ok"
    assert results["db-postgres"].details["sqlstate"] in {"28000", "3D000"}


@pytest.mark.parametrize(("old", "new", "line", "path", "reason"), [
    ("    interval: 30\n", "    interval: 30\n    password: x\n", 6, "monitors[0].password", "unknown field"),
    ("    database: negahban_probe_db\n", "    database: negahban_probe_db\n    tls: maybe\n", 10,
     "monitors[1].tls", "boolean"),
    ("    require_auth: true\n", "    require_auth: true\n    username: probe\n    password: null\n", 16,
     "monitors[2].password", "a username needs a password"),
    ("    preset: dns\n", "    preset: dns\n    send_hex: 00ff\n", 15, "monitors[3].send_text", "exactly one of"),
    ("    preset: dns\n", "    preset: sntp\n", 18, "monitors[3].preset", "'dns' or 'ntp'"),
    ("kind: mysql\n    target: 127.0.0.1:3306", "kind: mysql\n    target: 127.0.0.1:99999", 4,
     "monitors[0].target", "host:port"),
])
def test_a_bad_port_monitor_names_file_line_field_and_reason(old, new, line, path, reason):
    text = inventory("127.0.0.1:3306", "127.0.0.1:6379", "127.0.0.1:53")
    assert old in text
    with pytest.raises(InventoryError) as err:
        parse_inventory(text.replace(old, new, 1), "ports.yaml")
    e = err.value
    assert (e.file, e.path) == ("ports.yaml", path), str(e)
    assert reason in e.reason, e.reason
    assert e.line == line, str(e)
