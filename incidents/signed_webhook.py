"""A webhook whose receiver can check that a notice is ours, recent, and not a repeat.

Each POST carries, besides the JSON body and ``Idempotency-Key``:

    X-Negahban-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The receiver recomputes the HMAC over the timestamp, a dot and the exact bytes of the body, compares it in
constant time, and refuses a timestamp older than its tolerance (300 s here): a captured request cannot be
replayed later, and a retry within the tolerance is dropped by its ``Idempotency-Key``. The same scheme as
Stripe's ``Stripe-Signature`` (https://docs.stripe.com/webhooks#verify-manually); ``verify_signature``
below is the receiver's side, for tests and for our own receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime

import aiohttp

from incidents.errors import DeliveryFailed
from incidents.notifiers import Message, http_failure

__all__ = ["SIGNATURE_HEADER", "SignedWebhookNotifier", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Negahban-Signature"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes, header: str, body: bytes, now: datetime, tolerance_s: float = 300) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` at a time within ``tolerance_s`` of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now.timestamp() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class SignedWebhookNotifier:
    """POSTs the notice as JSON (the same fields as ``WebhookNotifier``), signed; ``now`` is the clock."""

    def __init__(self, session: aiohttp.ClientSession, secret: str, now: Callable[[], datetime],
                 timeout_s: float = 10.0, allow_redirects: bool = True) -> None:
        if not secret:
            raise ValueError("a signed webhook needs a non-empty secret")
        self.session, self.secret, self.now, self.timeout_s = session, secret.encode(), now, timeout_s
        # Off for an address a visitor chose: a redirect could lead to an address the guard refuses.
        self.allow_redirects = allow_redirects

    async def send(self, address: str, message: Message) -> None:
        payload = {"subject": message.subject, "body": message.body, **message.data,
                   "idempotency_key": message.idempotency_key}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: sign(self.secret, int(self.now().timestamp()), body)}
        if message.idempotency_key:
            headers["Idempotency-Key"] = message.idempotency_key
        try:
            async with self.session.post(address, data=body, headers=headers, allow_redirects=self.allow_redirects,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                if resp.status >= 300:
                    raise http_failure(resp.status, await resp.text())
        except aiohttp.InvalidURL as exc:
            raise DeliveryFailed(f"invalid URL {address!r}", permanent=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc
