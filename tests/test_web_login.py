"""Web login: sessions, cookies, CSRF, logout and the login rate limit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from dashboards.models import WebSession
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.sessions import Attempt, RateLimit, login_throttle, session_digest
from monitor.accounts import Role, create_user
from monitor.models import Customer

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
LIMIT = RateLimit(window=timedelta(minutes=15), per_username=3, per_ip=5)


def _fails(n, username="u", ip="1.1.1.1", start=T0, step=timedelta(minutes=1), success=False):
    return [Attempt(username, ip, start + i * step, success) for i in range(n)]


@pytest.mark.parametrize("attempts,username,ip,now,blocked", [
    ([], "u", "1.1.1.1", T0, False),
    (_fails(2), "u", "1.1.1.1", T0 + timedelta(minutes=3), False),
    (_fails(3), "u", "1.1.1.1", T0 + timedelta(minutes=3), True),
    (_fails(3), "u", "9.9.9.9", T0 + timedelta(minutes=3), True),          # per username, from anywhere
    (_fails(3), "other", "9.9.9.9", T0 + timedelta(minutes=3), False),
    (_fails(3), "u", "1.1.1.1", T0 + timedelta(minutes=16), False),        # oldest failure left the window
    (_fails(3) + _fails(1, start=T0 + timedelta(minutes=4), success=True), "u", "2.2.2.2",
     T0 + timedelta(minutes=5), False),                                    # a success resets the username
    ([Attempt(f"user{i}", "1.1.1.1", T0 + timedelta(seconds=i), False) for i in range(5)], "new", "1.1.1.1",
     T0 + timedelta(minutes=1), True),                                     # one address, many usernames
    ([Attempt(f"user{i}", "1.1.1.1", T0 + timedelta(seconds=i), False) for i in range(5)], "new", "2.2.2.2",
     T0 + timedelta(minutes=1), False),
])
def test_login_throttle_counts_recent_failures_per_username_and_per_address(attempts, username, ip, now,
                                                                             blocked):
    assert (login_throttle(attempts, username, ip, now, LIMIT) > 0) is blocked


def test_login_throttle_says_when_the_oldest_counted_failure_leaves_the_window():
    wait = login_throttle(_fails(3), "u", "1.1.1.1", T0 + timedelta(minutes=3), LIMIT)
    assert wait == 12 * 60 + 1


async def _site(db, clock, cookie_secure):
    async with db.sessionmaker.begin() as s:
        c = Customer(name="cust-a", display_name="A", verified=True)
        s.add(c)
        await s.flush()
        await create_user(s, "alice", Role.CUSTOMER, customer_id=c.id, password="alice-pass-1")
        await create_user(s, "nora", Role.NOC, password="nora-pass-1")
        off = await create_user(s, "gone", Role.NOC, password="gone-pass-1")
        off.active = False
    app = build_app(WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(),
                            cookie_secure=cookie_secure))
    return TestClient(TestServer(app, host="127.0.0.1"))


@pytest.fixture
async def site(db, clock):
    # Plain HTTP on loopback: the client would not send a Secure cookie back, so Secure is off here and
    # checked on its own below.
    async with await _site(db, clock, cookie_secure=False) as client:
        yield client, db.sessionmaker


async def _login(client, username, password, next_path=""):
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    # Passed explicitly: the client keeps no Secure cookie over plain HTTP.
    return await client.post("/login", data={"username": username, "password": password, "csrf": token,
                                             "next": next_path}, cookies={"ngb_login_csrf": token},
                             allow_redirects=False)


def _session_csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


async def test_the_session_cookie_is_secure_httponly_and_samesite_lax(db, clock):
    async with await _site(db, clock, cookie_secure=True) as client:
        resp = await _login(client, "alice", "alice-pass-1")
        cookie = resp.cookies["ngb_session"]
        assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"


async def test_a_customer_logs_in_and_only_a_digest_of_the_session_id_is_stored(site):
    client, sm = site
    resp = await _login(client, "alice", "alice-pass-1")
    assert resp.status == 303 and resp.headers["Location"] == "/portal"
    cookie = resp.cookies["ngb_session"]
    me = await (await client.get("/api/v1/me", cookies={"ngb_session": cookie.value})).json()
    assert me["username"] == "alice" and me["role"] == "customer"
    async with sm() as s:
        stored = (await s.execute(select(WebSession.digest))).scalars().all()
    assert stored == [session_digest(cookie.value)] and cookie.value not in stored


async def test_staff_land_on_the_noc_screen_and_next_is_only_followed_to_local_paths(site):
    client, _ = site
    assert (await _login(client, "nora", "nora-pass-1")).headers["Location"] == "/noc"
    assert (await _login(client, "nora", "nora-pass-1", "/portal?x=1")).headers["Location"] == "/portal?x=1"
    assert (await _login(client, "nora", "nora-pass-1", "//evil.example/")).headers["Location"] == "/noc"


@pytest.mark.parametrize("username,password", [("alice", "wrong"), ("nobody", "x"), ("gone", "gone-pass-1")])
async def test_a_wrong_password_unknown_user_or_inactive_account_is_refused_alike(site, username, password):
    client, _ = site
    resp = await _login(client, username, password)
    assert resp.status == 401 and "ngb_session" not in resp.cookies
    assert "نام کاربری یا گذرواژه نادرست است" in await resp.text()


async def test_the_login_form_needs_its_own_csrf_token(site):
    client, _ = site
    html = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    resp = await client.post("/login", data={"username": "alice", "password": "alice-pass-1", "csrf": "forged"},
                             cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status == 403 and "ngb_session" not in resp.cookies


async def test_logins_are_throttled_after_repeated_failures(site):
    client, _ = site
    for _ in range(5):
        assert (await _login(client, "alice", "wrong")).status == 401
    resp = await _login(client, "alice", "alice-pass-1")
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0


async def test_unsafe_requests_with_the_session_cookie_need_the_session_csrf_token(site):
    client, _ = site
    await _login(client, "nora", "nora-pass-1")
    refused = await client.post("/logout", data={"csrf": "forged"}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get("/api/v1/me")).status == 200


async def test_logout_ends_the_session_on_the_server(site):
    client, sm = site
    resp = await _login(client, "nora", "nora-pass-1")
    session_id = resp.cookies["ngb_session"].value
    html = await (await client.get("/login")).text()
    assert "csrf-token" not in html  # the login page is public and carries no session token
    page = await (await client.get("/api/v1/me")).json()
    assert page["username"] == "nora"
    csrf = await _csrf_of_session(sm, session_id)
    out = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    assert (await client.get("/api/v1/me", cookies={"ngb_session": session_id})).status == 401
    async with sm() as s:
        assert (await s.execute(select(WebSession))).first() is None


async def _csrf_of_session(sm, session_id):
    async with sm() as s:
        return (await s.execute(select(WebSession.csrf_token)
                                .where(WebSession.digest == session_digest(session_id)))).scalar_one()


async def test_an_expired_session_is_not_accepted(site, clock):
    client, _ = site
    resp = await _login(client, "nora", "nora-pass-1")
    clock.advance(hours=13)
    assert (await client.get("/api/v1/me", cookies={"ngb_session": resp.cookies["ngb_session"].value})).status == 401


async def test_a_browser_without_a_session_is_sent_to_the_login_form(site):
    client, _ = site
    resp = await client.get("/api/v1/me", headers={"Accept": "text/html"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/api/v1/me"


def test_support_channels_are_read_from_settings_and_a_malformed_entry_is_refused():
    from dashboards.web.deps import parse_channels
    from monitor.errors import SettingsError
    from monitor.settings import load_settings

    settings = load_settings({"NEGAHBAN_SUPPORT_CHANNELS": "تلفن اضطراری: 021-0000; تلگرام: @ngb"})
    assert parse_channels(settings.support_channels) == [("تلفن اضطراری", "021-0000"), ("تلگرام", "@ngb")]
    with pytest.raises(SettingsError, match="SUPPORT_CHANNELS"):
        load_settings({"NEGAHBAN_SUPPORT_CHANNELS": "no label here"})


async def test_the_root_sends_each_caller_to_their_own_start_page(site):
    client, _ = site
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"
    await _login(client, "alice", "alice-pass-1")
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/portal"


@pytest.mark.parametrize("role, home", [(Role.CUSTOMER, "/portal"), (Role.TECHNICIAN, "/desk"),
                                        (Role.FINANCE, "/ledger"), (Role.NOC, "/noc"), (Role.ADMIN, "/noc")])
def test_each_role_lands_on_the_first_page_of_its_work(role, home):
    from dashboards.web.login import home_for
    from monitor.accounts import Principal

    assert home_for(Principal(1, "x", role, 7 if role is Role.CUSTOMER else None)) == home
