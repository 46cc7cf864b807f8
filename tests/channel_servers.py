"""Loopback servers that speak each provider's documented HTTP API and refuse any other request shape, and a
real SMTP server (``Mailbox`` behind aiosmtpd, ``smtp_mailbox``) that keeps every mail it accepts.

Each ``Provider`` checks the method, path, parameters and authentication its documentation asks for (the
URLs are cited in the notifier's module) and answers like the provider. A request of the wrong shape is
answered 400 and listed in ``errors``; ``statuses`` scripts the next answers (5xx, 4xx) before success.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as email_policy
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

__all__ = ["Provider", "Kavenegar", "Ghasedak", "BotApi", "PagerDuty", "Gateway", "start", "Mailbox",
           "smtp_mailbox"]


@dataclass
class Provider:
    # Answers to give in turn (HTTP status, JSON body); after them, the provider's success answer.
    statuses: list[tuple[int, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def answer(self, ok: Any, status: int = 200) -> web.Response:
        if self.statuses:
            status, ok = self.statuses.pop(0)
        return web.json_response(ok, status=status)

    def refuse(self, why: str) -> web.Response:
        self.errors.append(why)
        return web.json_response({"error": why}, status=400)


class Kavenegar(Provider):
    """https://kavenegar.com/rest.html: POST /v1/{API-KEY}/sms/send.json, form receptor, message, sender."""

    def __init__(self, api_key: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.api_key = api_key

    def routes(self):
        return [web.route("*", "/v1/{key}/sms/send.json", self.send)]

    async def send(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        self.requests.append({"method": request.method, "key": request.match_info["key"], **form})
        if request.match_info["key"] != self.api_key:
            return web.json_response({"return": {"status": 401, "message": "کلید نامعتبر"}, "entries": None},
                                     status=401)
        if request.method != "POST" or not form.get("receptor") or not form.get("message"):
            return self.refuse("POST with receptor and message")
        return self.answer({"return": {"status": 200, "message": "تایید شد"},
                            "entries": [{"messageid": 1, "receptor": form["receptor"], "status": 1}]})


class Ghasedak(Provider):
    """https://ghasedak.me/docs: POST /v2/sms/send/simple, header apikey, form message, receptor, linenumber."""

    def __init__(self, api_key: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.api_key = api_key

    def routes(self):
        return [web.post("/v2/sms/send/simple", self.send)]

    async def send(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self.refuse(f"expected a form body, got {request.content_type}")
        form = dict(await request.post())
        self.requests.append({"apikey": request.headers.get("apikey"), **form})
        if request.headers.get("apikey") != self.api_key:
            return web.json_response({"result": {"code": 401, "message": "apikey is invalid"}}, status=401)
        if not form.get("message") or not form.get("receptor"):
            return self.refuse("message and receptor are required")
        return self.answer({"result": {"code": 200, "message": "success"}, "items": [1]})


class BotApi(Provider):
    """Telegram's (https://core.telegram.org/bots/api) and Bale's (https://docs.bale.ai) sendMessage."""

    def __init__(self, token: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.token = token

    def routes(self):
        return [web.post("/bot{token}/sendMessage", self.send)]

    async def send(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        body = await request.json()
        self.requests.append(body)
        if not body.get("chat_id") or not body.get("text"):
            return self.refuse("chat_id and text are required")
        return self.answer({"ok": True, "result": {"message_id": len(self.requests), "text": body["text"]}})


class PagerDuty(Provider):
    """https://developer.pagerduty.com/docs/events-API-v2/trigger-events/: POST /v2/enqueue."""

    def routes(self):
        return [web.post("/v2/enqueue", self.enqueue)]

    async def enqueue(self, request: web.Request) -> web.Response:
        event = await request.json()
        self.requests.append(event)
        for name in ("routing_key", "event_action", "dedup_key"):
            if not isinstance(event.get(name), str) or not event[name]:
                return self.refuse(f"{name} is required")
        if event["event_action"] not in ("trigger", "acknowledge", "resolve"):
            return self.refuse("event_action must be trigger, acknowledge or resolve")
        if event["event_action"] == "trigger":
            payload = event.get("payload") or {}
            if not payload.get("summary") or not payload.get("source") or \
                    payload.get("severity") not in ("critical", "error", "warning", "info"):
                return self.refuse("a trigger needs payload.summary, payload.source and a valid severity")
            if len(payload["summary"]) > 1024:
                return self.refuse("payload.summary is longer than 1024")
        return self.answer({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]},
                           status=202)


class Gateway(Provider):
    """A generic SMS gateway at /send, any method; records where the fields came from."""

    def routes(self):
        return [web.route("*", "/send", self.send)]

    async def send(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body, where = await request.json(), "json"
        elif request.method == "POST":
            body, where = dict(await request.post()), "form"
        else:
            body, where = {}, "none"
        self.requests.append({"method": request.method, "where": where, "body": body,
                              "query": dict(request.query), "headers": dict(request.headers)})
        return self.answer({"ok": True})


async def start(provider: Provider, runners: list[web.AppRunner]) -> str:
    app = web.Application()
    app.add_routes(provider.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    runners.append(runner)
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


class Mailbox:
    """An aiosmtpd handler that keeps each accepted mail: (envelope recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=email_policy)))
        return "250 OK"


@contextmanager
def smtp_mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on 127.0.0.1 for the block: its mailbox and port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
