"""A minimal HTTP/1.1 exchange over one fresh connection: send a request, read one response, body capped."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from probes.base import Failure
from probes.net import Conn

__all__ = ["Response", "build_request", "exchange"]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    phases: dict[str, float] = field(default_factory=dict)
    version: str = "1.1"  # from the status line: "1.0", "1.1"


def build_request(method: str, host_header: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
    lower = {k.lower() for k in headers}
    if "user-agent" not in lower:
        lines.append("User-Agent: Negahban-probe/1")
    if "accept" not in lower:
        lines.append("Accept: */*")
    lines.append("Connection: close")
    lines.extend(f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "connection"))
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Framing:
    """Decides, from the bytes so far, whether the whole response has arrived (and enforces the body cap)."""

    def __init__(self, max_body: int, no_body: bool) -> None:
        self.max_body, self.no_body = max_body, no_body
        self.head_len = -1
        self.length: int | None = None
        self.chunked = False
        self.status = 0
        self.version = "1.1"
        self.headers: dict[str, str] = {}
        self.too_large = False
        self.error: Failure | None = None
        self._scanned = 0  # where the search for the head's end goes on from
        # Chunked bodies are framed as they arrive, each byte looked at once: where the next chunk-size line
        # starts, the (start, end) of each chunk's data, and whether the trailer section has begun.
        self._chunk_at = 0
        self.spans: list[tuple[int, int]] = []
        self._decoded = 0
        self.last_chunk = False

    def __call__(self, buf: bytearray) -> bool:
        if self.head_len < 0:
            end = buf.find(b"\r\n\r\n", self._scanned)
            if end < 0:
                self._scanned = max(0, len(buf) - 3)
                return len(buf) > 65536  # a head this long is garbage; stop reading
            try:
                self._parse_head(bytes(buf[:end]))
            except Failure as exc:
                self.error = exc
                return True
            self.head_len = self._chunk_at = end + 4
        if self.no_body:
            return True
        if self.chunked:
            return self._chunks(buf)
        body_len = len(buf) - self.head_len
        if body_len > self.max_body or (self.length is not None and self.length > self.max_body):
            self.too_large = True
            return True
        if self.length is not None:
            return body_len >= self.length
        return False

    def _chunks(self, buf: bytearray) -> bool:
        """Frame the chunks that arrived since the last call; True once the last chunk and its trailers are in
        (or the body is malformed or over the cap)."""
        pos = self._chunk_at
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > 4096:  # no chunk-size or trailer line is this long
                    self.error = Failure("http_error", "malformed chunked body")
                    return True
                break
            if self.last_chunk:
                if eol == pos:  # the empty line that ends the trailers, and the body
                    self._chunk_at = eol + 2
                    return True
                pos = eol + 2  # a trailer field, skipped
                continue
            try:
                size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            except ValueError:
                self.error = Failure("http_error", "malformed chunked body")
                return True
            if size == 0:
                self.last_chunk, pos = True, eol + 2
                continue
            end = eol + 2 + size
            if end + 2 > len(buf):
                break
            if buf[end:end + 2] != b"\r\n":
                self.error = Failure("http_error", "malformed chunked body")
                return True
            self.spans.append((eol + 2, end))
            self._decoded += size
            if self._decoded > self.max_body:
                self.too_large = True
                return True
            pos = end + 2
        self._chunk_at = pos
        return False

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise Failure("http_error", f"not an HTTP response: {lines[0][:80]!r}")
        self.status = int(parts[1])
        self.version = parts[0][5:] or "1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.no_body = self.no_body or self.status in (204, 304) or 100 <= self.status < 200
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        cl = self.headers.get("content-length")
        if cl is not None and cl.isdigit() and not self.chunked:
            self.length = int(cl)


async def exchange(conn: Conn, request: bytes, max_body: int, head_only: bool) -> Response:
    """Send ``request`` on ``conn`` and read one response; phases ``processing`` and ``transfer``."""
    stream = conn.stream
    framing = _Framing(max_body, head_only)
    stream.done_when = framing
    sent_at = time.perf_counter()
    stream.transport.write(request)
    await stream.wait()
    done_at = time.perf_counter()
    if framing.error is not None:
        raise framing.error
    if framing.head_len < 0:
        if stream.first_byte_at is None:
            raise Failure("http_error", "connection closed without a response")
        raise Failure("http_error", "incomplete response head")
    if framing.too_large:
        raise Failure("body_too_large", f"body larger than {max_body} bytes")
    first = stream.first_byte_at or done_at
    phases = {"processing": first - sent_at, "transfer": done_at - first}
    return Response(framing.status, framing.headers, _body(framing, stream.buf), phases, framing.version)


def _body(framing: _Framing, buf: bytearray) -> bytes:
    if framing.no_body:
        return b""
    if framing.chunked:
        if not framing.last_chunk:
            raise Failure("http_error", "truncated chunked body")
        return b"".join(buf[a:b] for a, b in framing.spans)
    raw = bytes(buf[framing.head_len:])
    if framing.length is not None:
        if len(raw) < framing.length:
            raise Failure("http_error", f"body truncated at {len(raw)} of {framing.length} bytes")
        return raw[: framing.length]
    return raw
