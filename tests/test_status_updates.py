"""Public updates on incidents: NOC staff post Persian text with a status word; the rest is refused whole."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from incidents.models import Severity, Source
from incidents.statuspage.models import PublicUpdate
from incidents.statuspage.updates import parse_status
from incidents.store import open_incident
from monitor.accounts import Role, create_user, issue_token


@pytest.fixture
async def api(sessionmaker, clock):
    tokens = {}
    async with sessionmaker() as s, s.begin():
        for name, role in (("nora", Role.NOC), ("tech", Role.TECHNICIAN), ("fin", Role.FINANCE)):
            u = await create_user(s, name, role)
            tokens[name] = {"Authorization": f"Bearer {await issue_token(s, u.id, 't', clock.now())}"}
        incident = await open_incident(s, key="k1", source=Source.MONITOR, severity=Severity.URGENT,
                                       title="kavir-portal-flaky down", opened_at=clock.now(), now=clock.now())
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry())
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        yield client, tokens, incident.id


async def _count(sessionmaker) -> int:
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(PublicUpdate))).scalar_one()


async def test_the_noc_posts_a_persian_update_and_it_is_listed_newest_first(api, clock):
    client, tokens, iid = api
    first = await client.post(f"/api/v1/incidents/{iid}/updates", headers=tokens["nora"],
                              json={"text": "مشکل را بررسی می‌کنیم.", "status": "در حال بررسی"})
    assert first.status == 201 and (await first.json())["status"] == "investigating"
    clock.advance(seconds=60)
    second = await client.post(f"/api/v1/incidents/{iid}/updates", headers=tokens["nora"],
                               json={"text": "علت پیدا شد: خرابی دیسک سرور.", "status": "identified"})
    assert (await second.json())["status_fa"] == "شناسایی شد"
    listed = await (await client.get(f"/api/v1/incidents/{iid}/updates", headers=tokens["tech"])).json()
    assert [u["status"] for u in listed] == ["identified", "investigating"]
    assert listed[1]["text"] == "مشکل را بررسی می‌کنیم."


@pytest.mark.parametrize(("body", "field"), [
    ({"text": "we are looking into it"}, "text"),                    # English
    ({"text": "moshkel ro barresi mikonim"}, "text"),                 # Finglish
    ({"text": "نعمل على حل هذه المشكلة في أقرب وقت"}, "text"),         # Arabic
    ({"text": "   "}, "text"),                                        # empty once trimmed
    ({"text": "س" * 5001}, "text"),                                   # oversized
    ({"text": "در حال بررسی هستیم", "status": "fixed"}, "status"),    # not a status word
    ({"text": "در حال بررسی هستیم", "status": 3}, "status"),          # not a string
])
async def test_a_bad_update_is_refused_naming_the_field_and_nothing_is_stored(api, sessionmaker, body, field):
    client, tokens, iid = api
    resp = await client.post(f"/api/v1/incidents/{iid}/updates", headers=tokens["nora"], json=body)
    assert resp.status == 400 and (await resp.json())["field"] == field
    assert await _count(sessionmaker) == 0


async def test_only_noc_and_admin_may_publish_and_a_missing_incident_is_404(api, sessionmaker):
    client, tokens, iid = api
    body = {"text": "در حال بررسی هستیم"}
    assert (await client.post(f"/api/v1/incidents/{iid}/updates", headers=tokens["tech"], json=body)).status == 403
    assert (await client.post(f"/api/v1/incidents/{iid}/updates", json=body)).status == 401
    assert (await client.post(f"/api/v1/incidents/{iid + 99}/updates", headers=tokens["nora"],
                              json=body)).status == 404
    assert await _count(sessionmaker) == 0


@pytest.mark.parametrize(("word", "key"), [("در حال پایش", "monitoring"), ("برطرف شد", "resolved"),
                                           ("resolved", "resolved"), ("", None), (None, None)])
def test_status_words_are_read_in_persian_or_by_key(word, key):
    found = parse_status(word)
    assert (found.value if found else None) == key
