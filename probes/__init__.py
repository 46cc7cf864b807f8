"""Probes: one file per kind, one signature, one registry entry each.

``PROBERS[kind](spec, ctx) -> ProbeResult`` and ``SPECS[kind]`` is that kind's pydantic spec model.
Adding a kind is one file and one line in each registry here. A push kind (``PUSH_KINDS``: the target sends
its results to us, e.g. a cron job's heartbeat) has a spec and no prober; the scheduler never starts it.
"""

from probes.base import Outcome, ProbeResult, SpecBase
from probes.context import ProbeContext, make_context
from probes.dns import DnsSpec, probe_dns
from probes.errors import IcmpUnavailable, ProbeError
from probes.heartbeat import HeartbeatSpec
from probes.http import BodyRule, HttpSpec, probe_http
from probes.icmp import IcmpSpec, probe_icmp
from probes.tcp import TcpSpec, probe_tcp

__all__ = ["Outcome", "ProbeContext", "ProbeResult", "SpecBase", "PROBERS", "SPECS", "PUSH_KINDS", "make_context",
           "HttpSpec", "BodyRule", "TcpSpec", "IcmpSpec", "DnsSpec", "HeartbeatSpec", "ProbeError",
           "IcmpUnavailable", "probe_http", "probe_tcp", "probe_icmp", "probe_dns"]

PROBERS = {
    "http": probe_http,
    "tcp": probe_tcp,
    "icmp": probe_icmp,
    "dns": probe_dns,
}

SPECS = {
    "http": HttpSpec,
    "tcp": TcpSpec,
    "icmp": IcmpSpec,
    "dns": DnsSpec,
    "heartbeat": HeartbeatSpec,
}

PUSH_KINDS = frozenset({"heartbeat"})
assert set(SPECS) == set(PROBERS) | PUSH_KINDS, "every kind is probed or pushed, and has a spec"
