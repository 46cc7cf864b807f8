"""The HTTP probe's response framing: the head and chunked bodies are framed as bytes arrive, in any split,
including chunk extensions and trailers; a malformed, truncated or oversized body is a clear failure. One case
goes through a real server on loopback that sends its chunked answer in pieces."""

from __future__ import annotations

import asyncio

import pytest

from probes import HttpSpec, Outcome, probe_http
from probes.base import Failure
from probes.http_wire import _body, _Framing

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
BODY = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Trace: 1\r\n\r\n"
DECODED = b"Wikipedia in\r\n\r\nchunks."


def _feed(data: bytes, step: int, max_body: int = 1 << 20) -> tuple[_Framing, bytearray, int]:
    """Feed ``data`` ``step`` bytes at a time as the stream does; return the framing, the buffer and how many
    bytes had arrived when it said the response was complete (-1: never)."""
    framing, buf = _Framing(max_body, no_body=False), bytearray()
    for i in range(0, len(data), step):
        buf += data[i:i + step]
        if framing(buf):
            return framing, buf, len(buf)
    return framing, buf, -1


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 10_000])
def test_a_chunked_body_with_extensions_and_trailers_is_framed_in_any_split(step):
    framing, buf, done_at = _feed(HEAD + BODY, step)
    assert done_at == len(HEAD + BODY) and framing.error is None
    assert framing.status == 200 and _body(framing, buf) == DECODED


def test_chunk_data_that_looks_like_the_last_chunk_does_not_end_the_body():
    data = b"0\r\n\r\n" * 3
    wire = HEAD + b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"
    framing, buf, done_at = _feed(wire, 5)
    assert done_at == len(wire) and _body(framing, buf) == data


@pytest.mark.parametrize("body, reason", [
    (b"zz\r\nWiki\r\n0\r\n\r\n", "malformed"),          # not a hexadecimal size
    (b"4\r\nWikiXX0\r\n\r\n", "malformed"),             # data not followed by CRLF
    (b"4" * 5000, "malformed"),                          # a size line that never ends
])
def test_a_malformed_chunked_body_is_a_clear_failure(body, reason):
    framing, _, done_at = _feed(HEAD + body, 3)
    assert done_at > 0 and isinstance(framing.error, Failure) and reason in framing.error.message


def test_a_chunked_body_over_the_cap_stops_reading_early():
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    framing, _, done_at = _feed(HEAD + chunk * 100, 1500, max_body=10 * 1024)
    assert framing.too_large and 0 < done_at < len(HEAD + chunk * 100) // 5


def test_a_chunked_body_cut_before_its_last_chunk_is_truncated():
    framing, buf, done_at = _feed(HEAD + b"4\r\nWiki\r\n5\r\nped", 4)
    assert done_at == -1
    with pytest.raises(Failure, match="truncated chunked body"):
        _body(framing, buf)


def test_a_head_that_arrives_one_byte_at_a_time_is_found_once():
    wire = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
    framing, _, done_at = _feed(wire, 1)
    assert done_at == len(wire) and framing.status == 204 and framing.headers["server"] == "x"


async def test_a_real_server_sending_chunks_in_pieces_with_trailers_is_read_whole(ctx):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        wire = HEAD + BODY
        for i in range(0, len(wire), 9):  # in pieces, each its own segment
            writer.write(wire[i:i + 9])
            await writer.drain()
            await asyncio.sleep(0.001)  # let each piece go out on its own; not a timing assertion
        await asyncio.sleep(5)  # keep the connection open: the end of the body must be seen, not the close
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await probe_http(HttpSpec(target=f"http://127.0.0.1:{port}/", body_rules=[{"pattern": "chunks."}],
                                  timeout_s=3), ctx)
    finally:
        server.close()
    assert (result.outcome, result.reason) == (Outcome.UP, "ok"), result.message
