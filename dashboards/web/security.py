"""Security headers on every response: a Content-Security-Policy without inline script, no framing, no MIME
sniffing, no full referrers to other sites.

Pages carry no inline script (the NOC screen's and the report's code are static files). The one inline
``<style>`` (the report page must stay self-contained for Chromium's PDF) is allowed by a per-response nonce
from ``csp_nonce``.
"""

from __future__ import annotations

import secrets

from aiohttp import web

__all__ = ["csp_nonce", "add_security_headers", "content_security_policy"]

_NONCE = web.RequestKey("csp_nonce", str)
_FIXED = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
          "Cross-Origin-Opener-Policy": "same-origin"}


def csp_nonce(request: web.Request) -> str:
    """This response's nonce for an inline ``<style>`` (made on first use)."""
    if _NONCE not in request:
        request[_NONCE] = secrets.token_urlsafe(18)
    return request[_NONCE]


def content_security_policy(nonce: str | None) -> str:
    style = "style-src 'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return ("default-src 'self'; script-src 'self'; " + style + "; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, errors and static files included."""
    for name, value in _FIXED.items():
        response.headers.setdefault(name, value)
    # A response that is not a page (an image a company gave, which may be an SVG) may set a stricter one.
    response.headers.setdefault("Content-Security-Policy", content_security_policy(request.get(_NONCE)))
