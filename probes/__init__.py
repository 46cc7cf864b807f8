"""Probes: one file per kind, one signature, one registry entry each.

``PROBERS[kind](spec, ctx) -> ProbeResult`` and ``SPECS[kind]`` is that kind's pydantic spec model.
Adding a kind is one file and one line in each registry here. A push kind (``PUSH_KINDS``: the target sends
its results to us, e.g. a cron job's heartbeat) has a spec and no prober; the scheduler never starts it. A
prober that compares with the monitor's previous sample (SNMP rates and reboots) sets ``uses_previous = True``
and is called with ``previous=`` (the monitor's previous ``ProbeResult`` or None); probes keep no state.
"""

from probes.base import Outcome, ProbeResult, SpecBase
from probes.context import ProbeContext, make_context
from probes.dns import DnsSpec, probe_dns
from probes.domain import DomainSpec, probe_domain
from probes.errors import IcmpUnavailable, ProbeError
from probes.heartbeat import HeartbeatSpec
from probes.http import BodyRule, HttpSpec, probe_http
from probes.icmp import IcmpSpec, probe_icmp
from probes.imap import ImapSpec, probe_imap
from probes.mysql import MysqlSpec, probe_mysql
from probes.pop3 import Pop3Spec, probe_pop3
from probes.postgres import PostgresSpec, probe_postgres
from probes.redis import RedisSpec, probe_redis
from probes.smtp import SmtpSpec, probe_smtp
from probes.snmp import SnmpSpec, probe_snmp
from probes.tcp import TcpSpec, probe_tcp
from probes.udp import UdpSpec, probe_udp

__all__ = ["Outcome", "ProbeContext", "ProbeResult", "SpecBase", "PROBERS", "SPECS", "PUSH_KINDS", "make_context",
           "HttpSpec", "BodyRule", "TcpSpec", "IcmpSpec", "DnsSpec", "HeartbeatSpec", "ProbeError", "IcmpUnavailable",
           "MysqlSpec", "PostgresSpec", "RedisSpec", "UdpSpec", "SmtpSpec", "ImapSpec", "Pop3Spec", "SnmpSpec", "DomainSpec",
           "probe_http", "probe_tcp", "probe_icmp", "probe_dns", "probe_mysql", "probe_postgres", "probe_redis",
           "probe_udp", "probe_smtp", "probe_imap", "probe_pop3", "probe_snmp", "probe_domain"]

PROBERS = {
    "http": probe_http,
    "tcp": probe_tcp,
    "icmp": probe_icmp,
    "dns": probe_dns,
    "mysql": probe_mysql,
    "postgres": probe_postgres,
    "redis": probe_redis,
    "udp": probe_udp,
    "smtp": probe_smtp,
    "imap": probe_imap,
    "pop3": probe_pop3,
    "snmp": probe_snmp,
    "domain": probe_domain,
}

SPECS = {
    "http": HttpSpec,
    "tcp": TcpSpec,
    "icmp": IcmpSpec,
    "dns": DnsSpec,
    "mysql": MysqlSpec,
    "postgres": PostgresSpec,
    "redis": RedisSpec,
    "udp": UdpSpec,
    "smtp": SmtpSpec,
    "imap": ImapSpec,
    "pop3": Pop3Spec,
    "heartbeat": HeartbeatSpec,
    "snmp": SnmpSpec,
    "domain": DomainSpec,
}

PUSH_KINDS = frozenset({"heartbeat"})
assert set(SPECS) == set(PROBERS) | PUSH_KINDS, "every kind is probed or pushed, and has a spec"
