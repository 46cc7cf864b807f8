"""The incident routes over HTTP: the Alertmanager receiver's answers and the NOC's actions."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from incidents.models import Status
from monitor.accounts import Role, create_user, issue_token
from tests.incident_support import incidents
from tests.test_alertmanager_receiver import alert, payload


@pytest.fixture
async def api(sessionmaker, clock):
    tokens = {}
    async with sessionmaker() as s, s.begin():
        for name, role in (("am", Role.NOC), ("nora", Role.NOC), ("fin", Role.FINANCE)):
            u = await create_user(s, name, role)
            tokens[name] = {"Authorization": f"Bearer {await issue_token(s, u.id, 't', clock.now())}"}
    woken = []
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry(),
                   services={"incidents_changed": lambda: woken.append(1)})
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        yield client, tokens, woken


async def test_the_receiver_opens_an_incident_and_wakes_the_next_stage(api, sessionmaker):
    client, tokens, woken = api
    resp = await client.post("/api/v1/alertmanager", json=payload(alert()), headers=tokens["am"])
    assert resp.status == 200 and (await resp.json())["opened"] == 1
    assert len(await incidents(sessionmaker)) == 1 and woken == [1]


@pytest.mark.parametrize(("body", "field"), [
    ({"version": "4"}, "groupKey"),
    ({**payload(alert()), "alerts": [{**alert(), "status": "maybe"}]}, "alerts.0.status"),
])
async def test_a_malformed_payload_gets_400_naming_the_field_and_stores_nothing(api, sessionmaker, body, field):
    client, tokens, _ = api
    resp = await client.post("/api/v1/alertmanager", json=body, headers=tokens["am"])
    assert resp.status == 400 and (await resp.json())["field"] == field
    assert await incidents(sessionmaker) == []


async def test_the_receiver_refuses_callers_without_a_noc_token(api):
    client, tokens, _ = api
    assert (await client.post("/api/v1/alertmanager", json=payload(alert()))).status == 401
    resp = await client.post("/api/v1/alertmanager", json=payload(alert()), headers=tokens["fin"])
    assert resp.status == 403


async def test_the_noc_acknowledges_notes_and_resolves_through_the_api(api, sessionmaker):
    client, tokens, _ = api
    body = payload(alert(starts="2025-12-31T23:59:00Z"))
    await client.post("/api/v1/alertmanager", json=body, headers=tokens["am"])
    (inc,) = await incidents(sessionmaker)
    base = f"/api/v1/incidents/{inc.id}"
    ack = await (await client.post(f"{base}/acknowledge", headers=tokens["nora"])).json()
    assert ack["status"] == "acknowledged"
    assert (await client.post(f"{base}/notes", json={"text": "looking"}, headers=tokens["nora"])).status == 201
    done = await client.post(f"{base}/resolve", json={"text": "rebooted"}, headers=tokens["nora"])
    assert (await done.json())["status"] == "resolved"
    again = await client.post(f"{base}/resolve", json={"text": "again"}, headers=tokens["nora"])
    assert again.status == 400
    detail = await (await client.get(base, headers=tokens["nora"])).json()
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "acknowledged", "note", "resolved"]


@pytest.mark.parametrize(("state", "reopens"), [("DOWN", True), ("DEGRADED", True), ("UP", False)])
async def test_a_manual_resolve_of_a_monitor_still_failing_opens_a_new_linked_incident(
        api, sessionmaker, clock, state, reopens):
    """Resolved by hand while still DOWN, the failure flips no more: without the follow-up no incident would
    ever open again for it."""
    from incidents.engine import EngineConfig, IncidentEngine
    from monitor.models import MonitorState
    from tests.incident_support import add, flip, server_with_monitor

    client, tokens, _ = api
    mon = await server_with_monitor(sessionmaker, "web-1")
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    engine = IncidentEngine(sessionmaker, clock, EngineConfig())
    await engine.process_pending()
    await add(sessionmaker, MonitorState(monitor_id=mon.id, state=state, since=clock.now()))
    (first,) = await incidents(sessionmaker)
    clock.advance(60)
    resp = await client.post(f"/api/v1/incidents/{first.id}/resolve", json={"text": "rebooted"},
                             headers=tokens["nora"])
    assert resp.status == 200
    await engine.process_pending()
    rows = await incidents(sessionmaker)
    assert rows[0].status == Status.RESOLVED
    if reopens:
        assert len(rows) == 2 and rows[1].status == Status.TRIGGERED and rows[1].previous_incident_id == first.id
    else:
        assert len(rows) == 1


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/incidents/987654"),
    ("POST", "/api/v1/incidents/987654/acknowledge"),
    ("POST", "/api/v1/incidents/987654/resolve"),
    ("POST", "/api/v1/incidents/987654/notes"),
])
async def test_a_missing_incident_is_404_like_every_other_route(api, method, path):
    client, tokens, _ = api
    resp = await client.request(method, path, json={"text": "x"}, headers=tokens["nora"])
    assert resp.status == 404 and (await resp.json())["error"] == "not found"
