"""Probes: one file per kind, one signature, one registry entry each.

``PROBERS[kind](spec, ctx) -> ProbeResult`` and ``SPECS[kind]`` is that kind's pydantic spec model.
Adding a kind is one file and one line in each registry here. A prober that compares with the monitor's
previous sample (SNMP rates and reboots) sets ``uses_previous = True`` and is called with ``previous=`` (the
monitor's previous ``ProbeResult`` or None); probes themselves keep no state.
"""

from probes.base import Outcome, ProbeResult, SpecBase
from probes.context import ProbeContext, make_context
from probes.dns import DnsSpec, probe_dns
from probes.errors import IcmpUnavailable, ProbeError
from probes.http import BodyRule, HttpSpec, probe_http
from probes.icmp import IcmpSpec, probe_icmp
from probes.snmp import SnmpSpec, probe_snmp
from probes.tcp import TcpSpec, probe_tcp

__all__ = ["Outcome", "ProbeContext", "ProbeResult", "SpecBase", "PROBERS", "SPECS", "make_context",
           "HttpSpec", "BodyRule", "TcpSpec", "IcmpSpec", "DnsSpec", "SnmpSpec", "ProbeError", "IcmpUnavailable",
           "probe_http", "probe_tcp", "probe_icmp", "probe_dns", "probe_snmp"]

PROBERS = {
    "http": probe_http,
    "tcp": probe_tcp,
    "icmp": probe_icmp,
    "dns": probe_dns,
    "snmp": probe_snmp,
}

SPECS = {
    "http": HttpSpec,
    "tcp": TcpSpec,
    "icmp": IcmpSpec,
    "dns": DnsSpec,
    "snmp": SnmpSpec,
}
