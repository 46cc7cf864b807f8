"""The IMAP and POP3 probes against Debian's dovecot run by the test (STARTTLS/STLS, implicit TLS, login, and
a second instance without TLS) and against faults: a closed port, a refusing greeting, a server that never
answers, a wrong password, an expiring certificate."""

from __future__ import annotations

import json

import pytest

from probes import PROBERS, SPECS, Outcome
from tests.probes.mail_servers import (
    PASSWORD,
    USER,
    closed_port,
    port_of,
    start_dovecot,
    start_greeter,
    stop_dovecot,
)

KINDS = ["imap", "pop3"]


@pytest.fixture(scope="module")
def dovecot_tls(ca):
    server, tmp = start_dovecot(ca)
    yield server
    stop_dovecot(server)
    tmp.cleanup()


@pytest.fixture(scope="module")
def dovecot_plain():
    server, tmp = start_dovecot(None)
    yield server
    stop_dovecot(server)
    tmp.cleanup()


def spec(kind: str, port: int, host: str = "127.0.0.1", **kw):
    return SPECS[kind](target=f"{host}:{port}", timeout_s=kw.pop("timeout_s", 5.0), **kw)


def implicit_port(server, kind: str) -> int:
    return server.ports[kind + "s"]


@pytest.mark.parametrize("kind", KINDS)
async def test_starttls_and_login_against_dovecot_is_up(dovecot_tls, ctx, kind):
    result = await PROBERS[kind](spec(kind, dovecot_tls.ports[kind], username=USER, password=PASSWORD), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    assert {"resolve", "connect", "banner", "starttls", "tls", "login"} <= set(result.phases)
    assert "Dovecot" in result.details["banner"] and 89 < result.details["cert_days_left"] < 91
    assert "goodbye" not in result.details  # LOGOUT/QUIT was answered
    json.dumps(result.details)


@pytest.mark.parametrize("kind", KINDS)
async def test_implicit_tls_and_login_against_dovecot_is_up(dovecot_tls, ctx, kind):
    result = await PROBERS[kind](spec(kind, implicit_port(dovecot_tls, kind), tls="implicit", username=USER,
                                      password=PASSWORD), ctx)
    assert result.ok, result.message
    assert "starttls" not in result.phases and {"tls", "banner", "login"} <= set(result.phases)


# dovecot delays a client address for seconds after a failed login (its auth penalty), so each protocol's
# wrong password comes from its own loopback address.
@pytest.mark.parametrize(("kind", "host"), [("imap", "127.0.0.1"), ("pop3", "[::1]")])
async def test_a_wrong_password_is_down_with_the_servers_answer(dovecot_tls, ctx, kind, host):
    result = await PROBERS[kind](spec(kind, dovecot_tls.ports[kind], host, username=USER, password="guess",
                                      server_name="localhost"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_failed"), result.message
    assert "Authentication failed" in result.message
    assert "guess" not in result.message + json.dumps(result.details)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_certificate_inside_the_warning_window_is_degraded(dovecot_tls, ctx, kind):
    result = await PROBERS[kind](spec(kind, dovecot_tls.ports[kind], cert_expiry_warn_days=120), ctx)
    assert (result.outcome, result.reason) == (Outcome.DEGRADED, "cert_expiring"), result.message


@pytest.mark.parametrize("kind", KINDS)
async def test_a_certificate_for_another_name_is_a_tls_error(dovecot_tls, ctx, kind):
    result = await PROBERS[kind](spec(kind, dovecot_tls.ports[kind], server_name="mail.other.example"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_error"), result.message


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_without_tls_is_up_in_plain_and_down_when_starttls_is_expected(dovecot_plain, ctx, kind):
    port = dovecot_plain.ports[kind]
    plain = await PROBERS[kind](spec(kind, port, tls="none"), ctx)
    assert plain.ok, plain.message
    assert set(plain.phases) == {"resolve", "connect", "banner"}
    result = await PROBERS[kind](spec(kind, port), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "starttls_unavailable"), result.message


@pytest.mark.parametrize("kind", KINDS)
async def test_the_banner_can_be_required_to_match(dovecot_plain, ctx, kind):
    port = dovecot_plain.ports[kind]
    assert (await PROBERS[kind](spec(kind, port, tls="none", expect_banner="Dovecot"), ctx)).ok
    result = await PROBERS[kind](spec(kind, port, tls="none", expect_banner="Cyrus"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "banner_mismatch"), result.message


@pytest.mark.parametrize("kind", KINDS)
async def test_a_closed_port_is_refused(ctx, kind):
    result = await PROBERS[kind](spec(kind, closed_port()), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "refused"), result.message


@pytest.mark.parametrize(("kind", "greeting", "text"), [
    ("imap", b"* BYE Too many connections from your address\r\n", "Too many connections"),
    ("pop3", b"-ERR [SYS/TEMP] maintenance, come back later\r\n", "maintenance"),
])
async def test_a_refusing_greeting_is_down_with_the_servers_text(ctx, kind, greeting, text):
    server = await start_greeter(greeting)
    try:
        result = await PROBERS[kind](spec(kind, port_of(server)), ctx)
    finally:
        server.close()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "banner_rejected"), result.message
    assert text in result.message


@pytest.mark.parametrize(("kind", "greeting"), [("imap", b"+OK POP3 ready\r\n"), ("pop3", b"* OK IMAP4\r\n")])
async def test_the_other_protocol_is_a_protocol_error(ctx, kind, greeting):
    server = await start_greeter(greeting)
    try:
        result = await PROBERS[kind](spec(kind, port_of(server)), ctx)
    finally:
        server.close()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "protocol_error"), result.message


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_that_never_answers_times_out(ctx, kind):
    server = await start_greeter(None)
    try:
        result = await PROBERS[kind](spec(kind, port_of(server), timeout_s=0.5), ctx)
    finally:
        server.close()
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout"), result.message
    assert "no banner" in result.message


@pytest.mark.parametrize(("kind", "port", "mode"), [("imap", 993, "implicit"), ("imap", 143, "starttls"),
                                                    ("pop3", 995, "implicit"), ("pop3", 110, "starttls")])
def test_tls_defaults_by_port(kind, port, mode):
    assert SPECS[kind](target=f"mail.example.com:{port}").tls_mode == mode
