"""Domain expiry probe against real RDAP (aiohttp) and WHOIS (asyncio TCP) servers the tests start on loopback.

"Today" comes from the probe context's clock, so every expiry date below is relative to NOW.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from datetime import UTC, datetime, timedelta

import jdatetime
import pytest
from aiohttp import web
from pydantic import ValidationError

from monitor.errors import InventoryError
from monitor.inventory import apply_inventory, parse_inventory
from probes import PROBERS, SPECS, Outcome
from tests.probes.conftest import serve

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FAR = NOW + timedelta(days=400)
SOON = NOW + timedelta(days=10, hours=1)
PAST = NOW - timedelta(days=3)


def _rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rdap_doc(name: str, expires: datetime | None) -> dict:
    """A domain object as RFC 9083 shapes it (events carry eventAction and eventDate)."""
    events = [{"eventAction": "registration", "eventDate": "2015-05-01T08:00:00Z"},
              {"eventAction": "last changed", "eventDate": "2025-05-01T08:00:00Z"}]
    if expires is not None:
        events.append({"eventAction": "expiration", "eventDate": _rfc3339(expires)})
    return {"objectClassName": "domain", "ldhName": name.upper(), "rdapConformance": ["rdap_level_0"],
            "status": ["active"], "events": events}


RDAP_DOMAINS = {"far.example": FAR, "soon.example": SOON, "gone.example": PAST, "nodate.example": None}


@pytest.fixture
async def rdap():
    """An RDAP server; ``/slow/...`` never answers within a test's timeout."""
    seen: list[str] = []
    release = asyncio.Event()

    async def domain(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        seen.append(name)
        if name not in RDAP_DOMAINS:
            return web.json_response({"errorCode": 404, "title": "Not Found"}, status=404,
                                     content_type="application/rdap+json")
        return web.json_response(_rdap_doc(name, RDAP_DOMAINS[name]), content_type="application/rdap+json")

    async def slow(request: web.Request) -> web.Response:
        await release.wait()  # set at teardown, so the server's cleanup need not wait for it
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/rdap/domain/{name}", domain)
    app.router.add_get("/slow/domain/{name}", slow)
    runner, port = await serve(app)
    yield f"http://127.0.0.1:{port}/rdap", f"http://127.0.0.1:{port}/slow", seen
    release.set()
    await runner.cleanup()


def _gtld(name: str, expires: datetime) -> str:
    return (f"   Domain Name: {name.upper()}\r\n   Registry Domain ID: 123_DOMAIN_COM-VRSN\r\n"
            f"   Updated Date: 2025-02-01T10:00:00Z\r\n   Creation Date: 2010-03-01T10:00:00Z\r\n"
            f"   Registry Expiry Date: {_rfc3339(expires)}\r\n"
            f"   Registrar Registration Expiration Date: {_rfc3339(expires + timedelta(days=50))}\r\n"
            f"   Registrar: Example Registrar, Inc.\r\n>>> Last update of whois database: 2026-12-02 <<<\r\n")


def _irnic(name: str, expires: str) -> str:
    # IRNIC's server (v1.6.x) answers tab-separated RPSL-style lines with an ``expire-date``.
    return ("% This is the IRNIC Whois server v1.6.2.\n% Available on web at http://whois.nic.ir/\n%\n"
            f"% Information related to '{name}'\n\ndomain:\t\t{name}\nascii:\t\t{name}\n"
            "holder-c:\tab123-irnic\nnserver:\tns1.example.ir\nlast-updated:\t2025-06-01\n"
            f"expire-date:\t{expires}\nsource:\t\tIRNIC # Filtered\n")


def _jalali(at: datetime) -> str:
    return jdatetime.date.fromgregorian(date=at.date()).strftime("%Y-%m-%d")


WHOIS_ANSWERS = {
    "far.example": _gtld("far.example", FAR),
    "fallback.example": _gtld("fallback.example", SOON),
    "shop.ir": _irnic("shop.ir", FAR.date().isoformat()),
    "old.ir": _irnic("old.ir", PAST.date().isoformat()),
    "jalali.ir": _irnic("jalali.ir", _jalali(SOON)),
    "filtered.ir": "% This is the IRNIC Whois server v2.0.0.\n% NOTE: This output has been filtered.\n"
                   "domain:\t\tfiltered.ir\nnserver:\tns1.example.ir\nsource:\t\tIRNIC\n",
}


@pytest.fixture
async def whois():
    """A WHOIS server (RFC 3912: one query line, the answer, then close) and a silent one."""
    queries: list[bytes] = []
    release = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        queries.append(line)
        name = line.decode().strip()
        writer.write(WHOIS_ANSWERS.get(name, f'No entries found for "{name}".\r\n').encode())
        await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        await release.wait()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
    yield (f"127.0.0.1:{server.sockets[0].getsockname()[1]}", f"127.0.0.1:{quiet.sockets[0].getsockname()[1]}",
           queries)
    release.set()
    for s in (server, quiet):
        s.close()
        await s.wait_closed()


@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def today(ctx):
    return dataclasses.replace(ctx, now=lambda: NOW)


async def _probe(ctx, **fields):
    spec = SPECS["domain"].model_validate({"kind": "domain", **fields})
    return await PROBERS["domain"](spec, ctx)


def _days(at: datetime) -> int:
    return int((at - NOW).total_seconds() // 86400)


async def test_rdap_expiry_far_away_is_up_with_the_date_and_days_left(today, rdap, whois):
    base, _, seen = rdap
    r = await _probe(today, target="far.example", rdap_base=base, whois_server=whois[0])
    assert r.outcome is Outcome.UP, r
    assert r.details["source"] == "rdap" and seen == ["far.example"] and whois[2] == []
    assert r.details["expires_at"] == FAR.isoformat() and r.details["days_left"] == _days(FAR) == 400


async def test_rdap_expiry_within_degraded_days_is_degraded_and_the_threshold_is_honoured(today, rdap):
    r = await _probe(today, target="soon.example", rdap_base=rdap[0])
    assert (r.outcome, r.reason) == (Outcome.DEGRADED, "domain_expiring"), r
    assert r.details["days_left"] == 10
    relaxed = await _probe(today, target="soon.example", rdap_base=rdap[0], degraded_days=7)
    assert relaxed.outcome is Outcome.UP


async def test_a_past_expiry_is_down_expired(today, rdap):
    r = await _probe(today, target="Gone.Example.", rdap_base=rdap[0])
    assert (r.outcome, r.reason) == (Outcome.DOWN, "domain_expired"), r
    assert r.details["days_left"] == -3


async def test_the_clock_decides_a_date_that_was_far_is_expired_a_year_later(ctx, rdap):
    later = dataclasses.replace(ctx, now=lambda: FAR + timedelta(days=1))
    r = await _probe(later, target="far.example", rdap_base=rdap[0])
    assert (r.outcome, r.reason) == (Outcome.DOWN, "domain_expired")


async def test_rdap_404_falls_back_to_whois_gtld_format_registry_date_wins(today, rdap, whois):
    r = await _probe(today, target="fallback.example", rdap_base=rdap[0], whois_server=whois[0])
    assert (r.outcome, r.reason) == (Outcome.DEGRADED, "domain_expiring"), r
    assert r.details["source"] == "whois" and r.details["rdap_error"] == "not_found"
    assert r.details["expires_at"] == SOON.isoformat()  # the registry's, not the registrar's
    assert whois[2] == [b"fallback.example\r\n"]


async def test_rdap_without_an_expiration_event_falls_back_to_whois(today, rdap, whois):
    r = await _probe(today, target="nodate.example", rdap_base=rdap[0], whois_server=whois[0])
    assert (r.outcome, r.reason) == (Outcome.DOWN, "lookup_failed"), r
    assert r.details["rdap_error"] == "no_date" and r.details["whois_error"] == "not_found"


@pytest.mark.parametrize("name, outcome, reason, expires", [
    ("shop.ir", Outcome.UP, "ok", FAR.date()),
    ("old.ir", Outcome.DOWN, "domain_expired", PAST.date()),
    ("jalali.ir", Outcome.DEGRADED, "domain_expiring", SOON.date()),
])
async def test_rdap_refused_uses_whois_in_irnic_format(today, whois, closed_port, name, outcome, reason, expires):
    r = await _probe(today, target=name, rdap_base=f"http://127.0.0.1:{closed_port}", whois_server=whois[0])
    assert (r.outcome, r.reason) == (outcome, reason), r
    assert r.details["source"] == "whois" and r.details["rdap_error"] == "error"
    assert r.details["expires_at"] == datetime(expires.year, expires.month, expires.day, tzinfo=UTC).isoformat()


async def test_a_filtered_answer_without_a_date_is_lookup_failed_saying_so(today, whois):
    r = await _probe(today, target="filtered.ir", rdap=False, whois_server=whois[0])
    assert (r.outcome, r.reason) == (Outcome.DOWN, "lookup_failed"), r
    assert r.details["whois_error"] == "no_date" and "no expiry date" in r.message


async def test_both_sources_failing_is_lookup_failed_with_each_reason(today, closed_port):
    r = await _probe(today, target="far.example", rdap_base=f"http://127.0.0.1:{closed_port}",
                     whois_server=f"127.0.0.1:{closed_port}")
    assert (r.outcome, r.reason) == (Outcome.DOWN, "lookup_failed"), r
    assert "rdap:" in r.message and "whois: 127.0.0.1" in r.message and "cannot connect" in r.message
    assert "expires_at" not in r.details


async def test_a_silent_whois_server_is_a_timeout(today, whois):
    r = await _probe(today, target="shop.ir", rdap=False, whois_server=whois[1], timeout_s=0.5)
    assert (r.outcome, r.reason) == (Outcome.DOWN, "timeout"), r
    assert r.details["whois_error"] == "timeout"


async def test_a_silent_rdap_server_leaves_whois_its_share_of_the_timeout(today, rdap, whois):
    r = await _probe(today, target="shop.ir", rdap_base=rdap[1], whois_server=whois[0], timeout_s=2)
    assert r.outcome is Outcome.UP, r
    assert r.details["rdap_error"] == "timeout" and r.details["source"] == "whois"


@pytest.mark.parametrize("fields, where", [
    ({"target": "localhost"}, "target"),
    ({"target": "bad_name.ir"}, "target"),
    ({"target": "a.ir", "rdap_base": "ftp://x"}, "rdap_base"),
    ({"target": "a.ir", "whois_server": "host:99999"}, "whois_server"),
    ({"target": "a.ir", "degraded_days": -1}, "degraded_days"),
])
def test_bad_specs_name_the_field(fields, where):
    with pytest.raises(ValidationError) as err:
        SPECS["domain"].model_validate({"kind": "domain", **fields})
    assert err.value.errors()[0]["loc"] == (where,)


def test_an_idn_target_is_kept_as_its_ascii_form():
    assert SPECS["domain"](target="ایران.ir").target.startswith("xn--")


INVENTORY = """\
monitors:
  - name: shop-domain
    kind: domain
    target: shop.ir
    whois_server: 127.0.0.1:4343
"""


async def test_a_domain_monitor_is_checked_daily_unless_it_says_otherwise(sessionmaker, clock):
    from sqlalchemy import select

    from monitor.models import Monitor

    inv, specs = parse_inventory(INVENTORY)
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    async with sessionmaker() as s:
        mon = (await s.execute(select(Monitor))).scalar_one()
    assert (mon.kind, mon.interval_s, mon.spec["whois_server"]) == ("domain", 86400, "127.0.0.1:4343")
    inv, specs = parse_inventory(INVENTORY + "    interval: 43200\n")
    await apply_inventory(sessionmaker, inv, specs, clock.now())
    async with sessionmaker() as s:
        assert (await s.execute(select(Monitor))).scalar_one().interval_s == 43200


def test_only_a_kind_that_allows_it_may_ask_for_an_interval_over_an_hour():
    tcp = "monitors:\n  - name: t\n    kind: tcp\n    target: 127.0.0.1:22\n    interval: 7200\n"
    with pytest.raises(InventoryError) as err:
        parse_inventory(tcp, "inv.yaml")
    assert err.value.path == "monitors[0].interval" and "at most 3600 s for a tcp monitor" in err.value.reason
    with pytest.raises(InventoryError) as err:
        parse_inventory(INVENTORY + "    interval: 172800\n", "inv.yaml")
    assert err.value.path == "monitors[0].interval"
    tcp_default = parse_inventory(tcp.replace("    interval: 7200\n", ""))[0]
    assert tcp_default.monitors[0].interval == 60


def test_the_default_whois_server_follows_the_tld():
    from probes.domain import whois_server_for

    assert whois_server_for(SPECS["domain"](target="shop.ir").target) == "whois.nic.ir"
    assert whois_server_for(SPECS["domain"](target="فروشگاه.ایران").target) == "whois.nic.ir"
    assert whois_server_for("example.de") == "de.whois-servers.net"
