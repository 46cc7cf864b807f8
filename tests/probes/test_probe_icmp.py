"""ICMP probe: privileged raw sockets in this process, unprivileged datagram sockets inside a namespace whose
``net.ipv4.ping_group_range`` allows them, and the start-up error when neither works."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from probes import IcmpSpec, Outcome, make_context, probe_icmp
from probes.icmp import summarise
from probes.icmp_engine import EchoStats

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privileged ICMP needs root")


async def test_privileged_ping_of_loopback_addresses_is_up_with_rtt_stats(ctx):
    assert ctx.icmp.mode == "privileged"
    result = await probe_icmp(IcmpSpec(target="127.0.0.1", count=5, interval_s=0.01), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    assert result.details == {"address": "127.0.0.1", "sent": 5, "received": 5, "hop_limit": 64}
    p = result.phases
    assert p["loss"] == 0 and 0 < p["rtt_min"] <= p["rtt_avg"] <= p["rtt_max"] < 1 and p["jitter"] >= 0


async def test_ipv6_loopback_answers(ctx):
    result = await probe_icmp(IcmpSpec(target="::1", count=2, interval_s=0.01, ip_version=6), ctx)
    assert result.ok, result.message


async def test_many_targets_share_one_socket_and_all_answer(ctx):
    import asyncio

    specs = [IcmpSpec(target=f"127.1.{i // 250}.{i % 250 + 1}", count=2, interval_s=0.01) for i in range(600)]
    results = await asyncio.gather(*(probe_icmp(s, ctx) for s in specs))
    assert [r.outcome for r in results] == [Outcome.UP] * len(specs)
    assert ctx.icmp.sockets_open == 1
    assert ctx.icmp.in_flight == 0


@pytest.mark.parametrize(("rtts", "sent", "spec", "outcome", "reason"), [
    ([0.01] * 10, 10, {}, Outcome.UP, "ok"),
    ([0.01] * 7, 10, {"degraded_loss": 0.2}, Outcome.DEGRADED, "loss"),
    ([0.01] * 9, 10, {"degraded_loss": 0.2}, Outcome.UP, "ok"),
    ([0.01] * 3, 10, {"degraded_loss": 0.2, "down_loss": 0.5}, Outcome.DOWN, "loss"),
    ([0.3] * 10, 10, {"degraded_rtt_s": 0.2}, Outcome.DEGRADED, "latency"),
    ([0.3] * 10, 10, {"degraded_rtt_s": 0.1, "down_rtt_s": 0.25}, Outcome.DOWN, "latency"),
    ([], 10, {}, Outcome.DOWN, "timeout"),
])
def test_thresholds_turn_loss_and_rtt_into_outcomes(rtts, sent, spec, outcome, reason):
    from probes.icmp import _judge

    result = _judge(IcmpSpec(target="127.0.0.1", count=sent, interval_s=0.01, **spec),
                    EchoStats(sent=sent, rtts=rtts), "127.0.0.1")
    assert (result.outcome, result.reason) == (outcome, reason)
    assert result.phases["loss"] == pytest.approx(1 - len(rtts) / sent)


def test_jitter_is_the_mean_difference_of_consecutive_rtts():
    phases = summarise(EchoStats(sent=4, rtts=[0.010, 0.030, 0.020, 0.020]))
    assert phases["jitter"] == pytest.approx((0.02 + 0.01 + 0.0) / 3)
    assert phases["rtt_avg"] == pytest.approx(0.02)


@pytest.mark.parametrize(("field", "value"), [("count", 0), ("interval_s", 0), ("degraded_loss", 1.5)])
def test_a_bad_icmp_spec_is_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        IcmpSpec(target="127.0.0.1", **{field: value})


def test_a_spec_whose_pings_do_not_fit_the_timeout_is_rejected():
    with pytest.raises(ValidationError, match="timeout_s"):
        IcmpSpec(target="127.0.0.1", count=100, interval_s=0.1, timeout_s=5)


_PROBE_IN_NS = """
import asyncio, json, sys
from probes import IcmpSpec, IcmpUnavailable, make_context, probe_icmp
async def main():
    try:
        ctx = await make_context(icmp=sys.argv[1])
    except IcmpUnavailable as exc:
        print(json.dumps({"error": str(exc)})); return
    r = await probe_icmp(IcmpSpec(target="127.0.0.1", count=3, interval_s=0.01), ctx)
    out = {"mode": ctx.icmp.mode, "outcome": r.outcome.value, "received": r.details["received"]}
    if len(sys.argv) > 2:  # also the replies' TTL and hop limit
        v6 = await probe_icmp(IcmpSpec(target="::1", count=2, interval_s=0.01, ip_version=6), ctx)
        out.update(ttl=r.details.get("hop_limit"), hop_limit=v6.details.get("hop_limit"))
    print(json.dumps(out))
    await ctx.close()
asyncio.run(main())
"""


def _run_in(netns, mode: str, as_nobody: bool = False, hops: bool = False) -> dict:
    argv = [sys.executable, "-c", _PROBE_IN_NS, mode, *(["hops"] if hops else [])]
    if as_nobody:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", *argv]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    return json.loads(netns.run(argv, env=env, timeout=30).stdout)


@pytest.mark.netns
def test_unprivileged_datagram_ping_works_where_ping_group_range_allows(netns):
    netns.sysctl("net.ipv4.ping_group_range", "0 2147483647")  # only inside this namespace
    out = _run_in(netns, "unprivileged")
    assert out == {"mode": "unprivileged", "outcome": "up", "received": 3}


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["privileged", "unprivileged"])
def test_the_reply_ttl_and_hop_limit_are_read_as_they_arrived(netns, mode):
    # Inside the namespace the kernel answers loopback pings with its own defaults; set them apart from 64.
    netns.sysctl("net.ipv4.ping_group_range", "0 2147483647")
    netns.sysctl("net.ipv4.ip_default_ttl", "77")
    netns.sysctl("net.ipv6.conf.lo.hop_limit", "55")
    out = _run_in(netns, mode, hops=True)
    assert out == {"mode": mode, "outcome": "up", "received": 3, "ttl": 77, "hop_limit": 55}


@pytest.mark.netns
def test_without_raw_or_datagram_sockets_start_up_fails_saying_what_to_change(netns):
    netns.sysctl("net.ipv4.ping_group_range", "1 0")
    out = _run_in(netns, "auto", as_nobody=True)
    assert "net.ipv4.ping_group_range" in out["error"] and "CAP_NET_RAW" in out["error"]
    assert "65534" in out["error"]


@pytest.mark.netns
def test_unprivileged_user_falls_back_to_datagram_sockets(netns):
    netns.sysctl("net.ipv4.ping_group_range", "65534 65534")
    out = _run_in(netns, "auto", as_nobody=True)
    assert out == {"mode": "unprivileged", "outcome": "up", "received": 3}


async def test_icmp_off_gives_a_clear_down_result():
    ctx = await make_context(icmp="off")
    result = await probe_icmp(IcmpSpec(target="127.0.0.1"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "probe_error")
