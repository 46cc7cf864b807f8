"""The NOC wall's content (pure): problems first, DOWN then DEGRADED, newest flip first; every other monitor
counted per group; a live flip shown before the inventory is re-read; SUSPECT counted; tiles linked to the
open incident of their monitor or service; and the search mode. Then the page over HTTP without JavaScript:
the query string filters, English for staff who chose it, customers refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.noc import NocQuery, NocRow
from dashboards.noc_wall import WallIncident, build_wall
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from probes.base import Outcome, ProbeResult
from tests.test_noc import _world

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _row(i, state="UP", dc="dc1", ago_min=60, name=None):
    return NocRow(i, name or f"m{i:03d}", "http", f"http://10.0.0.{i}/", f"svc{i}", "acme", dc, "sw1", state,
                  NOW - timedelta(minutes=ago_min))


class _Live:
    def __init__(self, state, outcome="up", reason="ok", message="", latency_s=0.01):
        self.state, self.result = state, ProbeResult(Outcome(outcome), reason, message, latency_s)


ROWS = [_row(1, "UP"), _row(2, "DOWN", ago_min=90), _row(3, "DEGRADED", dc="dc2", ago_min=1),
        _row(4, "DOWN", ago_min=5), _row(5, "UP", dc="dc2"), _row(6, "MAINTENANCE", dc="dc2")]


def _ids(tiles):
    return [t.id for t in tiles]


def test_problems_come_first_down_then_degraded_newest_flip_first_and_the_rest_is_counted_per_group():
    wall = build_wall(ROWS, {}, [], NocQuery(), NOW)
    assert _ids(wall.problems) == [4, 2, 3]
    assert wall.results is None
    assert [(g.key, g.total, g.up, g.problems, g.other) for g in wall.groups] == [
        ("dc1", 3, 1, 2, 0), ("dc2", 3, 1, 1, 1)]
    assert (wall.counts["DOWN"], wall.counts["DEGRADED"], wall.counts["UP"], wall.counts["MAINTENANCE"]) == (
        2, 1, 2, 1)
    assert wall.problems[0].age_s == 300


def test_a_live_flip_shows_before_the_inventory_is_read_again_with_the_feeds_time_and_reason():
    live = {1: _Live("DOWN", "down", "status_mismatch", "HTTP 503", 0.2), 5: _Live("UP", "down", "timeout")}
    wall = build_wall(ROWS, live, [], NocQuery(), NOW, changed_at={1: NOW - timedelta(seconds=7)})
    first = wall.problems[0]
    assert (first.id, first.state, first.age_s, first.reason, first.message) == (
        1, "DOWN", 7, "status_mismatch", "HTTP 503")
    assert wall.counts["SUSPECT"] == 1 and wall.counts["UP"] == 0  # 5 is UP but its latest check failed


def test_a_tile_links_the_open_incident_of_its_monitor_or_else_of_its_service():
    incidents = [WallIncident(9, "m002 is DOWN", "urgent", "triggered", NOW, 2, None),
                 WallIncident(8, "svc down", "important", "acknowledged", NOW, None, 44)]
    wall = build_wall(ROWS, {}, incidents, NocQuery(), NOW, service_ids={4: 44, 2: 44})
    links = {t.id: t.incident.id if t.incident else None for t in wall.problems}
    assert links == {2: 9, 4: 8, 3: None}
    assert wall.urgency == {"urgent": 1, "important": 1, "normal": 0}


def test_a_search_lists_every_matching_monitor_as_a_tile_worst_first_one_page_at_a_time():
    assert _ids(build_wall(ROWS, {}, [], NocQuery(q="DC2"), NOW).results) == [3, 6, 5]
    assert _ids(build_wall(ROWS, {}, [], NocQuery(state="UP"), NOW).results) == [1, 5]
    paged = build_wall(ROWS, {}, [], NocQuery(q="m0", per_page=4, page=2), NOW)
    assert (_ids(paged.results), paged.total, paged.pages) == ([1, 5], 6, 2)


def test_at_most_the_tile_limit_of_problems_is_drawn_and_the_rest_is_said():
    rows = [_row(i, "DOWN", ago_min=i) for i in range(1, 11)]
    wall = build_wall(rows, {}, [], NocQuery(), NOW, tile_limit=4)
    assert _ids(wall.problems) == [1, 2, 3, 4] and wall.more_problems == 6


async def test_the_wall_page_filters_by_query_string_without_javascript_and_speaks_english_on_request(
        sessionmaker, clock):
    ids = await _world(sessionmaker)
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        noc = {"Authorization": f"Bearer {ids['noc']}", "Accept": "text/html"}
        html = await (await client.get("/noc", headers=noc)).text()
        assert 'dir="rtl"' in html and 'id="problems"' in html
        assert f'<article class="tile s-DOWN big" data-id="{ids["m1"]}"' in html
        assert f'data-id="{ids["m2"]}"' not in html  # UNKNOWN is counted, not drawn
        assert 'data-state="DOWN" data-count="1"' in html and "<b class=\"n\">۱</b>" in html
        assert 'http-equiv="refresh"' not in html
        found = await (await client.get("/noc?q=sw-a1-ping", headers=noc)).text()
        assert f'data-id="{ids["m2"]}"' in found and f'data-id="{ids["m1"]}"' not in found
        assert 'value="sw-a1-ping"' in found
        fragment = await (await client.get("/noc/wall?state=DOWN", headers=noc)).text()
        assert "<html" not in fragment and f'data-id="{ids["m1"]}"' in fragment
        bad = await client.get("/noc?state=BROKEN", headers=noc)
        assert bad.status == 400
        english = await (await client.get("/noc", headers={**noc, "Cookie": "ngb_lang=en"})).text()
        assert 'dir="ltr"' in english and "Problems" in english and "مشکل‌ها" not in english
        cust = await client.get("/noc/wall", headers={"Authorization": f"Bearer {ids['customer']}"})
        assert cust.status == 403
