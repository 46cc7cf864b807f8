"""The SMTP probe against aiosmtpd on loopback (plain, STARTTLS, SMTPS, AUTH) and against faults: a closed
port, a 554/421 banner, a server that never answers, expired and expiring certificates, a wrong password."""

from __future__ import annotations

import json

import pytest

from probes import PROBERS, Outcome, SmtpSpec, probe_smtp
from tests.probes.conftest import leaf_context
from tests.probes.mail_servers import (
    PASSWORD,
    USER,
    SmtpSeen,
    closed_port,
    port_of,
    start_greeter,
    start_smtp,
)


@pytest.fixture
async def smtp(ca):
    """Start aiosmtpd servers on demand: ``await start(days_left=..., ...)`` -> (port, SmtpSeen)."""
    servers = []

    async def start(*, starttls_days: float | None = None, implicit_days: float | None = None,
                    auth: bool = False, names: tuple[str, ...] = ("127.0.0.1",)):
        seen = SmtpSeen()
        tls = lambda days: None if days is None else leaf_context(ca, *names, days_left=days)  # noqa: E731
        server = await start_smtp(seen, starttls=tls(starttls_days), implicit=tls(implicit_days), auth=auth)
        servers.append(server)
        return port_of(server), seen

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def greeter():
    servers = []

    async def start(greeting: bytes | None, answers: dict[bytes, bytes] | None = None) -> int:
        server = await start_greeter(greeting, answers)
        servers.append(server)
        return port_of(server)

    yield start
    for server in servers:
        server.close()


def spec(port: int, **kw) -> SmtpSpec:
    return SmtpSpec(target=f"127.0.0.1:{port}", timeout_s=kw.pop("timeout_s", 5.0), **kw)


async def test_a_plain_server_is_up_with_banner_and_ehlo_phases_and_a_polite_quit(smtp, ctx):
    port, seen = await smtp()
    result = await PROBERS["smtp"](spec(port, tls="none", ehlo="probe.negahban.test"), ctx)
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
    assert set(result.phases) == {"resolve", "connect", "banner", "ehlo"}
    assert "NegahbanTestMTA" in result.details["banner"]
    assert seen.ehlo == ["probe.negahban.test"] and seen.quits == 1
    json.dumps(result.details)


async def test_starttls_is_judged_and_ehlo_is_said_again_after_it(smtp, ctx):
    port, seen = await smtp(starttls_days=365)
    result = await probe_smtp(spec(port), ctx)
    assert result.ok, result.message
    assert {"banner", "ehlo", "starttls", "tls"} <= set(result.phases)
    assert result.details["cert_days_left"] > 300 and "STARTTLS" in result.message
    assert len(seen.ehlo) == 2 and seen.quits == 1


async def test_a_server_without_starttls_is_down_when_starttls_is_expected(smtp, ctx):
    port, _ = await smtp()
    result = await probe_smtp(spec(port), ctx)  # tls defaults to starttls on port != 465
    assert (result.outcome, result.reason) == (Outcome.DOWN, "starttls_unavailable"), result.message


@pytest.mark.parametrize(("mode", "days_left", "names", "verify", "outcome", "reason"), [
    ("starttls", 3, (), True, Outcome.DEGRADED, "cert_expiring"),
    ("starttls", -1, (), True, Outcome.DOWN, "cert_expired"),
    ("starttls", -1, (), False, Outcome.DOWN, "cert_expired"),
    ("starttls", 365, ("other.example",), True, Outcome.DOWN, "tls_error"),
    ("starttls", 365, ("other.example",), False, Outcome.UP, "ok"),
    ("implicit", 365, (), True, Outcome.UP, "ok"),
    ("implicit", 3, (), True, Outcome.DEGRADED, "cert_expiring"),
    ("implicit", -1, (), True, Outcome.DOWN, "cert_expired"),
])
async def test_the_certificate_decides_the_outcome(smtp, ctx, mode, days_left, names, verify, outcome, reason):
    key = "starttls_days" if mode == "starttls" else "implicit_days"
    port, _ = await smtp(names=names or ("127.0.0.1",), **{key: days_left})
    result = await probe_smtp(spec(port, tls=mode, tls_verify=verify, cert_expiry_warn_days=14), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message
    assert ("starttls" in result.phases) == (mode == "starttls")


@pytest.mark.parametrize("mechanism", ["auto", "PLAIN", "LOGIN"])
async def test_auth_with_the_right_password_is_up(smtp, ctx, mechanism):
    port, seen = await smtp(starttls_days=365, auth=True)
    result = await probe_smtp(spec(port, username=USER, password=PASSWORD, auth_mechanism=mechanism), ctx)
    assert result.ok, result.message
    assert "auth" in result.phases and "AUTH" in result.message
    assert seen.logins == [("PLAIN" if mechanism == "auto" else mechanism, USER.encode(), True)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_a_wrong_password_is_down_and_never_shown(smtp, ctx, mechanism):
    port, seen = await smtp(starttls_days=365, auth=True)
    result = await probe_smtp(spec(port, username=USER, password="not-the-password",
                                   auth_mechanism=mechanism), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_failed"), result.message
    assert "535" in result.message and USER in result.message
    assert "not-the-password" not in result.message + json.dumps(result.details) + repr(result)
    assert seen.logins[-1][2] is False


async def test_auth_over_implicit_tls(smtp, ctx):
    port, seen = await smtp(implicit_days=365, auth=True)
    result = await probe_smtp(spec(port, tls="implicit", username=USER, password=PASSWORD), ctx)
    assert result.ok, result.message
    assert "starttls" not in result.phases and {"tls", "auth"} <= set(result.phases)


async def test_auth_asked_of_a_server_that_offers_none_is_down(smtp, ctx):
    port, _ = await smtp(starttls_days=365)
    result = await probe_smtp(spec(port, username=USER, password=PASSWORD), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_unavailable"), result.message


@pytest.mark.parametrize(("pattern", "outcome", "reason"), [
    (r"^220 mx\.test ", Outcome.UP, "ok"),
    ("Postfix", Outcome.DOWN, "banner_mismatch"),
])
async def test_the_banner_can_be_required_to_match(smtp, ctx, pattern, outcome, reason):
    port, _ = await smtp()
    result = await probe_smtp(spec(port, tls="none", expect_banner=pattern), ctx)
    assert (result.outcome, result.reason) == (outcome, reason), result.message


async def test_a_closed_port_is_refused(ctx):
    result = await probe_smtp(spec(closed_port(), tls="none"), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "refused"), result.message


@pytest.mark.parametrize("greeting", [b"554 5.3.2 mx.test has no service for you\r\n",
                                      b"421-4.3.2 mx.test is shutting down\r\n421 4.3.2 try later\r\n"])
async def test_a_refusing_banner_is_down_with_the_servers_text(greeter, ctx, greeting):
    port = await greeter(greeting)
    result = await probe_smtp(spec(port), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "banner_rejected"), result.message
    assert greeting.decode().split("\r\n")[0][4:] in result.message


async def test_a_server_that_never_answers_times_out_saying_it_gave_no_banner(greeter, ctx):
    port = await greeter(None)
    result = await probe_smtp(spec(port, timeout_s=0.5), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout"), result.message
    assert "no banner" in result.message and "banner" not in result.phases


async def test_something_that_is_not_smtp_is_a_protocol_error(greeter, ctx):
    port = await greeter(b"SSH-2.0-OpenSSH_9.2\r\n")
    result = await probe_smtp(spec(port), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "protocol_error"), result.message
    assert "SSH-2.0" in result.message


@pytest.mark.parametrize(("fields", "field"), [
    ({"password": "x", "tls": "starttls"}, "username and password go together"),
    ({"username": "a", "password": "x", "tls": "none"}, "only sent over TLS"),
    ({"username": "a\r\nRSET", "password": "x"}, "username"),
    ({"expect_banner": "("}, "expect_banner"),
    ({"ehlo": "two words"}, "ehlo"),
    ({"target": "mail.example.com"}, "target"),
    ({"tls": "sometimes"}, "tls"),
])
def test_bad_specs_are_refused_naming_the_field(fields, field):
    with pytest.raises(ValueError, match=field):
        SmtpSpec(**({"target": "127.0.0.1:25"} | fields))


@pytest.mark.parametrize(("port", "mode"), [(465, "implicit"), (587, "starttls"), (25, "starttls")])
def test_tls_defaults_to_implicit_on_465_and_starttls_elsewhere(port, mode):
    assert SmtpSpec(target=f"mx.example.com:{port}").tls_mode == mode


async def test_a_server_that_greets_and_then_goes_silent_times_out_naming_the_step(greeter, ctx):
    port = await greeter(b"220 mx.test ESMTP\r\n")
    result = await probe_smtp(spec(port, timeout_s=0.5), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "timeout"), result.message
    assert "no answer during ehlo" in result.message and "banner" in result.phases


async def test_bytes_sent_with_the_starttls_answer_are_refused_not_read_as_if_encrypted(greeter, ctx):
    # A man in the middle can append plaintext to "220 go ahead"; a client must not take it as a TLS-time
    # reply (CVE-2011-0411).
    port = await greeter(b"220 mx.test ESMTP\r\n", {b"EHLO": b"250-mx.test\r\n250 STARTTLS\r\n",
                                                    b"STARTTLS": b"220 go ahead\r\n250 AUTH PLAIN\r\n"})
    result = await probe_smtp(spec(port), ctx)
    assert (result.outcome, result.reason) == (Outcome.DOWN, "protocol_error"), result.message
    assert "after agreeing to start TLS" in result.message and "tls" not in result.phases
