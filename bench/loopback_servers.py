"""Loopback target servers for the probe benchmark, run as a separate process so their CPU is nobody's.

Listens on 0.0.0.0 bound to the ``lo`` device (SO_BINDTODEVICE), so every 127.x.y.z address is a target and
nothing is reachable from outside. Prints ``http tcp https`` ports on one line when ready.

    python bench/loopback_servers.py CERT_PEM KEY_PEM
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys

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


async def main(cert: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    socks = [listener() for _ in range(3)]
    servers = [await loop.create_server(Http, sock=socks[0]), await loop.create_server(Tcp, sock=socks[1]),
               await loop.create_server(Http, sock=socks[2], ssl=tls)]
    print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
