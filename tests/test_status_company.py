"""The company's name and logo (``NEGAHBAN_COMPANY_NAME``, ``NEGAHBAN_COMPANY_LOGO``) on the status page, in
every page's title and as the feed's author; the logo served with the type its bytes tell (never its file name)
and, an SVG included, as an image that runs nothing; the product's name when none is set; bad settings refused
at start-up naming the variable."""

from __future__ import annotations

import re
import struct
import zlib

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.web.app import build_app
from dashboards.web.deps import Company, WebDeps
from monitor.errors import SettingsError
from monitor.settings import MAX_LOGO_BYTES, load_settings

HTML = {"Accept": "text/html"}
NAME = "ابر تهران"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' \
      b'<script>alert(1)</script><rect width="10" height="10"/></svg>'


def png() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


async def _client(sessionmaker, clock, company: Company) -> TestClient:
    deps = WebDeps(sessionmaker=sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   company=company)
    client = TestClient(TestServer(build_app(deps), host="127.0.0.1"))
    await client.start_server()
    return client


def _title(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1)


async def test_the_status_page_shows_the_companys_name_and_logo_and_titles_carry_its_name(
        db, sessionmaker, clock, tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(png())
    settings = load_settings({"NEGAHBAN_COMPANY_NAME": f"  {NAME} ", "NEGAHBAN_COMPANY_LOGO": str(logo)})
    company = Company.of(settings.company_name, settings.company_logo)
    client = await _client(sessionmaker, clock, company)
    try:
        page = await (await client.get("/status", headers=HTML)).text()
        assert _title(page) == f"وضعیت سرویس‌ها · {NAME}"
        header = page.split('<header class="company">')[1].split("</header>")[0]
        assert f'<p class="company-name">{NAME}</p>' in header
        src = re.search(r'<img class="logo" src="([^"]+)" alt="([^"]+)"', header)
        assert src.group(1) == company.logo_url and src.group(2) == NAME
        resp = await client.get(src.group(1))
        assert resp.status == 200 and await resp.read() == png()
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        login = await (await client.get("/login", headers=HTML)).text()
        assert _title(login).endswith(f"· {NAME}")
        feed = await (await client.get("/status/feed.atom")).text()
        assert f"<author><name>{NAME}</name></author>" in feed
    finally:
        await client.close()


async def test_without_settings_the_product_name_is_shown_and_there_is_no_logo(db, sessionmaker, clock):
    client = await _client(sessionmaker, clock, Company.of(load_settings({}).company_name, None))
    try:
        page = await (await client.get("/status", headers=HTML)).text()
        assert _title(page) == "وضعیت سرویس‌ها · نگهبان"
        assert '<p class="company-name">نگهبان</p>' in page and 'class="logo"' not in page
        assert (await client.get("/status/logo")).status == 404
    finally:
        await client.close()


@pytest.mark.parametrize(("name", "content", "served_as"), [
    ("logo.png", SVG, "image/svg+xml"),           # the bytes decide, not the name
    ("logo.svg", b"\xff\xd8\xff\xe0" + b"\x00" * 100, "image/jpeg"),
    ("logo", b"GIF89a" + b"\x00" * 20, "image/gif"),
    ("logo.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image/webp"),
])
async def test_a_logo_is_served_with_the_type_its_bytes_tell(db, sessionmaker, clock, tmp_path, name, content,
                                                            served_as):
    path = tmp_path / name
    path.write_bytes(content)
    settings = load_settings({"NEGAHBAN_COMPANY_LOGO": str(path)})
    client = await _client(sessionmaker, clock, Company.of("", settings.company_logo))
    try:
        resp = await client.get("/status/logo")
        assert resp.status == 200 and resp.headers["Content-Type"] == served_as
        # An SVG opened on its own is sandboxed: its script never runs, it loads nothing.
        csp = resp.headers["Content-Security-Policy"]
        assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    finally:
        await client.close()


@pytest.mark.parametrize(("content", "why"), [
    (None, "cannot be read"),
    (b"", "image file of 1 to"),
    (b"<html><script>alert(1)</script></html>", "is not a PNG, JPEG, GIF, WebP or SVG image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_LOGO_BYTES, "image file of 1 to"),
])
def test_a_logo_that_is_no_image_is_refused_at_start_up_naming_the_setting(tmp_path, content, why):
    path = tmp_path / "logo.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError, match=rf"^NEGAHBAN_COMPANY_LOGO=.*{re.escape(why)}"):
        load_settings({"NEGAHBAN_COMPANY_LOGO": str(path)})


@pytest.mark.parametrize(("env", "variable"), [
    ({"NEGAHBAN_COMPANY_NAME": "ابر\nتهران"}, "NEGAHBAN_COMPANY_NAME"),
    ({"NEGAHBAN_COMPANY_NAME": "ا" * 101}, "NEGAHBAN_COMPANY_NAME"),
    ({"NEGAHBAN_STATUS_WEBHOOK_ALLOW": "127.0.0.0/8, 10.0.0.0/33"}, "NEGAHBAN_STATUS_WEBHOOK_ALLOW"),
])
def test_a_bad_company_or_webhook_setting_is_refused_naming_it(env, variable):
    with pytest.raises(SettingsError, match=rf"^{variable}="):
        load_settings(env)
