"""Shared ICMP echo engine: one socket per address family for every ICMP probe in the process.

icmplib opens the sockets (raw when privileged, datagram where ``net.ipv4.ping_group_range`` allows) and maps
permission errors. Its own ``async_ping`` opens one socket per ping; with raw sockets every reply is then
copied to every open socket, so N concurrent targets cost N^2 wake-ups. Here one non-blocking socket per family
is read by one loop callback that drains it and hands each reply to its waiting probe by (address, sequence).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

from icmplib import ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketPermissionError

from probes.errors import IcmpUnavailable

__all__ = ["IcmpEngine", "EchoStats"]

_ECHO = {socket.AF_INET: (8, 0), socket.AF_INET6: (128, 129)}  # (request, reply)
_ERRORS = {socket.AF_INET: {3: "destination unreachable", 11: "time exceeded"},
           socket.AF_INET6: {1: "destination unreachable", 3: "time exceeded"}}
_PAYLOAD = bytes(range(48, 48 + 56))
_HOW_TO_FIX = (
    "ICMP probes need raw sockets (run as root or give the service CAP_NET_RAW, e.g. systemd "
    "AmbientCapabilities=CAP_NET_RAW) or datagram ICMP sockets: set net.ipv4.ping_group_range to a range "
    "that includes the service's group id {gid} (e.g. sysctl -w net.ipv4.ping_group_range=\"{gid} {gid}\")."
)


@dataclass(slots=True)
class EchoStats:
    sent: int = 0
    rtts: list[float] = field(default_factory=list)
    error: str | None = None
    hop_limit: int | None = None  # of the last reply: its IPv4 TTL or IPv6 hop limit, as it arrived


class _Run:
    __slots__ = ("stats", "waiting", "sending", "waiter", "keys")

    def __init__(self, waiter: asyncio.Future) -> None:
        self.stats = EchoStats()
        self.waiting = 0
        self.sending = True
        self.waiter = waiter
        self.keys: list[tuple[str, int]] = []

    def settle(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0 and not self.sending and not self.waiter.done():
            self.waiter.set_result(None)


def _checksum_sum(data: bytes) -> int:
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


_PAYLOAD_SUM = _checksum_sum(_PAYLOAD)


class IcmpEngine:
    """Echo requests over shared sockets. ``open()`` picks raw or datagram sockets, or raises."""

    def __init__(self, privileged: bool, v4: ICMPv4Socket) -> None:
        self.privileged = privileged
        self._icmplib = {socket.AF_INET: v4}
        self._socks: dict[int, socket.socket] = {}
        self._pending: dict[tuple[str, int], tuple[_Run, float]] = {}
        self._ident = int.from_bytes(os.urandom(2), "big")  # raw sockets see every reply: ours carry it
        self._seq = int.from_bytes(os.urandom(2), "big")
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def open(cls, mode: str = "auto") -> IcmpEngine:
        """``mode`` is auto, privileged or unprivileged. Raise ``IcmpUnavailable`` saying what to change."""
        tries = {"auto": (True, False), "privileged": (True,), "unprivileged": (False,)}[mode]
        for privileged in tries:
            try:
                return cls(privileged, ICMPv4Socket(privileged=privileged))
            except (SocketPermissionError, ICMPSocketError):
                continue
        raise IcmpUnavailable(_HOW_TO_FIX.format(gid=os.getgid()))

    @property
    def mode(self) -> str:
        return "privileged" if self.privileged else "unprivileged"

    @property
    def sockets_open(self) -> int:
        """Sockets in use: one per address family, however many targets are being pinged."""
        return len(self._socks)

    @property
    def in_flight(self) -> int:
        """Echo requests still waiting for a reply."""
        return len(self._pending)

    def close(self) -> None:
        for sock in self._socks.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock)
        self._socks.clear()
        for wrapped in self._icmplib.values():
            wrapped.close()
        for run, _ in list(self._pending.values()):
            run.waiter.cancel()
        self._pending.clear()

    def _socket(self, fam: int) -> socket.socket:
        sock = self._socks.get(fam)
        if sock is not None:
            return sock
        if fam not in self._icmplib:
            self._icmplib[fam] = ICMPv6Socket(privileged=self.privileged)
        sock = self._icmplib[fam].sock
        sock.setblocking(False)
        _big_receive_buffer(sock)
        if self._ancillary(fam):
            # The kernel strips the IP header (datagram sockets, and IPv6 always); it hands the TTL or hop
            # limit over as ancillary data when asked.
            if fam == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock, self._on_readable, fam, sock)
        self._socks[fam] = sock
        return sock

    async def echo(self, address: str, fam: int, count: int, interval_s: float, deadline: float) -> EchoStats:
        """Send ``count`` echo requests to ``address`` (canonical text form) ``interval_s`` apart and collect
        replies until all arrived or ``deadline`` (a ``time.perf_counter()`` value) passes."""
        sock = self._socket(fam)
        run = _Run(asyncio.get_running_loop().create_future())
        try:
            for i in range(count):
                if i:
                    await asyncio.sleep(interval_s)
                self._send(sock, fam, address, run)
            run.sending = False
            if run.waiting > 0:
                async with asyncio.timeout(max(0.0, deadline - time.perf_counter())):
                    await run.waiter
        except TimeoutError:
            pass
        finally:
            for key in run.keys:
                self._pending.pop(key, None)
        return run.stats

    def _send(self, sock: socket.socket, fam: int, address: str, run: _Run) -> None:
        self._seq = seq = (self._seq + 1) & 0xFFFF
        run.stats.sent += 1
        try:
            sock.sendto(self._packet(fam, seq), (address, 0))
        except BlockingIOError:
            return  # send queue full: the packet is lost, and counted as such
        except OSError as exc:
            run.stats.error = exc.strerror or str(exc)
            return
        key = (address, seq)
        self._pending[key] = (run, time.perf_counter())
        run.keys.append(key)
        run.waiting += 1

    def _packet(self, fam: int, seq: int) -> bytes:
        kind = _ECHO[fam][0]
        if fam == socket.AF_INET6 or not self.privileged:
            return struct.pack("!BBHHH", kind, 0, 0, self._ident, seq) + _PAYLOAD  # kernel fills checksum
        total = (kind << 8) + self._ident + seq + _PAYLOAD_SUM
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return struct.pack("!BBHHH", kind, 0, ~total & 0xFFFF, self._ident, seq) + _PAYLOAD

    def _ancillary(self, fam: int) -> bool:
        return fam == socket.AF_INET6 or not self.privileged

    def _on_readable(self, fam: int, sock: socket.socket) -> None:
        ancillary = self._ancillary(fam)
        for _ in range(4096):  # drain what is queued, bounded so one busy socket cannot starve the loop
            hop_limit = None
            try:
                if ancillary:
                    data, cmsgs, _flags, src = sock.recvmsg(2048, _CMSG_SPACE)
                    hop_limit = _hop_limit(cmsgs)
                else:
                    data, src = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._dispatch(fam, data, src[0], time.perf_counter(), hop_limit)

    def _dispatch(self, fam: int, data: bytes, source: str, now: float, hop_limit: int | None = None) -> None:
        raw_v4 = fam == socket.AF_INET and self.privileged
        off = (data[0] & 0x0F) * 4 if raw_v4 else 0
        if len(data) < off + 8:
            return
        kind = data[off]
        if kind == _ECHO[fam][1]:
            ident, seq = struct.unpack_from("!HH", data, off + 4)
            if self.privileged and ident != self._ident:
                return  # another process's ping
            entry = self._pending.pop((source, seq), None)
            if entry is not None:
                entry[0].stats.rtts.append(now - entry[1])
                entry[0].stats.hop_limit = data[8] if raw_v4 else hop_limit
                entry[0].settle()
        elif kind in _ERRORS[fam]:
            self._error(fam, data, off + 8, kind)

    def _error(self, fam: int, data: bytes, inner: int, kind: int) -> None:
        """An ICMP error quoting one of our requests: the target is unreachable (raw sockets only)."""
        if fam == socket.AF_INET:
            if len(data) < inner + 20:
                return
            dst, icmp = socket.inet_ntop(fam, data[inner + 16: inner + 20]), inner + (data[inner] & 0x0F) * 4
        else:
            dst, icmp = socket.inet_ntop(fam, data[inner + 24: inner + 40]), inner + 40
        if len(data) < icmp + 8 or data[icmp] != _ECHO[fam][0]:
            return
        ident, seq = struct.unpack_from("!HH", data, icmp + 4)
        entry = self._pending.pop((dst, seq), None) if ident == self._ident else None
        if entry is not None:
            entry[0].stats.error = _ERRORS[fam][kind]
            entry[0].settle()


_IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux's value; Python 3.11 does not name it
_CMSG_SPACE = socket.CMSG_SPACE(4)
_HOP_LIMIT_CMSGS = {(socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)}


def _hop_limit(cmsgs: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, value in cmsgs:
        if (level, kind) in _HOP_LIMIT_CMSGS and len(value) >= 4:
            return int.from_bytes(value[:4], sys.byteorder)
    return None


def _big_receive_buffer(sock: socket.socket) -> None:
    # A burst of thousands of replies must not overflow the default ~200 KiB buffer (that would be fake loss).
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
            return
        except OSError:
            continue
