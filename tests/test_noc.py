"""The NOC screen: search, filters, grouping and pagination on the server; live state changes over SSE."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.noc import NocIndex, NocQuery, NocRow, StateFeed, query_rows
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import Role, create_user, issue_token
from monitor.models import Customer, Datacenter, Monitor, MonitorState, NetworkDevice, Server, Service, State

T = datetime(2026, 11, 26, tzinfo=UTC)


def _row(i, state="UP", dc="dc1", sw="sw1", cust="acme", name=None):
    return NocRow(i, name or f"m{i:03d}", "http", f"http://10.0.0.{i}/", "web", cust, dc, sw, state, T)


ROWS = [_row(1, "UP"), _row(2, "DOWN"), _row(3, "UP", dc="dc2", sw="sw9", cust="beta"),
        _row(4, "DEGRADED", cust="beta"), _row(5, "UP", name="db-primary")]


@pytest.mark.parametrize("query,expected_ids", [
    (NocQuery(), [2, 4, 5, 1, 3]),                                   # by datacenter, worst first, then name
    (NocQuery(group="customer"), [2, 5, 1, 4, 3]),
    (NocQuery(group="switch"), [2, 4, 5, 1, 3]),
    (NocQuery(group="none"), [2, 4, 5, 1, 3]),
    (NocQuery(state="UP"), [5, 1, 3]),
    (NocQuery(q="BETA"), [4, 3]),
    (NocQuery(q="db-"), [5]),
    (NocQuery(q="sw9"), [3]),
    (NocQuery(per_page=2, page=2), [5, 1]),
    (NocQuery(per_page=2, page=99), [3]),                            # past the end: the last page
])
def test_the_monitor_list_is_filtered_sorted_and_paginated_on_the_server(query, expected_ids):
    page = query_rows(ROWS, query)
    assert [m["id"] for g in page.groups for m in g["items"]] == expected_ids


def test_counts_cover_every_state_of_the_search_not_only_the_page():
    page = query_rows(ROWS, NocQuery(per_page=1, state="UP"))
    assert page.total == 3 and page.pages == 3
    assert page.counts["UP"] == 3 and page.counts["DOWN"] == 1 and page.counts["MAINTENANCE"] == 0


async def _world(sm):
    async with sm.begin() as s:
        c = Customer(name="acme", verified=True)
        dc = Datacenter(name="afranet", location="tehran")
        s.add_all([c, dc])
        await s.flush()
        sw = NetworkDevice(name="sw-a1", kind="switch", datacenter_id=dc.id)
        svc = Service(name="acme-web", customer_id=c.id)
        s.add_all([sw, svc])
        await s.flush()
        srv = Server(name="web1", address="10.0.0.1", datacenter_id=dc.id, parent_device_id=sw.id,
                     service_id=svc.id)
        s.add(srv)
        await s.flush()
        m1 = Monitor(name="acme-http", kind="http", target="http://10.0.0.1/", service_id=svc.id, server_id=srv.id)
        m2 = Monitor(name="sw-a1-ping", kind="icmp", target="10.0.9.1", device_id=sw.id)
        s.add_all([m1, m2])
        await s.flush()
        s.add(MonitorState(monitor_id=m1.id, state="DOWN", since=T))
        u = await create_user(s, "nora", Role.NOC)
        c_user = await create_user(s, "alice", Role.CUSTOMER, customer_id=c.id)
        return {"m1": m1.id, "m2": m2.id, "noc": await issue_token(s, u.id, "t", T),
                "customer": await issue_token(s, c_user.id, "t", T)}


async def test_the_index_knows_datacenter_switch_and_customer_of_each_monitor(sessionmaker, clock):
    ids = await _world(sessionmaker)
    rows = {r.id: r for r in await NocIndex(sessionmaker, clock).rows()}
    assert (rows[ids["m1"]].datacenter, rows[ids["m1"]].switch, rows[ids["m1"]].customer,
            rows[ids["m1"]].state) == ("afranet", "sw-a1", "acme", "DOWN")
    assert (rows[ids["m2"]].datacenter, rows[ids["m2"]].customer, rows[ids["m2"]].state) == (
        "afranet", "", "UNKNOWN")


class _Item:
    def __init__(self, state):
        self.state = state


async def test_the_index_shows_the_runners_live_state_over_the_stored_one(sessionmaker, clock):
    ids = await _world(sessionmaker)
    latest = {ids["m1"]: _Item(State.UP)}
    rows = {r.id: r for r in await NocIndex(sessionmaker, clock, lambda: latest).rows()}
    assert rows[ids["m1"]].state == "UP"


async def test_the_feed_announces_each_change_once_in_order():
    latest = {1: _Item(State.UP), 2: _Item(State.UP)}
    feed = StateFeed(lambda: latest)
    feed.poke()
    first = await feed.changes_after(0, 0.01)
    latest[2] = _Item(State.DOWN)
    feed.poke()
    feed.poke()
    later = await feed.changes_after(first[-1]["seq"], 0.01)
    assert [(c["id"], c["state"]) for c in first] == [(1, "UP"), (2, "UP")]
    assert [(c["id"], c["state"]) for c in later] == [(2, "DOWN")]
    assert await feed.changes_after(later[-1]["seq"], 0.01) == []


async def test_a_burst_of_flips_is_read_once_and_still_announced():
    latest = {1: _Item(State.UP), 2: _Item(State.UP)}
    reads = []

    def read():
        reads.append(1)
        return latest

    feed = StateFeed(read, coalesce_s=0.01)
    for _ in range(100):
        feed.nudge()
    changes = await feed.changes_after(0, 5)
    assert [(c["id"], c["state"]) for c in changes] == [(1, "UP"), (2, "UP")]
    assert len(reads) == 1
    latest[2] = _Item(State.DOWN)
    feed.nudge()
    later = await feed.changes_after(changes[-1]["seq"], 5)
    assert [(c["id"], c["state"]) for c in later] == [(2, "DOWN")]


async def test_the_screen_receives_a_state_change_over_server_sent_events(sessionmaker, clock):
    ids = await _world(sessionmaker)
    latest = {}
    runner = type("R", (), {"latest": latest})()
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry(), services={"runner": runner})
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        resp = await client.get("/api/v1/noc/events", headers={"Authorization": f"Bearer {ids['noc']}"})
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5) == b": connected\n\n"
        latest[ids["m1"]] = _Item(State.DOWN)
        deps.services["noc_feed"].poke()
        event = (await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)).decode()
        assert "event: state" in event and f'"id":{ids["m1"]},"state":"DOWN"' in event
        resp.close()


async def test_the_monitor_api_pages_and_refuses_customers_and_bad_filters(sessionmaker, clock):
    ids = await _world(sessionmaker)
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        noc = {"Authorization": f"Bearer {ids['noc']}"}
        body = await (await client.get("/api/v1/noc/monitors?group=switch&per_page=1", headers=noc)).json()
        assert body["total"] == 2 and body["pages"] == 2 and body["counts"]["DOWN"] == 1
        bad = await client.get("/api/v1/noc/monitors?state=BROKEN", headers=noc)
        assert bad.status == 400 and (await bad.json())["field"] == "state"
        cust = await client.get("/api/v1/noc/monitors", headers={"Authorization": f"Bearer {ids['customer']}"})
        assert cust.status == 403
        html = await (await client.get("/noc", headers=noc)).text()
        assert '<script src="/static/noc.js"' in html and "disabled-channels" not in html
        assert (await client.get("/static/noc.js")).status == 200


async def test_the_ticket_queue_lists_unanswered_tickets_by_first_response_due(sessionmaker, clock):
    from datetime import timedelta

    from tickets.models import Ticket

    ids = await _world(sessionmaker)
    now = clock.now()
    async with sessionmaker.begin() as s:
        cid = (await s.get(Monitor, ids["m1"])).service_id
        cust = (await s.get(Service, cid)).customer_id
        for subject, due_h, answered in (("later", 2, False), ("overdue", -1, False), ("answered", -5, True)):
            s.add(Ticket(customer_id=cust, department="technical", subject=subject, opened_at=now,
                         sla_band="office", first_response_due=now + timedelta(hours=due_h),
                         first_response_at=now if answered else None))
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        rows = await (await client.get("/api/v1/noc/tickets",
                                       headers={"Authorization": f"Bearer {ids['noc']}"})).json()
    assert [(r["subject"], r["overdue"]) for r in rows] == [("overdue", True), ("later", False),
                                                            ("answered", False)]
    # RFC 3339 like every timestamp of the API; the screen shows the short label.
    assert [datetime.fromisoformat(r["first_response_due"]) for r in rows][0] == now - timedelta(hours=1)
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", rows[0]["first_response_due_label"])


async def test_an_open_event_stream_does_not_hold_up_shutdown(sessionmaker, clock):
    from aiohttp import ClientSession, web

    ids = await _world(sessionmaker)
    app = build_app(WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry()))
    runner = web.AppRunner(app, shutdown_timeout=60.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with ClientSession() as http:
        resp = await http.get(f"http://127.0.0.1:{port}/api/v1/noc/events",
                              headers={"Authorization": f"Bearer {ids['noc']}"})
        assert await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5) == b": connected\n\n"
        # Without close_streams the server would wait shutdown_timeout (60 s) for the stream to end.
        await asyncio.wait_for(runner.cleanup(), 10)
        resp.close()


async def test_the_noc_screen_shows_a_channel_disabled_by_a_permanent_failure(sessionmaker, clock):
    from incidents.models import NotificationChannel

    ids = await _world(sessionmaker)
    async with sessionmaker.begin() as s:
        s.add_all([NotificationChannel(name="noc-sms", kind="kavenegar", address="0912", audience="noc",
                                       enabled=False, disabled_reason="HTTP 401: kavenegar: <bad key>",
                                       disabled_at=clock.now()),
                   NotificationChannel(name="noc-pd", kind="pagerduty", address="k", audience="noc")])
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        html = await (await client.get("/noc", headers={"Authorization": f"Bearer {ids['noc']}"})).text()
    section = html.split('id="disabled-channels"', 1)[1].split("</section>", 1)[0]
    assert 'data-count="1"' in section and "(۱)" in section and "<b>noc-sms</b> (kavenegar)" in section
    assert "HTTP 401: kavenegar: &lt;bad key&gt;" in section and "noc-pd" not in section
