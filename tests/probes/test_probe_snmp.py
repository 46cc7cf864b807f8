"""The SNMP probe against Debian's real snmpd (v2c and v3), and its pure rules (reboots, counter rates)."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from probes import PROBERS, SPECS, SnmpSpec, probe_snmp
from probes.snmp import counter_rates, rebooted
from tests.probes.snmpd import SnmpAgent, V3User, requires_snmpd

ALICE = V3User("alice", "SHA-256", "alice-auth-key", "AES", "alice-priv-key")
CAROL = V3User("carol", "SHA", "carol-auth-key", "AES", "carol-priv-key")


def v3(user: V3User, **kw) -> dict:
    return {"version": "3", "user": user.name, "auth_protocol": user.auth, "auth_key": user.auth_key,
            "priv_protocol": user.priv, "priv_key": user.priv_key} | kw


@pytest.fixture
def agent(tmp_path):
    a = SnmpAgent(tmp_path / "snmpd", v3_users=[ALICE, CAROL],
                  extra_config="sysContact noc@example.ir\nsysLocation THR-DC1 row 4\n")
    a.start()
    yield a
    a.stop()


def spec(agent: SnmpAgent, **kw) -> SnmpSpec:
    return SnmpSpec(target=agent.host, port=agent.port, **({"timeout_s": 2.0, "retries": 0} | kw))


async def poll(s: SnmpSpec, ctx, until, previous=None, bound_s: float = 15.0, every_s: float = 0.25):
    """Check ``s`` repeatedly (each check gets the previous result, as the runner does) until ``until(result)``;
    snmpd caches its interface table for a few seconds, so a change shows within a few checks."""
    deadline = time.monotonic() + bound_s
    result = previous
    while time.monotonic() < deadline:
        result = await probe_snmp(s, ctx, previous=result)
        if until(result):
            return result
        await asyncio.sleep(every_s)
    raise AssertionError(f"not seen within {bound_s}s; last: {result}")


def test_snmp_is_one_registered_kind():
    assert PROBERS["snmp"] is probe_snmp and SPECS["snmp"] is SnmpSpec


@pytest.mark.parametrize(("fields", "named"), [
    ({"user": "alice"}, "user"),
    ({"version": "3"}, "user"),
    ({"version": "3", "user": "a", "auth_key": "12345678"}, "auth_protocol and auth_key"),
    ({"version": "3", "user": "a", "priv_protocol": "AES", "priv_key": "12345678"}, "priv_protocol"),
    ({"version": "3", "user": "a", "auth_protocol": "SHA", "auth_key": "short"}, "auth_key"),
    ({"version": "3", "user": "a", "auth_protocol": "MD5", "auth_key": "12345678"}, "auth_protocol"),
    ({"version": "1"}, "version"),
    ({"mode": "interface"}, "interface"),
    ({"mode": "counters", "interface": 0}, "interface"),
    ({"mode": "oid", "oid": "1.3.6.1.2.1.1.5.0"}, "equals, regex, min or max"),
    ({"mode": "oid", "oid": "sysName.0", "equals": "x"}, "oid"),
    ({"mode": "oid", "oid": "1.3.6.1", "regex": "("}, "regex"),
    ({"mode": "oid", "oid": "1.3.6.1", "min": 5, "max": 1}, "min"),
    ({"target": "10.0.0.1:161"}, "target"),
    ({"port": 0}, "port"),
    ({"retries": 9}, "retries"),
])
def test_a_bad_spec_is_refused_naming_the_field(fields, named):
    with pytest.raises(ValidationError) as exc:
        SnmpSpec(**({"target": "10.0.0.1"} | fields))
    assert named in str(exc.value)


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("prev_ticks", "ticks", "gap_s", "expected"), [
    (360_000, 366_000, 60, False),           # one minute later, one minute more
    (360_000, 366_200, 60, False),           # the agent's clock a little ahead of ours
    (360_000, 1_500, 60, True),              # went backwards: restarted 15 s ago
    (360_000, 360_000 + 100, 60, False),     # the agent's clock behind ours by less than the tolerance
    (2_000, 5_000, 600, True),               # went forward, but up 50 s after a 10-minute gap: rebooted
    (2**32 - 3_000, 3_000, 60, False),       # the 32-bit wrap after ~497 days is not a reboot
    (2**32 - 3_000, 100, 60, True),          # ... but a value far from where the wrap would land is
    (500_000, 499_999, 0, True),             # backwards at all is a reboot
])
def test_a_reboot_is_seen_when_uptime_falls_behind_the_clock(prev_ticks, ticks, gap_s, expected):
    assert rebooted(prev_ticks, T0, ticks, T0 + timedelta(seconds=gap_s)) is expected


def test_counter_rates_are_per_second_and_survive_one_32_bit_wrap():
    rates = counter_rates({"ifInErrors": 10, "ifOutErrors": 2**32 - 5}, {"ifInErrors": 70, "ifOutErrors": 15}, 60)
    assert rates == {"ifInErrors": 1.0, "ifOutErrors": 20 / 60}
    assert counter_rates({"ifInErrors": 1}, {"ifInErrors": 2}, 0) == {}


@requires_snmpd
async def test_v2c_uptime_is_up_and_carries_the_uptime(agent, ctx):
    r = await probe_snmp(spec(agent), ctx)
    assert (r.outcome, r.reason) == ("up", "ok"), r
    assert 0 <= r.details["uptime_s"] < 600
    assert r.details["address"] == "127.0.0.1" and "rebooted" not in r.details


@requires_snmpd
async def test_a_wrong_community_is_a_timeout(agent, ctx):
    r = await probe_snmp(spec(agent, community="not-public", timeout_s=1.0), ctx)
    assert (r.outcome, r.reason) == ("down", "timeout"), r
    assert "community" in r.message


@requires_snmpd
@pytest.mark.parametrize("user", [ALICE, CAROL], ids=["sha256-aes", "sha-aes"])
async def test_v3_auth_priv_is_up(agent, ctx, user):
    r = await probe_snmp(spec(agent, **v3(user)), ctx)
    assert (r.outcome, r.reason) == ("up", "ok"), r


@requires_snmpd
@pytest.mark.parametrize(("change", "reason"), [
    ({"user": "mallory"}, "auth_failed"),                  # unknown user: the agent says so
    ({"auth_key": "not-alices-key"}, "auth_failed"),        # wrong digest: the agent reports it
    ({"priv_key": "not-alices-priv"}, "timeout"),           # the agent cannot decrypt and stays silent
    ({"priv_protocol": None, "priv_key": None}, "auth_failed"),  # authNoPriv for a priv-only user
])
async def test_v3_bad_credentials_are_down_with_a_clear_reason(agent, ctx, change, reason):
    r = await probe_snmp(spec(agent, **(v3(ALICE) | change), timeout_s=1.0), ctx)
    assert (r.outcome, r.reason) == ("down", reason), r
    if reason == "auth_failed":
        assert "alice" in r.message or "mallory" in r.message or "refused" in r.message


@requires_snmpd
@pytest.mark.parametrize("creds", [{}, v3(ALICE)], ids=["v2c", "v3"])
async def test_a_restart_of_snmpd_is_a_reboot_event_not_an_outage(agent, ctx, creds):
    s = spec(agent, **creds)
    # The agent's uptime must first outgrow what a restart and one check take, so "backwards" is certain.
    before = await poll(s, ctx, lambda r: r.details.get("uptime_s", 0) >= 2.0, every_s=0.5)
    assert "rebooted" not in before.details
    agent.restart()
    after = await probe_snmp(s, ctx, previous=before)
    assert (after.outcome, after.reason) == ("up", "rebooted"), after
    assert after.details["rebooted"] is True and after.details["event"] == "reboot"
    assert after.details["previous_uptime_s"] >= 2.0 > after.details["uptime_s"]
    again = await probe_snmp(s, ctx, previous=after)
    assert (again.outcome, again.reason) == ("up", "ok") and "rebooted" not in again.details


@requires_snmpd
async def test_a_reboot_during_an_outage_is_seen_when_the_agent_answers_again(agent, ctx):
    s = spec(agent, timeout_s=0.5)
    before = await poll(s, ctx, lambda r: r.details.get("uptime_s", 0) >= 2.0, every_s=0.5)
    agent.stop()
    down = await probe_snmp(s, ctx, previous=before)
    assert (down.outcome, down.reason) == ("down", "timeout")
    assert down.details["sample"] == before.details["sample"]  # the last good sample is carried forward
    agent.start()
    back = await probe_snmp(s, ctx, previous=down)
    assert (back.outcome, back.reason) == ("up", "rebooted"), back


@requires_snmpd
@pytest.mark.parametrize("interface", ["lo", 1], ids=["by-name", "by-index"])
async def test_the_loopback_interface_is_up(agent, ctx, interface):
    r = await probe_snmp(spec(agent, mode="interface", interface=interface), ctx)
    assert (r.outcome, r.reason) == ("up", "ok"), r
    assert (r.details["if_name"], r.details["if_index"], r.details["oper_status"]) == ("lo", 1, "up")


@requires_snmpd
@pytest.mark.parametrize("interface", ["no-such-port", 999])
async def test_an_interface_the_agent_does_not_have_is_down(agent, ctx, interface):
    r = await probe_snmp(spec(agent, mode="interface", interface=interface), ctx)
    assert (r.outcome, r.reason) == ("down", "interface_missing"), r


@requires_snmpd
@pytest.mark.parametrize(("compare", "outcome", "reason"), [
    ({"oid": "1.3.6.1.2.1.1.4.0", "equals": "noc@example.ir"}, "up", "ok"),
    ({"oid": "1.3.6.1.2.1.1.4.0", "equals": "someone@else"}, "down", "value_mismatch"),
    ({"oid": "1.3.6.1.2.1.1.6.0", "regex": r"^THR-DC\d"}, "up", "ok"),
    ({"oid": "1.3.6.1.2.1.1.6.0", "regex": r"^MHD-"}, "down", "value_mismatch"),
    ({"oid": "1.3.6.1.2.1.2.1.0", "min": 1, "max": 1000}, "up", "ok"),      # ifNumber
    ({"oid": "1.3.6.1.2.1.2.1.0", "max": 0}, "down", "value_mismatch"),
    ({"oid": "1.3.6.1.2.1.1.4.0", "min": 1}, "down", "value_mismatch"),   # text is not a number
    ({"oid": "1.3.6.1.2.1.1.99.0", "equals": "x"}, "down", "oid_missing"),
])
async def test_any_oid_is_compared_with_what_is_expected(agent, ctx, compare, outcome, reason):
    r = await probe_snmp(spec(agent, mode="oid", **compare), ctx)
    assert (r.outcome, r.reason) == (outcome, reason), r


@requires_snmpd
async def test_counters_start_with_a_baseline_and_then_give_rates(agent, ctx):
    s = spec(agent, mode="counters", interface="lo")
    first = await probe_snmp(s, ctx)
    assert (first.outcome, first.reason) == ("up", "ok") and "rates_per_s" not in first.details
    second = await probe_snmp(s, ctx, previous=first)
    assert second.outcome == "up" and set(second.details["rates_per_s"]) == {
        "ifInErrors", "ifOutErrors", "ifInDiscards", "ifOutDiscards"}


# --- in a network namespace: a real port going down, real discards ---------------------------------------


@pytest.fixture
def switch(netns_link, tmp_path):
    """A namespace playing a switch: snmpd on its veth address, and a port (a veth pair inside it)."""
    ns, link = netns_link
    ns.ip("link", "add", "port1", "type", "veth", "peer", "name", "port1peer")
    for dev in ("port1", "port1peer"):
        ns.ip("link", "set", dev, "up")
    a = SnmpAgent(tmp_path / "snmpd", host=link.ns_addr, ns=ns)
    a.start()
    yield ns, a
    a.stop()



@requires_snmpd
@pytest.mark.netns
async def test_a_port_taken_down_turns_its_monitor_down_and_up_again(switch, ctx):
    ns, agent = switch
    s = spec(agent, mode="interface", interface="port1")
    up = await probe_snmp(s, ctx)
    assert (up.outcome, up.details["oper_status"]) == ("up", "up"), up
    ns.ip("link", "set", "port1peer", "down")  # the far end goes away: port1 loses its carrier
    down = await poll(s, ctx, lambda r: r.outcome != "up", previous=up)
    assert (down.outcome, down.reason, down.details["admin_status"]) == ("down", "interface_down", "up"), down
    ns.ip("link", "set", "port1peer", "up")
    back = await poll(s, ctx, lambda r: r.outcome == "up", previous=down)
    assert back.reason == "ok" and back.details["if_name"] == "port1"


@requires_snmpd
@pytest.mark.netns
@pytest.mark.parametrize(("admin_down", "outcome", "reason"), [
    ("down", "down", "interface_admin_down"), ("up", "up", "ok")])
async def test_a_port_shut_by_an_operator_is_reported_as_configured(switch, ctx, admin_down, outcome, reason):
    ns, agent = switch
    s = spec(agent, mode="interface", interface="port1", admin_down=admin_down)
    ns.ip("link", "set", "port1", "down")
    shut = await poll(s, ctx, lambda r: r.details.get("admin_status") == "down")
    assert (shut.outcome, shut.reason) == (outcome, reason), shut


@requires_snmpd
@pytest.mark.netns
async def test_discards_above_the_threshold_degrade_the_counters_monitor(switch, ctx):
    ns, agent = switch
    ns.ip("link", "set", "port1peer", "mtu", "1000")  # frames longer than the peer's MTU are discarded
    s = spec(agent, mode="counters", interface="port1", max_rate_per_s=0.5)
    first = await probe_snmp(s, ctx)
    assert first.outcome == "up", first
    sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind(("port1", 0))
        frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"x" * 1400
        for _ in range(200):
            try:
                sock.send(frame)
            except OSError:  # ENOBUFS: the kernel tells us it dropped it, which is the point
                pass
    degraded = await poll(s, ctx, lambda r: r.outcome != "up", previous=first)
    assert (degraded.outcome, degraded.reason) == ("degraded", "error_rate"), degraded
    assert degraded.details["rates_per_s"]["ifOutDiscards"] > 0.5
    calm = await probe_snmp(s, ctx, previous=degraded)  # no new discards since
    assert (calm.outcome, calm.reason) == ("up", "ok"), calm


@requires_snmpd
async def test_a_host_name_is_resolved_through_the_context(agent, ctx):
    r = await probe_snmp(spec(agent).model_copy(update={"target": "localhost"}), ctx)
    assert (r.outcome, r.details["address"]) == ("up", "127.0.0.1"), r


@requires_snmpd
@pytest.mark.netns
async def test_a_port_renumbered_by_the_agent_is_found_again_by_name(switch, ctx):
    ns, agent = switch
    s = spec(agent, mode="interface", interface="port1")
    first = await probe_snmp(s, ctx)
    old_index = first.details["if_index"]
    ns.ip("link", "del", "port1")  # re-created below with a new ifIndex, as after a line card swap
    ns.ip("link", "add", "port1", "type", "veth", "peer", "name", "port1peer")
    for dev in ("port1", "port1peer"):
        ns.ip("link", "set", dev, "up")
    moved = await poll(s, ctx, lambda r: r.details.get("if_index") not in (None, old_index) and r.ok,
                       previous=first)
    assert (moved.details["if_name"], moved.details["sample"]["if_index"]) == ("port1", moved.details["if_index"])
