"""Login against a hostile user: redirect targets after login, and the throttle under parallel attempts."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from sqlalchemy import func, select

from dashboards.models import LoginAttempt
from dashboards.web.deps import DEPS
from dashboards.web.sessions import RateLimit
from monitor.accounts import PasswordVerifier, verify_password
from tests.test_web_login import _login, _site, site  # noqa: F401  (the fixture is used by name)

OFFSITE = ["//evil.example/", "/\\evil.example/", "\\\\evil.example", "/\t/evil.example/", "/%09/evil.example/",
           "/\n/evil.example", "/\r\n/evil.example", " //evil.example", "/%2F/evil.example", "/%2f%2fevil.example",
           "/%5Cevil.example", "/%5c/evil.example", "https://evil.example/", "http:evil.example",
           "javascript:alert(1)", "data:text/html,x", "evil.example", "///evil.example", "/\x00/evil.example",
           "/\u3000/evil.example", "//\t/evil.example", ""]


@pytest.mark.parametrize("next_path", OFFSITE)
async def test_login_never_redirects_off_the_site(site, next_path):  # noqa: F811
    client, _ = site
    resp = await _login(client, "nora", "nora-pass-1", next_path)
    assert resp.status == 303 and resp.headers["Location"] == "/noc"


@pytest.mark.parametrize("next_path", ["/portal", "/portal?x=1", "/portal/tickets/3?lang=en&q=a%2Fb",
                                       "/noc#top", "/status"])
async def test_login_follows_next_to_a_local_path(site, next_path):  # noqa: F811
    client, _ = site
    resp = await _login(client, "nora", "nora-pass-1", next_path)
    assert resp.headers["Location"] == next_path


async def test_the_login_form_drops_an_offsite_next_from_the_query(site):  # noqa: F811
    client, _ = site
    html = await (await client.get("/login?next=/%09/evil.example/")).text()
    assert 'name="next" value=""' in html


async def _login_form_token(client) -> str:
    form = await (await client.get("/login")).text()
    return re.search(r'name="csrf" value="([^"]+)"', form).group(1)


def _post_login(client, token, username, password):
    return client.post("/login", data={"username": username, "password": password, "csrf": token},
                       cookies={"ngb_login_csrf": token}, allow_redirects=False)


async def test_forty_parallel_attempts_make_at_most_five_password_checks(site):  # noqa: F811
    client, sm = site
    passwords = client.server.app[DEPS].passwords
    token = await _login_form_token(client)
    answers = await asyncio.gather(*(_post_login(client, token, "alice", f"guess-{i}") for i in range(40)))
    statuses = [a.status for a in answers]
    assert set(statuses) == {401, 429} and statuses.count(401) == RateLimit().per_username
    assert passwords.checks == RateLimit().per_username
    async with sm() as s:
        recorded = (await s.execute(select(func.count()).select_from(LoginAttempt))).scalar_one()
    assert recorded == RateLimit().per_username       # every check was counted before it ran, and only those


async def test_a_right_password_still_logs_in_after_parallel_attempts_of_other_users(site):  # noqa: F811
    client, _ = site
    token = await _login_form_token(client)
    answers = await asyncio.gather(_post_login(client, token, "alice", "alice-pass-1"),
                                   *(_post_login(client, token, f"nobody{i}", "x") for i in range(4)))
    assert [a.status for a in answers] == [303, 401, 401, 401, 401]


async def test_healthz_is_answered_while_password_checks_are_running(db, clock):
    """Each check waits in its thread until /healthz has answered: on the event loop it would hold everything."""
    healthz_answered, started, saw_healthz = threading.Event(), threading.Event(), []

    def gated_verify(stored, password):
        started.set()
        # Bounded, so a check on the loop (which keeps /healthz from ever answering) fails instead of hanging.
        saw_healthz.append(healthz_answered.wait(timeout=5))
        return verify_password(stored, password)

    async with await _site(db, clock, cookie_secure=False) as client:
        client.server.app[DEPS].passwords = PasswordVerifier(gated_verify)
        token = await _login_form_token(client)
        logins = [asyncio.ensure_future(_post_login(client, token, "nora", "nora-pass-1")) for _ in range(3)]
        await asyncio.to_thread(started.wait, 5)
        health = await client.get("/healthz")
        still_checking = [not t.done() for t in logins]
        healthz_answered.set()
        answers = await asyncio.gather(*logins)
    assert health.status == 200 and all(still_checking) and saw_healthz == [True, True, True]
    assert all(a.status == 303 for a in answers)


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_login_form_is_a_413_in_the_error_shape_and_checks_no_password(site, chunked):  # noqa: F811
    """A form body over the app's limit (1 MiB), with a Content-Length or sent chunked without one, is refused
    before any password is checked."""
    client, _ = site
    passwords = client.server.app[DEPS].passwords
    before = passwords.checks
    token = await _login_form_token(client)
    body = f"username=alice&csrf={token}&password=" + "p" * (2 * 1024 * 1024)

    async def pieces():
        data = body.encode()
        for i in range(0, len(data), 256 * 1024):
            yield data[i:i + 256 * 1024]

    resp = await client.post("/login", data=pieces() if chunked else body.encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status == 413
    answer = await resp.json()
    assert answer["error"] == "payload too large" and answer["field"] == "<body>", answer
    assert passwords.checks == before
