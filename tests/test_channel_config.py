"""Channels named in settings (NEGAHBAN_NOTIFICATION_CHANNELS), their secrets from the environment or files,
never shown; and the notifiers the service builds from them."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import select

from incidents.channel_config import ChannelSpec, parse_notification_channels, sync_channels
from incidents.models import NotificationChannel
from incidents.secrets import SecretMissing, resolve_secret
from monitor.errors import InvalidInput, SettingsError
from monitor.models import Customer
from monitor.settings import load_settings
from negahban.service import _notifiers
from tests.incident_support import add


def test_channels_are_parsed_name_kind_audience_address():
    text = ("noc-pd: pagerduty noc env:PD_KEY; noc-bale: bale noc 4528861;"
            " acme-sms: kavenegar customer=acme 09121234567; hook: webhook escalation https://x.test/h?a=b")
    assert parse_notification_channels(text) == [
        ChannelSpec("noc-pd", "pagerduty", "noc", "env:PD_KEY"),
        ChannelSpec("noc-bale", "bale", "noc", "4528861"),
        ChannelSpec("acme-sms", "kavenegar", "customer", "09121234567", "acme"),
        ChannelSpec("hook", "webhook", "escalation", "https://x.test/h?a=b")]


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("noc pagerduty noc key", "notification_channels[0].entry", "expected 'name: kind audience address'"),
    ("a: bale noc", "notification_channels[0].entry", "expected"),
    ("a: bale noc 1; b: pigeon noc 2", "notification_channels[1].kind", "'pigeon' is not one of"),
    ("a: bale everyone 1", "notification_channels[0].audience", "expected noc, escalation or customer=<name>"),
    ("a: webhook noc ftp://x", "notification_channels[0].address", "http:// or https://"),
    ("a: bale noc 1; a: telegram noc 2", "notification_channels[1].name", "named twice"),
])
def test_a_bad_channel_entry_names_its_field_and_reason(text, field, reason):
    with pytest.raises(InvalidInput) as err:
        parse_notification_channels(text)
    assert err.value.field == field and reason in err.value.reason


async def test_sync_creates_updates_and_reenables_a_channel_whose_address_changed(sessionmaker):
    (acme,) = await add(sessionmaker, Customer(name="acme", display_name="Acme"))
    await sync_channels(sessionmaker, parse_notification_channels(
        "noc-tg: telegram noc 111; acme-sms: ghasedak customer=acme 0912"))
    async with sessionmaker() as s, s.begin():
        tg = (await s.get(NotificationChannel, 1))
        tg.enabled, tg.disabled_reason = False, "HTTP 400: chat not found"
    assert await sync_channels(sessionmaker, parse_notification_channels(
        "noc-tg: telegram noc 222; acme-sms: ghasedak customer=acme 0912")) == 1
    async with sessionmaker() as s:
        tg, sms = await s.get(NotificationChannel, 1), await s.get(NotificationChannel, 2)
    assert (tg.address, tg.enabled, tg.disabled_reason) == ("222", True, "")
    assert (sms.kind, sms.audience, sms.customer_id) == ("ghasedak", "customer", acme.id)


async def test_sync_refuses_an_unknown_customer_by_field(sessionmaker):
    with pytest.raises(InvalidInput, match=r"notification_channels\[0\].audience: no customer named 'nobody'"):
        await sync_channels(sessionmaker, parse_notification_channels("x: kavenegar customer=nobody 0912"))


def test_a_secret_comes_from_a_file_and_never_shows(tmp_path):
    key = tmp_path / "kavenegar.key"
    key.write_text("K-SECRET-1\n")
    s = load_settings({"NEGAHBAN_KAVENEGAR_API_KEY_FILE": str(key), "NEGAHBAN_BALE_BOT_TOKEN": "1:BALE-SECRET"})
    assert s.kavenegar_api_key.get_secret_value() == "K-SECRET-1"
    assert "K-SECRET-1" not in repr(s) and "BALE-SECRET" not in repr(s) and "BALE-SECRET" not in str(s)


def test_an_unreadable_secret_file_is_a_settings_error_naming_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="NEGAHBAN_GHASEDAK_API_KEY_FILE="):
        load_settings({"NEGAHBAN_GHASEDAK_API_KEY_FILE": str(tmp_path / "missing")})


def test_a_bad_provider_url_is_a_settings_error():
    with pytest.raises(SettingsError, match="NEGAHBAN_PAGERDUTY_EVENTS_URL='events.pagerduty.com'"):
        load_settings({"NEGAHBAN_PAGERDUTY_EVENTS_URL": "events.pagerduty.com"})


def test_references_resolve_from_the_environment_and_files(tmp_path):
    (tmp_path / "k").write_text("from-file\n")
    assert resolve_secret("env:K", {"K": "from-env"}) == "from-env"
    assert resolve_secret(f"file:{tmp_path / 'k'}", {}) == "from-file"
    assert resolve_secret("plain", {}) == "plain"
    with pytest.raises(SecretMissing, match="environment variable K is not set"):
        resolve_secret("env:K", {})
    with pytest.raises(SecretMissing, match="cannot be read"):
        resolve_secret(f"file:{tmp_path / 'none'}", {})


async def test_the_service_builds_a_notifier_for_each_configured_kind(clock):
    bare = load_settings({})
    full = load_settings({"NEGAHBAN_KAVENEGAR_API_KEY": "k", "NEGAHBAN_GHASEDAK_API_KEY": "g",
                          "NEGAHBAN_TELEGRAM_BOT_TOKEN": "1:t", "NEGAHBAN_BALE_BOT_TOKEN": "2:b",
                          "NEGAHBAN_SMS_GATEWAY_URL": "http://127.0.0.1:9/send",
                          "NEGAHBAN_WEBHOOK_SIGNING_SECRET": "s"})
    async with aiohttp.ClientSession() as http:
        assert sorted(_notifiers(bare, http, clock)) == ["email", "pagerduty", "webhook"]
        built = _notifiers(full, http, clock)
    # With a signing secret, status-page webhook subscribers get signed deliveries of their own too.
    assert sorted(built) == ["bale", "email", "ghasedak", "kavenegar", "pagerduty", "sms", "status_webhook",
                             "telegram", "webhook"]
    assert type(built["webhook"]).__name__ == "SignedWebhookNotifier"
    assert type(built["status_webhook"]).__name__ == "StatusWebhookNotifier"


async def test_start_up_writes_the_channels_the_settings_name_or_fails_naming_the_setting(sessionmaker):
    from negahban.service import _configured_channels

    ok = load_settings({"NEGAHBAN_NOTIFICATION_CHANNELS": "noc-pd: pagerduty noc env:PD_KEY"})
    await _configured_channels(ok, sessionmaker)
    async with sessionmaker() as s:
        (row,) = (await s.execute(select(NotificationChannel))).scalars().all()
    assert (row.name, row.kind, row.address) == ("noc-pd", "pagerduty", "env:PD_KEY")
    unknown = load_settings({"NEGAHBAN_NOTIFICATION_CHANNELS": "x: kavenegar customer=ghost 0912"})
    with pytest.raises(SettingsError, match="NEGAHBAN_NOTIFICATION_CHANNELS: .*no customer named 'ghost'"):
        await _configured_channels(unknown, sessionmaker)
