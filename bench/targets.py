"""Loopback targets for bench/engine_bench.py, run as a process of their own so their CPU is nobody's.

HTTP and TCP listeners on 0.0.0.0 bound to ``lo`` (SO_BINDTODEVICE): every 127.x.y.z address is a target
and nothing is reachable from outside. Prints ``http_port tcp_port`` when ready.
"""

from __future__ import annotations

import asyncio
import socket

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class Http(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport, self.buf = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.transport.write(RESPONSE)
            self.transport.close()


class Tcp(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        transport.close()


def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
    sock.bind(("0.0.0.0", 0))
    sock.listen(4096)
    return sock


async def main() -> None:
    loop = asyncio.get_running_loop()
    socks = [listener(), listener()]
    servers = [await loop.create_server(Http, sock=socks[0]), await loop.create_server(Tcp, sock=socks[1])]
    print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
