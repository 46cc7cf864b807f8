"""The escalation setting and the on-call rotation: pure functions, table tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from incidents.escalation_policy import TEHRAN, Override, Rotation, Step, on_call, parse_escalation
from monitor.errors import InvalidInput, SettingsError
from monitor.settings import load_settings
from negahban.service import configured_escalation

ROTATION = Rotation("noc", ("ali", "reza", "sara"), datetime(2026, 11, 28, 9, 0), (
    Override(datetime(2026, 12, 10, 20, 0, tzinfo=TEHRAN), datetime(2026, 12, 11, 8, 0, tzinfo=TEHRAN), "maryam"),))


def tehran(*args: int) -> datetime:
    return datetime(*args, tzinfo=TEHRAN)


@pytest.mark.parametrize(("now", "person"), [
    (tehran(2026, 11, 28, 9, 0), "ali"),             # the first handover, Saturday 09:00 Tehran
    (tehran(2026, 12, 5, 8, 59), "ali"),             # one minute before the next handover
    (tehran(2026, 12, 5, 9, 0), "reza"),             # the next week's shift
    (datetime(2026, 12, 5, 5, 30, tzinfo=UTC), "reza"),  # 09:00 Tehran is 05:30 UTC (+03:30)
    (datetime(2026, 12, 5, 5, 29, tzinfo=UTC), "ali"),
    (tehran(2026, 12, 10, 19, 59), "reza"),
    (tehran(2026, 12, 10, 20, 0), "maryam"),         # an override covers its span ...
    (tehran(2026, 12, 11, 7, 59), "maryam"),
    (tehran(2026, 12, 11, 8, 0), "reza"),            # ... and ends where it says
    (tehran(2026, 12, 12, 9, 0), "sara"),
    (tehran(2026, 12, 19, 9, 0), "ali"),             # back to the first after three weeks
    (tehran(2026, 11, 27, 9, 0), "sara"),            # before the start: the week before belongs to the last
])
def test_on_call_by_weekly_shifts_in_tehran_time_with_overrides(now, person):
    assert on_call(ROTATION, now) == person


def test_the_setting_names_rotations_and_policies_per_severity_and_customer():
    config = parse_escalation(
        "rotation noc: ali-sms reza-sms from 2026-11-28T09:00 override 2026-12-03T09:00/2026-12-04T09:00=sara-sms;"
        " urgent: noc-bale 5, oncall=noc 10, noc-pd 10 x3; urgent customer=acme: acme-oncall 2.5m x2;"
        " important: noc-bale 30")
    rotation = config.rotations["noc"]
    assert rotation.people == ("ali-sms", "reza-sms") and rotation.start == datetime(2026, 11, 28, 9)
    assert rotation.overrides == (Override(tehran(2026, 12, 3, 9), tehran(2026, 12, 4, 9), "sara-sms"),)
    urgent = config.policy_for("urgent", None)
    assert urgent.steps == (Step(300, channel="noc-bale"), Step(600, rotation="noc"), Step(600, channel="noc-pd"))
    # Notify, wait; the last step three times; the limit is the end of the last wait.
    assert [at for at, _ in urgent.schedule()] == [0, 300, 900, 1500, 2100]
    assert urgent.limit_s() == 2700
    acme = config.policy_for("urgent", "acme")
    assert acme.customer == "acme" and [at for at, _ in acme.schedule()] == [0, 150] and acme.limit_s() == 300
    assert config.policy_for("urgent", "other") is urgent
    assert config.policy_for("important", "acme").steps == (Step(1800, channel="noc-bale"),)
    assert config.channel_names() == {"noc-bale", "noc-pd", "acme-oncall", "ali-sms", "reza-sms", "sara-sms"}


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("urgent noc-bale 5", "escalation_policies[0].entry", "expected 'rotation NAME: ...'"),
    ("critical: noc 5", "escalation_policies[0].severity", "'critical' is not one of urgent, important"),
    ("urgent acme: noc 5", "escalation_policies[0].scope", "expected '<severity>' or"),
    ("urgent: noc", "escalation_policies[0].steps[0]", "expected '<channel or oncall=rotation> <minutes>'"),
    ("urgent: noc 5 x2, pd 5", "escalation_policies[0].steps[0]", "only the last step may repeat"),
    ("urgent: noc 0", "escalation_policies[0].steps[0]", "more than 0 minutes"),
    ("urgent: noc 5 x0", "escalation_policies[0].steps[0]", "repeat between x1 and x100"),
    ("urgent: oncall=nobody 5", "escalation_policies[0].steps[0]", "no rotation named 'nobody'"),
    ("urgent: a 5; urgent: b 5", "escalation_policies[1].scope", "a second policy for the same severity"),
    ("rotation noc: ali", "escalation_policies[0].from", "needs 'from <Tehran date and time>'"),
    ("rotation noc: from 2026-11-28T09:00", "escalation_policies[0].people", "at least one person"),
    ("rotation noc: ali from tomorrow", "escalation_policies[0].from", "'tomorrow' is not a date and time"),
    ("rotation noc: ali from 2026-11-28T09:00+03:30", "escalation_policies[0].from", "without an offset"),
    ("rotation noc: ali from 2026-11-28T09:00 override 2026-12-02T09:00/2026-12-01T09:00=reza",
     "escalation_policies[0].override", "ends before it starts"),
    ("rotation noc: ali from 2026-11-28T09:00 override reza", "escalation_policies[0].override",
     "expected START/END=person"),
    ("rotation noc: a from 2026-11-28T09:00; rotation noc: b from 2026-11-28T09:00", "escalation_policies[1].name",
     "named twice"),
])
def test_a_bad_entry_names_its_field_and_reason(text, field, reason):
    with pytest.raises(InvalidInput) as caught:
        parse_escalation(text)
    assert caught.value.field == field and reason in caught.value.reason


def test_a_bad_setting_stops_the_start_naming_the_variable():
    with pytest.raises(SettingsError, match=r"NEGAHBAN_ESCALATION_POLICIES: escalation_policies\[0\].severity"):
        configured_escalation(load_settings({}, escalation_policies="sev1: noc 5"))
