"""SNMP probe (pysnmp 7, asyncio; v2c with a community, v3 with USM auth/priv), in four modes:

* ``uptime``: GET sysUpTime.0. Reachable is UP; a reboot since the previous check is an *event*, not an
  outage: the result stays UP with reason ``rebooted`` and ``details["event"] = "reboot"``.
* ``interface``: ifOperStatus of one interface (by ifName/ifDescr or ifIndex). up(1) is UP; down(2),
  lowerLayerDown(7) and notPresent(6) are DOWN ``interface_down``; testing, unknown and dormant are DEGRADED.
  An interface that is administratively down is, by default, DOWN with its own reason ``interface_admin_down``
  (a port someone shut by mistake is a common outage; planned work belongs in a maintenance window);
  ``admin_down`` can make it ``degraded`` or ``up`` for ports that are meant to be shut.
* ``counters``: ifInErrors, ifOutErrors, ifInDiscards, ifOutDiscards of one interface as rates per second
  between checks; DEGRADED ``error_rate`` above ``max_rate_per_s``.
* ``oid``: any OID compared with ``equals`` (text), ``regex`` (search) or numeric ``min``/``max``.

No answer is DOWN ``timeout`` (a wrong v2c community is never answered); a v3 user the agent does not know,
a wrong authentication key or a refused access is DOWN ``auth_failed``.

The probe is stateless. Rates and reboots need the previous sample: the caller passes the previous result of
the same monitor as ``previous=`` (``probe_snmp.uses_previous`` says so; see ``monitor.runner``), and every
result carries its sample in ``details["sample"]`` — a failed check carries the last good one forward, so a
device that reboots during an outage is seen rebooting when it answers again.

Building a pysnmp engine costs ~0.1 s of CPU, so engines are shared through ``ctx.extras["snmp"]``: one for
all v2c checks, one per distinct v3 credential (pysnmp keeps one USM entry per user name in an engine, so two
devices with the same user and different keys must not share one).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoAuthProtocol,
    usmNoPrivProtocol,
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import Counter32, Counter64, Gauge32, Integer32, TimeTicks, Unsigned32
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from probes.base import Failure, Outcome, ProbeResult, SpecBase

__all__ = ["SnmpSpec", "probe_snmp", "SnmpEngines", "rebooted", "counter_rates"]

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_DESCR, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
COUNTERS = {"ifInDiscards": "1.3.6.1.2.1.2.2.1.13", "ifInErrors": "1.3.6.1.2.1.2.2.1.14",
            "ifOutDiscards": "1.3.6.1.2.1.2.2.1.19", "ifOutErrors": "1.3.6.1.2.1.2.2.1.20"}
OPER = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}
WRAP32 = 2 ** 32
AUTH = {"SHA": usmHMACSHAAuthProtocol, "SHA-256": usmHMAC192SHA256AuthProtocol}
PRIV = {"AES": usmAesCfb128Protocol}
AUTH_FAILED = (errind.UnknownUserName, errind.WrongDigest, errind.UnknownSecurityName, errind.AuthenticationFailure,
               errind.AuthenticationError, errind.UnsupportedSecurityLevel, errind.UnknownCommunityName,
               errind.DecryptionError)
NUMERIC = (Integer32, Counter32, Counter64, Gauge32, TimeTicks, Unsigned32)
_OID = re.compile(r"^\.?\d+(\.\d+)+$")


class SnmpSpec(SpecBase):
    kind: Literal["snmp"] = "snmp"
    port: int = Field(161, gt=0, lt=65536)
    version: Literal["2c", "3"] = "2c"
    community: str = Field("public", min_length=1, max_length=255)
    user: str | None = Field(None, min_length=1, max_length=32)
    auth_protocol: Literal["SHA", "SHA-256"] | None = None
    auth_key: str | None = Field(None, min_length=8, max_length=255)
    priv_protocol: Literal["AES"] | None = None
    priv_key: str | None = Field(None, min_length=8, max_length=255)
    retries: int = Field(1, ge=0, le=5)
    mode: Literal["uptime", "interface", "counters", "oid"] = "uptime"
    interface: str | int | None = None  # ifName or ifDescr, or an ifIndex
    admin_down: Literal["down", "degraded", "up"] = "down"
    max_rate_per_s: float = Field(1.0, ge=0)
    oid: str | None = None
    equals: str | None = None
    regex: str | None = None
    min: float | None = None
    max: float | None = None

    @field_validator("target")
    @classmethod
    def _host(cls, v: str) -> str:
        if v.startswith("[") or ("/" in v) or (v.count(":") == 1):
            raise ValueError("target must be a host name or an IP address; the port goes in `port`")
        return v

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str | None) -> str | None:
        if v is not None and not _OID.match(v):
            raise ValueError("oid must be numeric and dotted, like 1.3.6.1.2.1.1.5.0")
        return v.lstrip(".") if v else v

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"regex is not valid: {exc}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SnmpSpec:
        for problem in (*_credential_problems(self), *_mode_problems(self)):
            raise ValueError(problem)
        return self


def _credential_problems(s: SnmpSpec) -> list[str]:
    if s.version == "2c":
        v3 = [f for f in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key") if getattr(s, f)]
        return [f"{', '.join(v3)}: only for version 3 (v2c uses community)"] if v3 else []
    problems = []
    if s.user is None:
        problems.append("user: required for version 3")
    if (s.auth_protocol is None) != (s.auth_key is None):
        problems.append("auth_protocol and auth_key: give both or neither")
    if (s.priv_protocol is None) != (s.priv_key is None):
        problems.append("priv_protocol and priv_key: give both or neither")
    if s.priv_protocol and not s.auth_protocol:
        problems.append("priv_protocol: privacy needs authentication (auth_protocol and auth_key)")
    return problems


def _mode_problems(s: SnmpSpec) -> list[str]:
    problems = []
    if s.mode in ("interface", "counters") and s.interface is None:
        problems.append(f"interface: required in mode {s.mode} (an ifName, ifDescr or ifIndex)")
    if isinstance(s.interface, int) and s.interface < 1:
        problems.append("interface: an ifIndex starts at 1")
    if s.mode == "oid":
        if s.oid is None:
            problems.append("oid: required in mode oid")
        if s.equals is None and s.regex is None and s.min is None and s.max is None:
            problems.append("equals, regex, min or max: mode oid needs something to compare with")
        if s.min is not None and s.max is not None and s.min > s.max:
            problems.append("min: greater than max")
    return problems


class SnmpEngines:
    """The shared pysnmp engines of one probe context, by credential; ``close()`` at shutdown."""

    def __init__(self) -> None:
        self._engines: dict[str, SnmpEngine] = {}

    def get(self, key: str) -> SnmpEngine:
        engine = self._engines.get(key)
        if engine is None:
            engine = self._engines[key] = SnmpEngine()
        return engine

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()


def _auth(spec: SnmpSpec) -> tuple[str, Any]:
    if spec.version == "2c":
        return "v2c", CommunityData(spec.community, mpModel=1)
    key = hashlib.sha256(repr((spec.user, spec.auth_protocol, spec.auth_key, spec.priv_protocol,
                               spec.priv_key)).encode()).hexdigest()
    return f"v3:{key}", UsmUserData(spec.user, spec.auth_key, spec.priv_key,
                                    authProtocol=AUTH[spec.auth_protocol] if spec.auth_protocol else usmNoAuthProtocol,
                                    privProtocol=PRIV[spec.priv_protocol] if spec.priv_protocol else usmNoPrivProtocol)


class _Udp(UdpTransportTarget):
    async def _resolve_address(self, address: tuple) -> tuple:
        return address[0], address[1]  # already an address: ours came from ctx.resolve (the resolver seam)


class _Udp6(Udp6TransportTarget):
    async def _resolve_address(self, address: tuple) -> tuple:
        return address[0], address[1], 0, 0


async def _address(target: str, ctx) -> str:
    try:
        return str(ipaddress.ip_address(target))
    except ValueError:
        pass
    try:
        return (await ctx.resolve(target, 0))[0]
    except (OSError, IndexError) as exc:
        raise Failure("dns_error", f"cannot resolve {target}: {exc}") from None


class _Session:
    """One check's SNMP conversation: engine, credentials and transport, and the request helpers."""

    def __init__(self, spec: SnmpSpec, ctx) -> None:
        self.spec = spec
        key, self.auth = _auth(spec)
        self.engine = ctx.extras.setdefault("snmp", SnmpEngines()).get(key)
        self.target: Any = None

    async def open(self, ctx, details: dict) -> None:
        address = await _address(self.spec.target, ctx)
        details["address"] = address
        # v3 discovers the agent's engine ID first (see forget_peer): two exchanges share the budget.
        exchanges = (self.spec.retries + 1) * (2 if self.spec.version == "3" else 1)
        per_try = self.spec.timeout_s / exchanges
        kind = _Udp6 if ":" in address else _Udp
        self.target = await kind.create((address, self.spec.port), timeout=per_try, retries=self.spec.retries)

    def forget_peer(self) -> None:
        """v3: forget the agent's engine ID that the shared engine discovered, so each check discovers it
        again (one more round trip, as ``snmpget`` does). pysnmp keeps it for 5 minutes, and an agent that
        restarts with a new engine ID (no persistent storage, a replaced device) would meanwhile go
        unanswered: a false outage. pysnmp has no public call for this; the test of a restart guards it."""
        if self.spec.version != "3":
            return
        mp = self.engine.message_processing_subsystems.get(3)
        cache = getattr(mp, "_SnmpV3MessageProcessingModel__engineIdCache", None)
        if cache is None:
            return
        peer = tuple(self.target.transport_address[:2])
        for key in [k for k in cache if tuple(k[1][:2]) == peer]:
            del cache[key]

    async def get(self, *oids: str) -> dict[str, Any]:
        """GET ``oids`` in one request; return oid -> value (None for noSuchObject/noSuchInstance)."""
        self.forget_peer()
        err, status, index, binds = await get_cmd(self.engine, self.auth, self.target, ContextData(),
                                                  *(ObjectType(ObjectIdentity(o)) for o in oids), lookupMib=False)
        self._raise(err, status, index, oids)
        return {str(name): None if isinstance(value, (NoSuchObject, NoSuchInstance, EndOfMibView)) else value
                for name, value in binds}

    async def walk(self, column: str) -> dict[int, str]:
        """Walk one ifTable/ifXTable text column; return ifIndex -> text."""
        out: dict[int, str] = {}
        self.forget_peer()
        async for err, status, index, binds in bulk_walk_cmd(
                self.engine, self.auth, self.target, ContextData(), 0, 25, ObjectType(ObjectIdentity(column)),
                lexicographicMode=False, lookupMib=False):
            self._raise(err, status, index, (column,))
            for name, value in binds:
                out[int(str(name).rsplit(".", 1)[1])] = str(value)
        return out

    def _raise(self, err, status, index, oids) -> None:
        if err is None and not status:
            return
        if isinstance(err, errind.RequestTimedOut):
            hint = "a wrong community is never answered" if self.spec.version == "2c" else \
                "a wrong privacy key is not answered either"
            raise Failure("timeout", f"no SNMP answer within {self.spec.timeout_s:g}s "
                                     f"({self.spec.retries} retries; {hint})")
        if isinstance(err, AUTH_FAILED):
            raise Failure("auth_failed", f"SNMPv3 authentication failed for user {self.spec.user!r}: {err} "
                                         "(check the user name, auth protocol and auth key)")
        if err is not None:
            raise Failure("snmp_error", f"SNMP error: {err}")
        what = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
        if what == "authorizationError":
            raise Failure("auth_failed", "the agent refused access (authorizationError): the community or "
                                         "user has no access, or the security level is lower than required")
        oid = oids[int(index) - 1] if index and int(index) <= len(oids) else "?"
        raise Failure("snmp_error", f"the agent answered {what} for {oid}")


def rebooted(prev_ticks: int, prev_at: datetime, ticks: int, at: datetime) -> bool:
    """Pure: did the agent restart between two sysUpTime samples (TimeTicks, 1/100 s)?

    A reboot if the uptime went backwards (unless it is the 32-bit wrap after ~497 days), or if the agent
    has been up for clearly less time than has passed since the previous sample (it rebooted and has since
    run past the old value). The tolerance (5 s, or 2 % of the gap) absorbs round trips and clock jitter.
    """
    elapsed = (at - prev_at).total_seconds() * 100
    tolerance = max(500.0, 0.02 * elapsed)
    if ticks < prev_ticks:
        expected = prev_ticks + elapsed
        return not (expected >= WRAP32 and abs(ticks - (expected - WRAP32)) <= tolerance)
    return ticks + tolerance < elapsed


def counter_rates(prev: dict[str, int], cur: dict[str, int], seconds: float) -> dict[str, float]:
    """Pure: per-second rates of Counter32 values between two samples (one wrap allowed)."""
    if seconds <= 0:
        return {}
    return {name: ((cur[name] - prev[name]) % WRAP32) / seconds for name in cur if name in prev}


def _previous_sample(previous, key: str) -> dict | None:
    sample = (previous.details.get("sample") if previous is not None else None) or None
    return sample if sample and sample.get("key") == key else None


def _key(spec: SnmpSpec) -> str:
    return f"{spec.mode}:{spec.interface if spec.mode in ('interface', 'counters') else spec.oid or ''}"


async def probe_snmp(spec: SnmpSpec, ctx, previous: ProbeResult | None = None) -> ProbeResult:
    start = time.perf_counter()
    details: dict[str, Any] = {}
    prev = _previous_sample(previous, _key(spec))
    try:
        session = _Session(spec, ctx)
        await session.open(ctx, details)
        outcome, reason, message = await MODES[spec.mode](session, ctx, prev, details)
        details["sample"]["key"] = _key(spec)
        return ProbeResult(outcome, reason, message, time.perf_counter() - start, {}, details)
    except Failure as f:
        if prev is not None:
            details["sample"] = prev  # carried forward: the next answer is compared with the last good one
        return ProbeResult(f.outcome, f.reason, f.message, time.perf_counter() - start, {}, details)


probe_snmp.uses_previous = True  # type: ignore[attr-defined]  (read by monitor.runner)


def _reboot_verdict(prev: dict | None, ticks: int, at: datetime, details: dict) -> bool:
    details["uptime_s"] = ticks / 100
    if prev is None or "uptime_ticks" not in prev:
        return False
    if not rebooted(prev["uptime_ticks"], datetime.fromisoformat(prev["at"]), ticks, at):
        return False
    details["rebooted"] = True
    details["event"] = "reboot"
    details["previous_uptime_s"] = prev["uptime_ticks"] / 100
    return True


async def _uptime(session: _Session, ctx, prev: dict | None, details: dict) -> tuple[Outcome, str, str]:
    values = await session.get(SYS_UPTIME)
    ticks, at = _ticks(values), ctx.now()
    details["sample"] = {"at": at.isoformat(), "uptime_ticks": ticks}
    if _reboot_verdict(prev, ticks, at, details):
        return Outcome.UP, "rebooted", (f"rebooted: uptime went from {details['previous_uptime_s']:.0f}s "
                                        f"to {ticks / 100:.0f}s")
    return Outcome.UP, "ok", f"up for {ticks / 100:.0f}s"


def _ticks(values: dict[str, Any]) -> int:
    value = values.get(SYS_UPTIME)
    if value is None:
        raise Failure("oid_missing", "the agent has no sysUpTime.0")
    return int(value)


async def _if_index(session: _Session, prev: dict | None) -> int:
    """The ifIndex of the spec's interface: given, remembered from the previous check, or looked up."""
    wanted = session.spec.interface
    if isinstance(wanted, int):
        return wanted
    if prev is not None and "if_index" in prev:
        return prev["if_index"]
    return await _lookup(session, wanted)


async def _lookup(session: _Session, name: str) -> int:
    for column in (IF_NAME, IF_DESCR):
        found = [i for i, text in (await session.walk(column)).items() if text == name]
        if found:  # several: the newest (net-snmp keeps a removed interface's row for a while)
            return max(found)
    raise Failure("interface_missing", f"the agent has no interface named {name!r} (ifName or ifDescr)")


async def _interface_values(session: _Session, prev: dict | None, *extra: str,
                            scalars: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """GET the interface's name, descr and ``extra`` columns (and ``scalars`` as they are) in one request;
    re-resolve a name whose index moved."""
    index = await _if_index(session, prev)
    for attempt in range(2):
        cols = (IF_NAME, IF_DESCR, *extra)
        values = await session.get(*(f"{c}.{index}" for c in cols), *scalars)
        got = {c: values.get(f"{c}.{index}") for c in cols} | {o: values.get(o) for o in scalars}
        wanted = session.spec.interface
        named = isinstance(wanted, str) and wanted not in (str(got[IF_NAME]), str(got[IF_DESCR]))
        if got[IF_DESCR] is None and got[IF_NAME] is None or named:
            if attempt == 0 and isinstance(wanted, str) and prev is not None:
                index = await _lookup(session, wanted)  # renumbered (a reboot, a new line card)
                continue
            raise Failure("interface_missing", f"the agent has no interface {wanted!r}")
        return index, got
    raise AssertionError("unreachable")


async def _interface(session: _Session, ctx, prev: dict | None, details: dict) -> tuple[Outcome, str, str]:
    index, got = await _interface_values(session, prev, IF_ADMIN, IF_OPER)
    if got[IF_OPER] != 1 and isinstance(session.spec.interface, str) and prev and "if_index" in prev:
        # The remembered row may be stale (the port was re-created under a new ifIndex): look it up again.
        index, got = await _interface_values(session, None, IF_ADMIN, IF_OPER)
    name = str(got[IF_NAME] or got[IF_DESCR])
    oper, admin = int(got[IF_OPER] or 4), int(got[IF_ADMIN] or 0)
    details.update(if_index=index, if_name=name, oper_status=OPER.get(oper, str(oper)),
                   admin_status={1: "up", 2: "down", 3: "testing"}.get(admin, str(admin)))
    details["sample"] = {"at": ctx.now().isoformat(), "if_index": index}
    if admin == 2:
        outcome = Outcome(session.spec.admin_down)
        return outcome, "ok" if outcome is Outcome.UP else "interface_admin_down", \
            f"{name} is administratively down"
    if oper == 1:
        return Outcome.UP, "ok", f"{name} is up"
    if oper in (2, 6, 7):
        return Outcome.DOWN, "interface_down", f"{name} is {OPER[oper]} (ifOperStatus {oper})"
    return Outcome.DEGRADED, f"interface_{OPER.get(oper, 'unknown')}", f"{name} is {OPER.get(oper, oper)}"


async def _counters(session: _Session, ctx, prev: dict | None, details: dict) -> tuple[Outcome, str, str]:
    index, got = await _interface_values(session, prev, *COUNTERS.values(), scalars=(SYS_UPTIME,))
    ticks = _ticks(got)
    at = ctx.now()
    counters = {name: int(got[oid]) for name, oid in COUNTERS.items() if got[oid] is not None}
    details.update(if_index=index, if_name=str(got[IF_NAME] or got[IF_DESCR]), counters=counters)
    details["sample"] = {"at": at.isoformat(), "if_index": index, "uptime_ticks": ticks, "counters": counters}
    if prev is None or "counters" not in prev:
        return Outcome.UP, "ok", "first sample: rates from the next check"
    if _reboot_verdict(prev, ticks, at, details):
        return Outcome.UP, "rebooted", "the agent rebooted: counters start again, rates from the next check"
    rates = counter_rates(prev["counters"], counters, (at - datetime.fromisoformat(prev["at"])).total_seconds())
    details["rates_per_s"] = {k: round(v, 4) for k, v in rates.items()}
    over = {k: v for k, v in rates.items() if v > session.spec.max_rate_per_s}
    if over:
        worst = max(over, key=over.get)
        return Outcome.DEGRADED, "error_rate", (f"{worst} {over[worst]:.2f}/s on {details['if_name']} > "
                                                f"{session.spec.max_rate_per_s:g}/s")
    return Outcome.UP, "ok", f"error and discard rates within {session.spec.max_rate_per_s:g}/s"


async def _oid(session: _Session, ctx, prev: dict | None, details: dict) -> tuple[Outcome, str, str]:
    spec = session.spec
    value = (await session.get(spec.oid)).get(spec.oid)
    details["sample"] = {"at": ctx.now().isoformat()}
    if value is None:
        raise Failure("oid_missing", f"the agent has no object at {spec.oid}")
    text = str(int(value)) if isinstance(value, NUMERIC) else value.prettyPrint()
    details["value"] = text[:200]
    if spec.equals is not None and text != spec.equals:
        raise Failure("value_mismatch", f"{spec.oid} is {text[:80]!r}, expected {spec.equals!r}")
    if spec.regex is not None and re.search(spec.regex, text) is None:
        raise Failure("value_mismatch", f"{spec.oid} is {text[:80]!r}, does not match {spec.regex!r}")
    if spec.min is not None or spec.max is not None:
        _bounds(spec, value, text)
    return Outcome.UP, "ok", f"{spec.oid} = {text[:80]}"


def _bounds(spec: SnmpSpec, value, text: str) -> None:
    try:
        number = float(int(value)) if isinstance(value, NUMERIC) else float(text)
    except ValueError:
        raise Failure("value_mismatch", f"{spec.oid} is {text[:80]!r}, not a number") from None
    if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
        raise Failure("value_mismatch", f"{spec.oid} is {number:g}, outside [{spec.min}, {spec.max}]")


MODES = {"uptime": _uptime, "interface": _interface, "counters": _counters, "oid": _oid}
