"""A small authoritative DNS server for tests: UDP and TCP on one loopback port, answers built with dnspython.

Names under ``big.`` answer over UDP with only the TC bit set, so a client must retry over TCP; ``broken.``
answers SERVFAIL; unknown names answer NXDOMAIN.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

ZONE = {
    ("www.test.", "A"): ["127.0.0.10", "127.0.0.11"],
    ("www.test.", "AAAA"): ["::1"],
    ("alias.test.", "CNAME"): ["www.test."],
    ("test.", "MX"): ["10 mail.test."],
    ("test.", "NS"): ["ns1.test."],
    ("test.", "TXT"): ['"v=spf1 -all"'],
    ("test.", "SOA"): ["ns1.test. hostmaster.test. 2026120201 3600 600 86400 60"],
    ("big.test.", "TXT"): [f'"{"k" * 200}-{i}"' for i in range(12)],
}


def answer(wire: bytes, over_tcp: bool) -> bytes:
    query = dns.message.from_wire(wire)
    resp = dns.message.make_response(query)
    question = query.question[0]
    name, rdtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
    if name.startswith("broken."):
        resp.set_rcode(dns.rcode.SERVFAIL)
    elif name.startswith("big.") and not over_tcp:
        resp.flags |= dns.flags.TC
    elif (name, rdtype) in ZONE:
        resp.answer.append(dns.rrset.from_text_list(name, 60, "IN", rdtype, ZONE[(name, rdtype)]))
    elif not any(n == name for n, _ in ZONE):
        resp.set_rcode(dns.rcode.NXDOMAIN)
    return resp.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(answer(data, over_tcp=False), addr)


async def _tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = answer(await reader.readexactly(size), over_tcp=True)
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class DnsServer:
    def __init__(self) -> None:
        self.port = 0
        self._udp = None
        self._tcp = None

    async def start(self, host: str = "127.0.0.1") -> DnsServer:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # find a port free for both UDP and TCP
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp_sock.bind((host, 0))
            port = udp_sock.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(_tcp, host, port)
            except OSError:
                udp_sock.close()
                continue
            self._udp, _ = await loop.create_datagram_endpoint(_Udp, sock=udp_sock)
            self.port = port
            return self
        raise RuntimeError("no port free for both UDP and TCP")

    async def stop(self) -> None:
        self._udp.close()
        self._tcp.close()
        await self._tcp.wait_closed()
