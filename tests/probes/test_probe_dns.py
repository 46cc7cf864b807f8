"""DNS probe against a small resolver started on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pydantic import ValidationError

from probes import DnsSpec, Outcome, probe_dns
from tests.probes.dns_server import DnsServer


@pytest.fixture
async def resolver():
    server = await DnsServer().start()
    yield f"127.0.0.1:{server.port}"
    await server.stop()


@pytest.mark.parametrize(("name", "rtype", "spec", "outcome", "reason"), [
    ("www.test", "A", {"expected_values": ["127.0.0.10", "127.0.0.11"]}, Outcome.UP, "ok"),
    ("www.test", "A", {"expected_values": ["127.0.0.99"]}, Outcome.DOWN, "answer_mismatch"),
    ("www.test", "AAAA", {"expected_values": ["::1"]}, Outcome.UP, "ok"),
    ("alias.test", "CNAME", {"expected_values": ["www.test."]}, Outcome.UP, "ok"),
    ("test", "MX", {"expected_values": ["10 mail.test"]}, Outcome.UP, "ok"),
    ("test", "NS", {"expected_values": ["NS1.test"]}, Outcome.UP, "ok"),
    ("test", "TXT", {"expected_values": ["v=spf1 -all"]}, Outcome.UP, "ok"),
    ("test", "TXT", {"expected_values": ["v=spf1 +all"]}, Outcome.DOWN, "answer_mismatch"),
    ("nothing.test", "A", {}, Outcome.DOWN, "rcode_mismatch"),
    ("nothing.test", "A", {"expected_rcode": "nxdomain"}, Outcome.UP, "ok"),
    ("broken.test", "A", {}, Outcome.DOWN, "rcode_mismatch"),
    ("alias.test", "A", {}, Outcome.DOWN, "no_answer"),
    ("alias.test", "A", {"fail_if_no_answer": False}, Outcome.UP, "ok"),
])
async def test_it_checks_records_and_rcode(resolver, ctx, name, rtype, spec, outcome, reason):
    result = await probe_dns(DnsSpec(target=name, record_type=rtype, resolver=resolver, **spec), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    assert result.details["transport"] == "udp"


async def test_a_truncated_udp_answer_is_retried_over_tcp(resolver, ctx):
    result = await probe_dns(DnsSpec(target="big.test", record_type="TXT", resolver=resolver,
                                     expected_values=["k" * 200 + "-11"]), ctx)
    assert result.ok, result.message
    assert result.details["transport"] == "tcp"
    assert len(result.details["answers"]) == 12


async def test_tcp_can_be_chosen(resolver, ctx):
    result = await probe_dns(DnsSpec(target="www.test", resolver=resolver, transport="tcp"), ctx)
    assert result.ok and result.details["transport"] == "tcp"


async def test_a_resolver_that_does_not_answer_times_out_within_the_timeout(ctx):
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    try:
        spec = DnsSpec(target="www.test", resolver=f"127.0.0.1:{mute.getsockname()[1]}", timeout_s=0.4)
        result = await probe_dns(spec, ctx)
    finally:
        mute.close()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout")
    assert 0.4 <= result.latency_s < 0.8


async def test_a_closed_resolver_port_is_down(ctx):
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result = await asyncio.wait_for(probe_dns(DnsSpec(target="www.test", resolver=f"127.0.0.1:{port}",
                                                      timeout_s=1), ctx), 5)
    assert result.outcome is Outcome.DOWN and result.reason in ("refused", "timeout")


@pytest.mark.parametrize(("field", "value"), [
    ("resolver", "dns.example"), ("expected_rcode", "MAYBE"), ("record_type", "SRV"), ("target", "a..b"),
])
def test_a_bad_dns_spec_is_rejected(field, value):
    args = {"target": "www.test", field: value}
    with pytest.raises(ValidationError, match=field):
        DnsSpec(**args)
