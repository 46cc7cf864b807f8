"""Loopback targets for bench/engine_bench.py, run as a process of their own so their CPU is nobody's.

HTTP and TCP listeners on 0.0.0.0 bound to ``lo`` (SO_BINDTODEVICE): every 127.x.y.z address is a target
and nothing is reachable from outside. Prints ``http_port tcp_port`` when ready.
"""

from __future__ import annotations

import asyncio

# Run as a script: its own folder is on sys.path, so the probe benchmark's servers are shared, not copied.
from loopback_servers import Http, Tcp, listener


async def main() -> None:
    loop = asyncio.get_running_loop()
    socks = [listener(), listener()]
    servers = [await loop.create_server(Http, sock=socks[0]), await loop.create_server(Tcp, sock=socks[1])]
    print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
