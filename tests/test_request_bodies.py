"""Request bodies are read whole, however they arrive, up to the route's limit (413 beyond it)."""

from __future__ import annotations

import asyncio
import json

from tests.incident_support import incidents
from tests.test_alertmanager_receiver import alert, payload
from tests.test_api_incidents import api  # noqa: F401 - the fixture

SLOW_CLIENT_PAUSE_S = 0.3


async def _post_in_pieces(client, path: str, headers: dict, body: bytes, pieces: int) -> tuple[int, dict]:
    """POST ``body`` over a raw TCP connection in ``pieces`` writes, letting the server run between them."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: {headers['Authorization']}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    writer.write(head)
    step = -(-len(body) // pieces)
    for i in range(0, len(body), step):
        writer.write(body[i:i + step])
        await writer.drain()
        # A slow client: the pause is the behaviour under test (the server's handler has authenticated the
        # caller and started reading before the next piece exists), not a wait for a result.
        await asyncio.sleep(SLOW_CLIENT_PAUSE_S)
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2] or b"{}")


async def test_a_json_body_sent_in_two_pieces_is_read_whole(api, sessionmaker):  # noqa: F811
    client, tokens, _ = api
    body = json.dumps(payload(alert(), alert(fingerprint="b2"), alert(fingerprint="c3"))).encode()
    assert len(body) > 1000
    status, answer = await _post_in_pieces(client, "/api/v1/alertmanager", tokens["am"], body, 2)
    assert status == 200 and answer["opened"] == 3
    assert len(await incidents(sessionmaker)) == 3


async def test_an_alertmanager_group_of_a_thousand_alerts_is_accepted(api, sessionmaker):  # noqa: F811
    client, tokens, _ = api
    alerts = [alert(fingerprint=f"f{i:04d}", instance=f"host-{i}") for i in range(1000)]
    for a in alerts:
        a["annotations"]["description"] = "the host does not answer ping from the monitoring location " * 12
    body = json.dumps(payload(*alerts)).encode()
    assert len(body) > 900_000
    status, answer = await _post_in_pieces(client, "/api/v1/alertmanager", tokens["am"], body, 8)
    assert status == 200 and answer["opened"] == 1000


async def test_a_body_over_the_limit_answers_413_naming_the_limit(api, sessionmaker):  # noqa: F811
    client, tokens, _ = api
    resp = await client.post("/api/v1/incidents/1/notes", data=b"x" * (2 * 1024 * 1024),
                             headers={**tokens["nora"], "Content-Type": "application/json"})
    assert resp.status == 413
    answer = await resp.json()
    assert answer["field"] == "<body>" and "bytes" in answer["reason"]


async def test_json_nested_thirty_thousand_deep_is_a_clear_400(api):  # noqa: F811
    client, tokens, _ = api
    deep = b"[" * 30_000 + b"]" * 30_000
    resp = await client.post("/api/v1/incidents/1/notes", data=deep,
                             headers={**tokens["nora"], "Content-Type": "application/json"})
    assert resp.status == 400 and "deep" in (await resp.json())["reason"]
