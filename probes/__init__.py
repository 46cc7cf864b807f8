"""Probes: one file per kind, one signature, one registry entry each.

``PROBERS[kind](spec, ctx) -> ProbeResult`` and ``SPECS[kind]`` is that kind's pydantic spec model.
Adding a kind is one file and one line in each registry here.
"""

from probes.base import Outcome, ProbeResult, SpecBase
from probes.context import ProbeContext, make_context
from probes.dns import DnsSpec, probe_dns
from probes.errors import IcmpUnavailable, ProbeError
from probes.http import BodyRule, HttpSpec, probe_http
from probes.icmp import IcmpSpec, probe_icmp
from probes.imap import ImapSpec, probe_imap
from probes.pop3 import Pop3Spec, probe_pop3
from probes.smtp import SmtpSpec, probe_smtp
from probes.tcp import TcpSpec, probe_tcp

__all__ = ["Outcome", "ProbeContext", "ProbeResult", "SpecBase", "PROBERS", "SPECS", "make_context",
           "HttpSpec", "BodyRule", "TcpSpec", "IcmpSpec", "DnsSpec", "ProbeError", "IcmpUnavailable",
           "SmtpSpec", "ImapSpec", "Pop3Spec", "probe_http", "probe_tcp", "probe_icmp", "probe_dns",
           "probe_smtp", "probe_imap", "probe_pop3"]

PROBERS = {
    "http": probe_http,
    "tcp": probe_tcp,
    "icmp": probe_icmp,
    "dns": probe_dns,
    "smtp": probe_smtp,
    "imap": probe_imap,
    "pop3": probe_pop3,
}

SPECS = {
    "http": HttpSpec,
    "tcp": TcpSpec,
    "icmp": IcmpSpec,
    "dns": DnsSpec,
    "smtp": SmtpSpec,
    "imap": ImapSpec,
    "pop3": Pop3Spec,
}
