"""SMS channels: Kavenegar, Ghasedak, and a template for any other HTTP gateway.

The channel's ``address`` is the mobile number. Each notifier sends ``sms_text(message, max_parts)``: the
notice in one part where possible (see ``incidents.sms_text``), never more than ``max_parts``. A gateway's 5xx,
408/429 or a timeout is transient (retried with backoff by the dispatcher); any other 4xx (a bad key, a bad
number, no credit) is permanent and disables the channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from incidents.errors import DeliveryFailed
from incidents.notifiers import Message, http_failure
from incidents.sms_text import fit_sms

__all__ = ["redact", "sms_text", "KavenegarNotifier", "GhasedakNotifier", "HttpSmsNotifier"]


def sms_text(message: Message, max_parts: int) -> str:
    """The body in one part, else its compact form (``data["short"]``), else the subject; at most
    ``max_parts`` parts."""
    return fit_sms(message.body, [str(message.data.get("short") or ""), message.subject], max_parts=max_parts)


def redact(text: str, secret: str) -> str:
    """``text`` without ``secret`` (a gateway may echo the URL, which can hold the key, in its error)."""
    return text.replace(secret, "<secret>") if secret else text


async def _request(session: aiohttp.ClientSession, method: str, url: str, timeout_s: float, *,
                   what: str, secret: str = "", **kwargs: Any) -> Any:
    """One HTTP call, redirects not followed; the answer's JSON (or None). Failures become
    ``DeliveryFailed`` whose reason names the gateway (``what``) and never holds ``secret``."""
    try:
        async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                   allow_redirects=False, **kwargs) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise http_failure(resp.status, redact(f"{what}: {text}", secret))
            try:
                return await resp.json(content_type=None)
            except ValueError:
                return None
    except aiohttp.InvalidURL as exc:
        raise DeliveryFailed(f"{what}: invalid URL", permanent=True) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryFailed(redact(f"{what}: {type(exc).__name__}: {exc}", secret), permanent=False) from exc


class KavenegarNotifier:
    """Kavenegar's REST ``sms/send``: ``POST {base}/v1/{API-KEY}/sms/send.json`` with the form fields
    ``receptor``, ``message`` and (optionally) ``sender``; the answer's ``return.status`` is 200 on success
    and the HTTP status carries the error (401 bad key, 411 bad receptor, 418 no credit, ...).
    Documented at https://kavenegar.com/rest.html (the "sms/send" method)."""

    def __init__(self, session: aiohttp.ClientSession, api_key: str, *, sender: str = "",
                 base_url: str = "https://api.kavenegar.com", max_parts: int = 2, timeout_s: float = 10.0) -> None:
        self.session, self.api_key, self.sender = session, api_key, sender
        self.base_url, self.max_parts, self.timeout_s = base_url.rstrip("/"), max_parts, timeout_s

    async def send(self, address: str, message: Message) -> None:
        form = {"receptor": address, "message": sms_text(message, self.max_parts)}
        if self.sender:
            form["sender"] = self.sender
        url = f"{self.base_url}/v1/{quote(self.api_key, safe='')}/sms/send.json"
        answer = await _request(self.session, "POST", url, self.timeout_s, what="kavenegar", secret=self.api_key,
                                data=form)
        status = (answer or {}).get("return", {}).get("status") if isinstance(answer, dict) else None
        if status != 200:
            # An HTTP 200 whose body says otherwise: the documented codes are all 4xx/5xx-shaped.
            code = status if isinstance(status, int) else 502
            raise http_failure(code, redact(f"kavenegar: {answer!r}", self.api_key))


class GhasedakNotifier:
    """Ghasedak's REST v2 single send: ``POST {base}/v2/sms/send/simple`` with the ``apikey`` header and the
    form fields ``message``, ``receptor``, ``linenumber``; the answer's ``result.code`` is 200 on success.
    Documented at https://ghasedak.me/docs (ارسال تکی) and https://ghasedak.io/docs."""

    def __init__(self, session: aiohttp.ClientSession, api_key: str, *, line_number: str = "",
                 base_url: str = "https://api.ghasedak.me", max_parts: int = 2, timeout_s: float = 10.0) -> None:
        self.session, self.api_key, self.line_number = session, api_key, line_number
        self.base_url, self.max_parts, self.timeout_s = base_url.rstrip("/"), max_parts, timeout_s

    async def send(self, address: str, message: Message) -> None:
        form = {"message": sms_text(message, self.max_parts), "receptor": address}
        if self.line_number:
            form["linenumber"] = self.line_number
        answer = await _request(self.session, "POST", f"{self.base_url}/v2/sms/send/simple", self.timeout_s,
                                what="ghasedak", secret=self.api_key, data=form, headers={"apikey": self.api_key})
        code = (answer or {}).get("result", {}).get("code") if isinstance(answer, dict) else None
        if code != 200:
            raise http_failure(code if isinstance(code, int) and code >= 400 else 502, f"ghasedak: {answer!r}")


class HttpSmsNotifier:
    """Any other HTTP gateway, as a template: ``method`` GET or POST to ``url``; the number and the text in
    the fields ``to_field`` and ``text_field`` (plus fixed ``extra`` fields such as a key or a sender), sent
    as ``encoding``: ``json`` (a JSON body), ``form`` (an urlencoded body) or ``query`` (URL parameters).
    Success is any 2xx."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, method: Literal["GET", "POST"] = "POST",
                 encoding: Literal["json", "form", "query"] = "json", to_field: str = "to",
                 text_field: str = "text", extra: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None, max_parts: int = 2, timeout_s: float = 10.0) -> None:
        if method == "GET" and encoding != "query":
            raise ValueError("sms_method=GET needs sms_encoding=query (a GET has no body)")
        self.session, self.url, self.method, self.encoding = session, url, method, encoding
        self.to_field, self.text_field = to_field, text_field
        self.extra, self.headers = dict(extra or {}), dict(headers or {})
        self.max_parts, self.timeout_s = max_parts, timeout_s

    async def send(self, address: str, message: Message) -> None:
        fields = {**self.extra, self.to_field: address, self.text_field: sms_text(message, self.max_parts)}
        where = {"json": "json", "form": "data", "query": "params"}[self.encoding]
        await _request(self.session, self.method, self.url, self.timeout_s, what="sms gateway",
                       headers=self.headers, **{where: fields})
