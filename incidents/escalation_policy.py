"""Escalation policies and on-call rotations, named in one setting (``NEGAHBAN_ESCALATION_POLICIES``).

Entries are separated by ``;``. A rotation hands over weekly at its start's Tehran wall time:

    rotation noc: ali-sms reza-sms sara-sms from 2026-11-28T09:00 override 2026-12-03T09:00/2026-12-04T09:00=sara-sms

A policy applies to a severity (and optionally one customer's incidents) and lists steps, each "notify this
target, then wait N minutes for an acknowledgement"; the last step may repeat (``x3``):

    urgent: noc-bale 5, oncall=noc 10, noc-pd 10 x3; urgent customer=acme: acme-oncall 5 x2

A target is a channel's name or ``oncall=<rotation>`` (the channel named by whoever is on call). Once the
last step has waited its wait without an acknowledgement, the page was not delivered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from incidents.models import Severity
from monitor.errors import InvalidInput

__all__ = ["Step", "Policy", "Rotation", "Override", "EscalationConfig", "parse_escalation", "on_call",
           "TEHRAN"]

TEHRAN = ZoneInfo("Asia/Tehran")
_WEEK = timedelta(days=7)
_STEP = re.compile(r"^(?P<target>\S+)\s+(?P<wait>\d+(?:\.\d+)?)m?(?:\s+x(?P<repeat>\d+))?$")


@dataclass(frozen=True, slots=True)
class Override:
    start: datetime  # aware
    end: datetime
    person: str


@dataclass(frozen=True, slots=True)
class Rotation:
    name: str
    people: tuple[str, ...]
    start: datetime  # naive Tehran wall time of the first handover
    overrides: tuple[Override, ...] = ()


def on_call(rotation: Rotation, now: datetime) -> str:
    """Who is on call at ``now`` (aware): an override covering it, else the person of that week's shift.
    Shifts are counted in Tehran wall time, so a handover stays at its local hour whatever the offset."""
    for override in rotation.overrides:
        if override.start <= now < override.end:
            return override.person
    local = now.astimezone(TEHRAN).replace(tzinfo=None)
    return rotation.people[((local - rotation.start) // _WEEK) % len(rotation.people)]


@dataclass(frozen=True, slots=True)
class Step:
    """Notify ``channel`` (a channel's name) or, with ``rotation``, whoever is on call; then wait."""

    wait_s: float
    channel: str | None = None
    rotation: str | None = None
    channel_id: int | None = None  # steps of policies stored in the database (``set_policy``)


@dataclass(frozen=True, slots=True)
class Policy:
    severity: str
    steps: tuple[Step, ...]
    repeat: int = 1  # how many times the last step is taken
    customer: str | None = None
    # Steps stored with absolute offsets since opening (``set_policy``) and no acknowledgement limit.
    offsets: tuple[float, ...] | None = None

    def schedule(self) -> list[tuple[float, Step]]:
        """Every step to take, the last one repeated, with its offset (seconds since the incident opened)."""
        if self.offsets is not None:
            return list(zip(self.offsets, self.steps, strict=True))
        expanded = [*self.steps, *[self.steps[-1]] * (self.repeat - 1)]
        out, at = [], 0.0
        for step in expanded:
            out.append((at, step))
            at += step.wait_s
        return out

    def limit_s(self) -> float | None:
        """Seconds after opening by which someone must have acknowledged (None: no limit)."""
        if self.offsets is not None:
            return None
        return sum(s.wait_s for s in self.steps) + self.steps[-1].wait_s * (self.repeat - 1)


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    policies: tuple[Policy, ...] = ()
    rotations: Mapping[str, Rotation] | None = None

    def policy_for(self, severity: str, customer: str | None) -> Policy | None:
        for policy in self.policies:
            if policy.severity == severity and policy.customer is not None and policy.customer == customer:
                return policy
        return next((p for p in self.policies if p.severity == severity and p.customer is None), None)

    def channel_names(self) -> set[str]:
        names = {s.channel for p in self.policies for s in p.steps if s.channel}
        for rotation in (self.rotations or {}).values():
            names |= set(rotation.people) | {o.person for o in rotation.overrides}
        return names


def _field(i: int, name: str) -> str:
    return f"escalation_policies[{i}].{name}"


def _local(i: int, field: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_field(i, field), f"{text!r} is not a date and time like 2026-11-28T09:00") from None
    if value.tzinfo is not None:
        raise InvalidInput(_field(i, field), f"{text!r}: give Tehran wall time without an offset")
    return value


def _rotation(i: int, name: str, words: Sequence[str]) -> Rotation:
    if "from" not in words:
        raise InvalidInput(_field(i, "from"), "a rotation needs 'from <Tehran date and time>'")
    at = list(words).index("from")
    people, rest = tuple(words[:at]), list(words[at + 1:])
    if not people:
        raise InvalidInput(_field(i, "people"), "a rotation needs at least one person (a channel's name)")
    if not rest:
        raise InvalidInput(_field(i, "from"), "a rotation needs 'from <Tehran date and time>'")
    start, overrides = _local(i, "from", rest.pop(0)), []
    while rest:
        word = rest.pop(0)
        if word != "override" or not rest:
            raise InvalidInput(_field(i, "override"), f"{word!r}: expected 'override START/END=person'")
        spec = rest.pop(0)
        span, sep, person = spec.partition("=")
        begin, slash, end = span.partition("/")
        if not sep or not slash or not person:
            raise InvalidInput(_field(i, "override"), f"{spec!r}: expected START/END=person")
        b = _local(i, "override", begin).replace(tzinfo=TEHRAN)
        e = _local(i, "override", end).replace(tzinfo=TEHRAN)
        if e <= b:
            raise InvalidInput(_field(i, "override"), f"{spec!r}: ends before it starts")
        overrides.append(Override(b, e, person))
    return Rotation(name, people, start, tuple(overrides))


def _policy(i: int, head: str, body: str, rotations: Mapping[str, Rotation]) -> Policy:
    words = head.split()
    severity, customer = words[0], None
    if severity not in set(Severity):
        raise InvalidInput(_field(i, "severity"), f"{severity!r} is not one of {', '.join(Severity)}")
    if len(words) == 2 and words[1].startswith("customer=") and len(words[1]) > len("customer="):
        customer = words[1].removeprefix("customer=")
    elif len(words) != 1:
        raise InvalidInput(_field(i, "scope"), f"{head!r}: expected '<severity>' or '<severity> customer=<name>'")
    parts = [p.strip() for p in body.split(",")]
    if not any(parts):
        raise InvalidInput(_field(i, "steps"), "a policy needs at least one step")
    steps, repeat = [], 1
    for n, part in enumerate(parts):
        match = _STEP.match(part)
        if match is None:
            raise InvalidInput(_field(i, f"steps[{n}]"), f"{part!r}: expected '<channel or oncall=rotation> "
                                                         "<minutes>' (the last may end with xN)")
        if match["repeat"] is not None:
            if n != len(parts) - 1:
                raise InvalidInput(_field(i, f"steps[{n}]"), "only the last step may repeat")
            repeat = int(match["repeat"])
            if not 1 <= repeat <= 100:
                raise InvalidInput(_field(i, f"steps[{n}]"), "repeat between x1 and x100")
        wait = float(match["wait"]) * 60
        if wait <= 0:
            raise InvalidInput(_field(i, f"steps[{n}]"), "the wait must be more than 0 minutes")
        target = match["target"]
        if target.startswith("oncall="):
            rotation = target.removeprefix("oncall=")
            if rotation not in rotations:
                raise InvalidInput(_field(i, f"steps[{n}]"), f"no rotation named {rotation!r}")
            steps.append(Step(wait, rotation=rotation))
        else:
            steps.append(Step(wait, channel=target))
    return Policy(severity, tuple(steps), repeat, customer)


def parse_escalation(text: str) -> EscalationConfig:
    """Parse the setting; a bad entry raises ``InvalidInput`` naming ``escalation_policies[i].field``."""
    entries = [p.strip() for p in text.split(";") if p.strip()]
    rotations: dict[str, Rotation] = {}
    policies: list[tuple[int, str, str]] = []
    for i, entry in enumerate(entries):
        head, sep, body = entry.partition(":")
        if not sep or not head.strip():
            raise InvalidInput(_field(i, "entry"), f"{entry!r}: expected 'rotation NAME: ...' or "
                                                   "'<severity>: steps'")
        words = head.split()
        if words[0] == "rotation":
            if len(words) != 2:
                raise InvalidInput(_field(i, "name"), f"{head!r}: expected 'rotation NAME'")
            if words[1] in rotations:
                raise InvalidInput(_field(i, "name"), f"rotation {words[1]!r} is named twice")
            rotations[words[1]] = _rotation(i, words[1], body.split())
        else:
            policies.append((i, head, body))
    parsed = [_policy(i, head, body, rotations) for i, head, body in policies]
    seen: set[tuple[str, str | None]] = set()
    for (i, _, _), policy in zip(policies, parsed, strict=True):
        if (policy.severity, policy.customer) in seen:
            raise InvalidInput(_field(i, "scope"), "a second policy for the same severity and customer")
        seen.add((policy.severity, policy.customer))
    return EscalationConfig(tuple(parsed), rotations)
