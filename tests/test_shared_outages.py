"""Which incidents cut a monitor off (``incidents.shared``) and which incidents a service lists
(``incidents.lifecycle.incidents_of_service``), on the rows the incident engine writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.web.portal_sections import kind_fa
from incidents.lifecycle import incidents_of_service
from incidents.models import Incident, IncidentAffected
from incidents.shared import cut_off_intervals
from monitor.accounts import Principal, Role
from monitor.models import Customer, Flip, Monitor, NetworkDevice, Server, Service

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


async def _add(s, *rows):
    s.add_all(rows)
    await s.flush()
    return rows


async def _incident(s, root, opened, resolved, *, severity="urgent", source="monitor", service=None,
                    rows=()):
    (inc,) = await _add(s, Incident(dedup_key=f"k{opened}", source=source, severity=severity,
                                    status="resolved" if resolved else "triggered", title="zz-internal",
                                    monitor_id=root, service_id=service, opened_at=opened, resolved_at=resolved))
    s.add_all(IncidentAffected(incident_id=inc.id, added_at=opened, **r) for r in rows)
    return inc.id


@pytest.fixture
async def world(sessionmaker):
    async with sessionmaker.begin() as s:
        a, b = await _add(s, Customer(name="a", verified=True), Customer(name="b", verified=True))
        x, y = await _add(s, Service(name="x", customer_id=a.id), Service(name="y", customer_id=b.id))
        (sw,) = await _add(s, NetworkDevice(name="sw", kind="switch", address="127.0.0.1"))
        s1, s2 = await _add(s, Server(name="s1", address="127.0.0.1", parent_device_id=sw.id, service_id=x.id),
                            Server(name="s2", address="127.0.0.1", service_id=y.id))
        dm, m1, m1b, m2 = await _add(
            s, Monitor(name="sw-mgmt", kind="http", target="http://127.0.0.1/", device_id=sw.id),
            Monitor(name="s1-http", kind="http", target="http://127.0.0.1/", server_id=s1.id, service_id=x.id),
            Monitor(name="s1-icmp", kind="icmp", target="127.0.0.1", server_id=s1.id, service_id=x.id),
            Monitor(name="s2-http", kind="http", target="http://127.0.0.1/", server_id=s2.id, service_id=y.id))
        # The switch: DOWN 1h-3h, only DEGRADED 10h-11h, DOWN again from 20h and still down.
        s.add_all(Flip(monitor_id=dm.id, at=at, old_state="?", new_state=st) for at, st in (
            (h(0), "UP"), (h(1), "DOWN"), (h(3), "UP"), (h(10), "DEGRADED"), (h(11), "UP"), (h(20), "DOWN")))
        behind = [{"key": f"monitor:{dm.id}", "monitor_id": dm.id, "device_id": sw.id},
                  {"key": f"server:{s1.id}", "server_id": s1.id, "device_id": sw.id, "service_id": x.id,
                   "customer_id": a.id}]
        ids = {"down": await _incident(s, dm.id, h(1), h(3), rows=behind),
               "degraded": await _incident(s, dm.id, h(10), h(11), severity="important", rows=behind),
               "alert": await _incident(s, None, h(12), h(13), source="alertmanager", service=x.id, rows=[
                   {"key": f"service:{x.id}", "service_id": x.id, "customer_id": a.id}]),
               "open": await _incident(s, dm.id, h(20), None, rows=behind),
               "own_b": await _incident(s, m2.id, h(5), h(6), service=y.id, rows=[
                   {"key": f"monitor:{m2.id}", "monitor_id": m2.id, "server_id": s2.id, "service_id": y.id,
                    "customer_id": b.id}])}
    return {"sm": sessionmaker, "a": a.id, "b": b.id, "x": x.id, "y": y.id, "dm": dm.id, "m1": m1.id,
            "m1b": m1b.id, "m2": m2.id, "inc": ids}


async def test_a_down_switch_cuts_off_every_monitor_of_the_servers_behind_it_while_it_is_down(world):
    w = world
    async with w["sm"]() as s:
        cut = await cut_off_intervals(s, [w["dm"], w["m1"], w["m1b"], w["m2"]], h(0), h(24))
    # Not while only DEGRADED, not by an Alertmanager incident, never the switch itself nor a server elsewhere.
    assert cut == {w["m1"]: [(h(1), h(3)), (h(20), h(24))], w["m1b"]: [(h(1), h(3)), (h(20), h(24))]}


async def test_a_range_cuts_the_outage(world):
    async with world["sm"]() as s:
        assert await cut_off_intervals(s, [world["m1"]], h(2), h(21)) == {world["m1"]: [(h(2), h(3)),
                                                                                       (h(20), h(21))]}
        assert await cut_off_intervals(s, [world["m1"]], h(4), h(19)) == {}


async def test_a_service_lists_its_own_and_shared_incidents_to_its_customer_only(world):
    w, inc = world, world["inc"]
    alice = Principal(1, "alice", Role.CUSTOMER, w["a"])
    listed = await incidents_of_service(w["sm"], alice, w["x"])
    assert [i.id for i in listed] == [inc["open"], inc["alert"], inc["degraded"], inc["down"]]
    assert [kind_fa(i) for i in listed] == ["قطعی شبکه", "قطعی", "اختلال شبکه", "قطعی شبکه"]
    ranged = await incidents_of_service(w["sm"], alice, w["x"], start=h(2), end=h(11.5))
    assert [i.id for i in ranged] == [inc["degraded"], inc["down"]]
    bob = Principal(2, "bob", Role.CUSTOMER, w["b"])
    assert await incidents_of_service(w["sm"], bob, w["x"]) == []
    assert [i.id for i in await incidents_of_service(w["sm"], bob, w["y"])] == [inc["own_b"]]
    assert not any(hasattr(i, "title") for i in listed)


async def test_the_incident_api_gives_a_customer_persian_titles_without_internal_names(world, clock):
    """Rule 4 through the JSON API too: a customer behind the switch reads "قطعی شبکه", never the switch's or a
    monitor's name; staff read the internal title."""
    from aiohttp.test_utils import TestClient, TestServer
    from prometheus_client import CollectorRegistry

    from dashboards.web.app import build_app
    from dashboards.web.deps import WebDeps
    from monitor.accounts import create_user, issue_token

    w = world
    async with w["sm"].begin() as s:
        alice = await create_user(s, "alice", Role.CUSTOMER, customer_id=w["a"])
        nora = await create_user(s, "nora", Role.NOC)
        as_alice = {"Authorization": f"Bearer {await issue_token(s, alice.id, 't', clock.now())}"}
        as_nora = {"Authorization": f"Bearer {await issue_token(s, nora.id, 't', clock.now())}"}
    deps = WebDeps(sessionmaker=w["sm"], clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        mine = await (await client.get("/api/v1/incidents?all=true", headers=as_alice)).json()
        one = await (await client.get(f"/api/v1/incidents/{w['inc']['down']}", headers=as_alice)).json()
        staff = await (await client.get(f"/api/v1/incidents/{w['inc']['down']}", headers=as_nora)).json()
    titles = {i["id"]: i["title"] for i in mine}
    assert titles[w["inc"]["down"]] == "قطعی شبکه" and titles[w["inc"]["degraded"]] == "اختلال شبکه"
    assert titles[w["inc"]["alert"]] == "قطعی سرویس"
    assert w["inc"]["own_b"] not in titles  # another customer's incident is not listed at all
    assert one["title"] == "قطعی شبکه" and "zz-internal" not in str(mine) + str(one)
    assert [a["customer_id"] for a in one["affected"]] == [w["a"]]
    assert staff["title"] == "zz-internal"
