"""The Alertmanager receiver's logic: validation, open/update/resolve, idempotence under retries."""

from __future__ import annotations

import copy
import json

import pytest

from incidents.alertmanager import AlertmanagerConfig, receive
from incidents.errors import InvalidPayload
from incidents.models import Audience, IncidentAffected, Notification, Severity, Source, Status
from tests.incident_support import channel, count, incidents, server_with_monitor

CONFIG = AlertmanagerConfig()
STARTS = "2026-01-01T00:00:00.123Z"


def alert(status="firing", fingerprint="a1b2c3", starts=STARTS, severity="critical", **labels) -> dict:
    return {
        "status": status, "labels": {"alertname": "HostDown", "instance": "10.0.0.5", "severity": severity,
                                     **labels},
        "annotations": {"summary": "host 10.0.0.5 is down"}, "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-01T00:10:00.123Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint,
    }


def payload(*alerts, status="firing") -> dict:
    return {"version": "4", "groupKey": "{}:{alertname=\"HostDown\"}", "truncatedAlerts": 0, "status": status,
            "receiver": "negahban", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager", "alerts": list(alerts)}


def broken(path: str, value) -> dict:
    body = payload(alert(), alert(fingerprint="ffff"))
    target = body
    *parents, last = path.split(".")
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return body


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (broken("version", "3"), "version"),
    (broken("alerts.1.status", "exploded"), "alerts.1.status"),
    (broken("alerts.0.fingerprint", KeyError), "alerts.0.fingerprint"),
    (broken("alerts.1.startsAt", "yesterday"), "alerts.1.startsAt"),
    (broken("alerts", {"a": 1}), "alerts"),
    (broken("alerts.0.labels", ["x"]), "alerts.0.labels"),
])
async def test_a_malformed_payload_names_the_field_and_stores_nothing(sessionmaker, clock, body, field):
    with pytest.raises(InvalidPayload) as err:
        await receive(sessionmaker, body if isinstance(body, bytes) else json.dumps(body), clock.now(), CONFIG)
    assert err.value.field == field
    assert await incidents(sessionmaker) == []


async def test_a_firing_alert_opens_one_incident_even_when_retried(sessionmaker, clock):
    first = await receive(sessionmaker, payload(alert()), clock.now(), CONFIG)
    again = await receive(sessionmaker, payload(alert()), clock.advance(10), CONFIG)
    assert (first.opened, again.opened, again.updated) == (1, 0, 1)
    (inc,) = await incidents(sessionmaker)
    assert (inc.source, inc.severity, inc.title) == (Source.ALERTMANAGER, Severity.URGENT, "host 10.0.0.5 is down")
    assert inc.alert_fingerprint == "a1b2c3" and inc.status == Status.TRIGGERED


async def test_resolved_by_status_resolves_once_and_a_late_firing_retry_never_reopens(sessionmaker, clock):
    await receive(sessionmaker, payload(alert()), clock.now(), CONFIG)
    clock.advance(3600)
    done = await receive(sessionmaker, payload(alert("resolved"), status="resolved"), clock.now(), CONFIG)
    retry = await receive(sessionmaker, payload(alert("resolved"), status="resolved"), clock.now(), CONFIG)
    late = await receive(sessionmaker, payload(alert()), clock.now(), CONFIG)
    assert (done.resolved, retry.ignored, late.ignored) == (1, 1, 1)
    (inc,) = await incidents(sessionmaker)
    assert inc.status == Status.RESOLVED and inc.duration_s == 600  # from startsAt to endsAt


async def test_a_firing_alert_with_a_past_ends_at_is_still_firing(sessionmaker, clock):
    body = alert()
    body["endsAt"] = "2025-12-31T00:00:00Z"
    await receive(sessionmaker, payload(body), clock.now(), CONFIG)
    assert (await incidents(sessionmaker))[0].status == Status.TRIGGERED


async def test_the_same_alert_firing_again_later_opens_a_new_linked_incident(sessionmaker, clock):
    await receive(sessionmaker, payload(alert()), clock.now(), CONFIG)
    await receive(sessionmaker, payload(alert("resolved"), status="resolved"), clock.advance(3600), CONFIG)
    await receive(sessionmaker, payload(alert(starts="2026-01-01T02:00:00Z")), clock.now(), CONFIG)
    first, second = await incidents(sessionmaker)
    assert second.status == Status.TRIGGERED and second.previous_incident_id == first.id


@pytest.mark.parametrize(("label", "mapping", "default", "expected"), [
    ("critical", None, Severity.IMPORTANT, Severity.URGENT),
    ("warning", None, Severity.IMPORTANT, Severity.IMPORTANT),
    ("info", None, Severity.IMPORTANT, Severity.IMPORTANT),
    ("info", None, None, None),
    ("page", {"page": Severity.URGENT}, None, Severity.URGENT),
])
async def test_severity_comes_from_the_configured_label_mapping(sessionmaker, clock, label, mapping, default,
                                                                expected):
    config = AlertmanagerConfig(default_severity=default, **({"severities": mapping} if mapping else {}))
    await receive(sessionmaker, payload(alert(severity=label)), clock.now(), config)
    found = await incidents(sessionmaker)
    assert [i.severity for i in found] == ([expected] if expected else [])


async def test_a_warning_raised_to_critical_upgrades_the_incident(sessionmaker, clock):
    await receive(sessionmaker, payload(alert(severity="warning")), clock.now(), CONFIG)
    await receive(sessionmaker, payload(alert(severity="critical")), clock.now(), CONFIG)
    await receive(sessionmaker, payload(alert(severity="warning")), clock.now(), CONFIG)
    assert [i.severity for i in await incidents(sessionmaker)] == [Severity.URGENT]


async def test_the_service_label_ties_the_incident_to_the_customer(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")
    await receive(sessionmaker, payload(alert(service="svc-web-1")), clock.now(), CONFIG)
    (inc,) = await incidents(sessionmaker)
    assert inc.service_id == mon.service_id and inc.customer_id is not None
    assert await count(sessionmaker, IncidentAffected.id, IncidentAffected.customer_id == inc.customer_id) == 1


async def test_one_bad_alert_in_a_batch_stores_none_of_the_batch(sessionmaker, clock):
    good, bad = alert(), copy.deepcopy(alert(fingerprint="x"))
    bad["status"] = "pending"
    with pytest.raises(InvalidPayload):
        await receive(sessionmaker, payload(good, bad), clock.now(), CONFIG)
    assert await incidents(sessionmaker) == []


@pytest.mark.parametrize(("starts", "opened_offset_s"), [
    ("1970-01-01T00:00:00Z", -7 * 86400),  # not before a week ago
    ("9999-12-31T23:59:59Z", 0),  # a start in the future is taken as "now"
    ("2025-12-31T23:00:00Z", -3600),  # a sane start is kept
])
async def test_an_alerts_start_is_clamped_to_a_sane_window(sessionmaker, clock, starts, opened_offset_s):
    await receive(sessionmaker, payload(alert(starts=starts)), clock.now(), CONFIG)
    (inc,) = await incidents(sessionmaker)
    assert (inc.opened_at - clock.now()).total_seconds() == opened_offset_s


async def test_an_alert_with_a_summary_longer_than_the_old_columns_opens_its_incident(sessionmaker, clock):
    """A 285-character summary (and a 5,000-character one) answered 500 on PostgreSQL: the NOC's notice
    subject outgrew varchar(300)."""
    await channel(sessionmaker, "noc", Audience.NOC)
    for i, size in enumerate((285, 5000)):
        body = alert(fingerprint=f"long{i}")
        body["annotations"]["summary"] = "x" * size
        assert (await receive(sessionmaker, payload(body), clock.now(), CONFIG)).opened == 1
    assert len(await incidents(sessionmaker)) == 2
    assert await count(sessionmaker, Notification.id) == 2


async def test_alerts_of_negahbans_own_rules_never_become_incidents(sessionmaker, clock):
    """No loops: NegahbanProbeFailing describes an outage that already has its incident; Negahban's health
    alerts go to the NOC by Alertmanager's other routes. The receiver counts them and opens nothing, even in a
    group with an ordinary alert, and their "resolved" touches nothing."""
    own = alert(fingerprint="0wn", alertname="NegahbanProbeFailing", origin="negahban", monitor="web")
    other = alert(fingerprint="0th")
    first = await receive(sessionmaker, payload(own, other), clock.now(), CONFIG)
    assert (first.own, first.opened) == (1, 1)
    resolved = await receive(sessionmaker, payload({**own, "status": "resolved"}, status="resolved"), clock.now(),
                             CONFIG)
    assert (resolved.own, resolved.resolved, resolved.ignored) == (1, 0, 0)
    (only,) = await incidents(sessionmaker)
    assert only.alert_fingerprint == "0th"
    # Another deployment's label value is somebody else's rule: it opens as usual.
    theirs = await receive(sessionmaker, payload(alert(fingerprint="x1", origin="node-team")), clock.now(), CONFIG)
    assert (theirs.own, theirs.opened) == (0, 1)
