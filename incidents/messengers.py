"""Messenger channels: Telegram and Bale bots. The channel's ``address`` is the chat id (a number, or
``@channelname``).

Telegram Bot API, https://core.telegram.org/bots/api#making-requests and #sendmessage:
``POST https://api.telegram.org/bot<token>/sendMessage`` with ``chat_id`` and ``text``; the answer is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}`` (401 bad token,
400 chat not found, 403 bot blocked, 429 with ``parameters.retry_after``).

Bale's bot API is the same shape at ``https://tapi.bale.ai/bot<token>/METHOD`` (https://docs.bale.ai,
"Making requests": GET or POST, query string, form or JSON parameters; the same ``ok``/``error_code``
answer).
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from incidents.errors import DeliveryFailed
from incidents.notifiers import Message, http_failure
from incidents.sms import redact

__all__ = ["BotApiNotifier", "TelegramNotifier", "BaleNotifier", "TELEGRAM_API", "BALE_API"]

TELEGRAM_API = "https://api.telegram.org"
BALE_API = "https://tapi.bale.ai"
# sendMessage takes 1-4096 characters of text.
_MAX_TEXT = 4096


class BotApiNotifier:
    """``sendMessage`` on a Telegram-compatible bot API at ``base_url``."""

    name = "bot api"

    def __init__(self, session: aiohttp.ClientSession, token: str, *, base_url: str,
                 timeout_s: float = 10.0) -> None:
        self.session, self.token, self.base_url, self.timeout_s = session, token, base_url.rstrip("/"), timeout_s

    async def send(self, address: str, message: Message) -> None:
        text = f"{message.subject}\n\n{message.body}" if message.subject else message.body
        payload = {"chat_id": address, "text": text[:_MAX_TEXT]}
        # The token is part of the path: it is quoted, and never appears in a reason or a log line.
        url = f"{self.base_url}/bot{quote(self.token, safe=':')}/sendMessage"
        try:
            async with self.session.post(url, json=payload, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                answer = await _json(resp)
                if resp.status < 300 and answer.get("ok") is True:
                    return
                code = answer.get("error_code") if isinstance(answer.get("error_code"), int) else resp.status
                why = f"{self.name}: {answer.get('description') or answer or resp.reason}"
                raise http_failure(code if code >= 300 else 502, redact(why, self.token))
        except aiohttp.InvalidURL as exc:
            raise DeliveryFailed(f"{self.name}: invalid base URL", permanent=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryFailed(redact(f"{self.name}: {type(exc).__name__}: {exc}", self.token),
                                 permanent=False) from exc


async def _json(resp: aiohttp.ClientResponse) -> dict:
    try:
        answer = await resp.json(content_type=None)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


class TelegramNotifier(BotApiNotifier):
    name = "telegram"

    def __init__(self, session: aiohttp.ClientSession, token: str, *, base_url: str = TELEGRAM_API,
                 timeout_s: float = 10.0) -> None:
        super().__init__(session, token, base_url=base_url, timeout_s=timeout_s)


class BaleNotifier(BotApiNotifier):
    name = "bale"

    def __init__(self, session: aiohttp.ClientSession, token: str, *, base_url: str = BALE_API,
                 timeout_s: float = 10.0) -> None:
        super().__init__(session, token, base_url=base_url, timeout_s=timeout_s)
