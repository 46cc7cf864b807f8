"""Scrape time of /metrics' per-monitor series at 10,000 monitors, against prometheus_client's own path.

``--sizes 10000,50000`` (only that part; default after the figures below: 10,000): the whole /metrics scrape
as the route ran it before ``dashboards.metrics_page`` (``generate_latest`` of the registry on the loop, the
per-monitor part in a thread with its own cache) and as it runs now (``MetricsPage``: one render off the loop per
cache interval); per scrape its time, the longest gap of a 1 ms ticker, the service's own loop-lag maximum
(``monitor.looplag``) and the full garbage collections that ran inside it; and ten concurrent scrapes.

Prints: render time and size of our exposition with blackbox_exporter's full family set (cold, i.e. no cache; and
cached), prometheus_client's generate_latest over an equivalent Collector of the three basic families (the peer
the skeleton had), their ratio, the longest event-loop stall seen by a 1 ms ticker while scrapes run (what
probing would feel), and blackbox_exporter's own cost per target scraped through its /probe (CPU and bytes per
answer, measured in the same run against a loopback HTTP target) beside ours per monitor.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

from dashboards.metrics import LABELS, ProbeExposition  # noqa: E402
from dashboards.metrics_page import MetricsPage  # noqa: E402
from monitor.catalog import MonitorConfig  # noqa: E402
from monitor.clock import SystemClock  # noqa: E402
from monitor.looplag import LoopLag  # noqa: E402
from monitor.models import State  # noqa: E402
from monitor.policy import Policy  # noqa: E402
from monitor.runner import Latest  # noqa: E402
from probes import Outcome, ProbeResult  # noqa: E402

N = 10_000


_CERT = {"fingerprint_sha256": "ab" * 32, "subject": "CN=shop.example", "issuer": "CN=R11,O=Let's Encrypt,C=US",
         "subjectalternative": "shop.example,www.shop.example", "serialnumber": "04a1b2c3d4e5f60718293a4b5c6d7e8f"}


def _result(kind: str, i: int) -> ProbeResult:
    """What a check of each kind leaves: the phases and details the blackbox families are rendered from."""
    up = bool(i % 50)
    address = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
    phases, details = {"resolve": 0.0004, "connect": 0.002}, {"address": address}
    if kind == "http":
        phases.update(tls=0.01, processing=0.02, transfer=0.001)
        details.update(status_code=200 if up else 503, http_version="1.1", ssl=True, content_length=2048,
                       body_length=2048, redirects=0, tls_version="TLSv1.3", tls_cipher="TLS_AES_128_GCM_SHA256",
                       cert_not_after_ts=1.8e9 + i, cert=_CERT, last_modified_ts=1.7e9)
    elif kind == "dns":
        phases = {"resolve": 0.0, "connect": 0.0, "request": 0.003}
        details.update(rcode="NOERROR", answer_rrs=2, authority_rrs=0, additional_rrs=1)
    elif kind == "icmp":
        phases = {"resolve": 0.0, "rtt_avg": 0.004, "rtt_min": 0.003, "rtt_max": 0.005, "loss": 0.0}
        details.update(sent=3, received=3 if up else 0)
    return ProbeResult(Outcome.UP if up else Outcome.DOWN, "ok", "", 0.001 * (i % 900), phases, details)


def fake_latest(n: int) -> dict[int, Latest]:
    out = {}
    for i in range(n):
        kind = ("http", "tcp", "icmp", "dns")[i % 4]
        labels = {"monitor": f"mon-{i:05d}", "service": f"svc-{i // 4}", "customer": f"cust-{i // 40}",
                  "location": f"dc{i % 3}", "kind": kind, "instance": f"https://site-{i}.example/"}
        cfg = MonitorConfig(i, labels["monitor"], kind, None, 60.0, Policy(), labels)
        out[i] = Latest(cfg, _result(kind, i), State.UP if i % 50 else State.DOWN)
    return out


BLACKBOX = Path("/usr/bin/prometheus-blackbox-exporter")


async def blackbox_per_probe(scrapes: int = 300) -> tuple[float, float] | None:
    """blackbox_exporter's CPU (ms) and answer size (bytes) per /probe of a loopback HTTP target: what a
    Prometheus job pays per target scraped through it, to set beside our render cost per monitor."""
    import os
    import socket
    import subprocess
    import tempfile

    import aiohttp
    from aiohttp import web

    if not BLACKBOX.exists():  # noqa: ASYNC240 - once, before anything runs
        return None
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="x" * 2048))
    target = web.AppRunner(app, access_log=None)
    await target.setup()
    await web.TCPSite(target, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{target.addresses[0][1]}/"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tick = os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "blackbox.yml"
        cfg.write_text("modules: {http: {prober: http, http: {preferred_ip_protocol: ip4}}}\n")
        proc = subprocess.Popen([str(BLACKBOX), f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",  # noqa: ASYNC220
                                 "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick

        try:
            async with aiohttp.ClientSession() as http:
                probe = f"http://127.0.0.1:{port}/probe?module=http&target={url}"
                for _ in range(100):  # bounded wait for the exporter to listen
                    try:
                        async with http.get(probe) as resp:
                            await resp.read()
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
                before, size = cpu(), 0
                for _ in range(scrapes):
                    async with http.get(probe) as resp:
                        size = len(await resp.read())
                used = cpu() - before
        finally:
            proc.terminate()
            proc.wait(10)
            await target.cleanup()
    return used * 1000 / scrapes, float(size)


class PeerCollector:
    """What the skeleton had: a prometheus_client Collector over the same data."""

    def __init__(self, latest):
        self.latest = latest

    def collect(self):
        s = GaugeMetricFamily("probe_success", "x", labels=LABELS)
        d = GaugeMetricFamily("probe_duration_seconds", "x", labels=LABELS)
        st = GaugeMetricFamily("negahban_monitor_state", "x", labels=(*LABELS, "state"))
        for item in self.latest.values():
            v = [item.config.labels[k] for k in LABELS]
            s.add_metric(v, 0.0 if item.result.outcome is Outcome.DOWN else 1.0)
            d.add_metric(v, item.result.latency_s)
            st.add_metric([*v, str(item.state)], 1.0)
        yield from (s, d, st)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def loop_stall(expo: ProbeExposition | None, scrapes: int) -> float:
    """Longest gap of a 1 ms ticker while ``scrapes`` cold renders (as /metrics runs them) run."""
    worst, stop = 0.0, asyncio.Event()

    async def ticker():
        nonlocal worst
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(ticker())
    for _ in range(scrapes):
        await asyncio.sleep(0.01)
        if expo is not None:
            expo._cached = None
            await expo.render_async()
    stop.set()
    await task
    return worst * 1000


class _Ticker:
    """The longest gap of a 1 ms sleep loop between ``mark()`` and ``worst()``."""

    def __init__(self) -> None:
        self._worst, self._stop, self._task = 0.0, False, None

    async def __aenter__(self):
        async def run():
            last = time.perf_counter()
            while not self._stop:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                self._worst = max(self._worst, now - last)
                last = now
        self._task = asyncio.create_task(run())
        await asyncio.sleep(0.005)
        return self

    def mark(self) -> None:
        self._worst = 0.0

    def worst_ms(self) -> float:
        return self._worst * 1000

    async def __aexit__(self, *exc):
        self._stop = True
        await self._task


class _FullCollections:
    """Durations (ms) of generation-2 garbage collections since ``mark()``."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase, info):
        if info["generation"] == 2:
            if phase == "start":
                self._started = time.perf_counter()
            else:
                self.pauses.append((time.perf_counter() - self._started) * 1000)

    def mark(self) -> None:
        self.pauses = []

    def close(self) -> None:
        gc.callbacks.remove(self._cb)


async def scrape_paths(n: int, scrapes: int = 6) -> None:
    """Old route against ``MetricsPage`` at ``n`` monitors (1/4 re-checked between scrapes), same process."""
    latest, fresh = fake_latest(n), fake_latest(n)
    registry = CollectorRegistry()
    lag = LoopLag(registry)
    lag.start()
    expo = ProbeExposition(lambda: latest, time.monotonic, ttl_s=1.0)
    expo.render()  # label texts escaped once, as after the service's first scrape
    page = MetricsPage(registry, SystemClock(), expo, None, ttl_s=2.0)
    step = [0]

    def recheck():
        for i in range(step[0] % 4, n, 4):
            latest[i], fresh[i] = fresh[i], latest[i]
        step[0] += 1

    async def old_route() -> bytes:  # dashboards/web/app.py's metrics() before metrics_page
        body = generate_latest(registry)
        return await expo.render_async() + body

    async def new_route() -> tuple[bytes, ...]:  # the route writes the pieces as they are, never joined
        return await page.chunks()

    def expire():
        expo._cached = None
        page._cached = None

    collections = _FullCollections()
    gc_full_ms = timed(gc.collect, 3)
    async with _Ticker() as ticker:
        for name, route in (("old", old_route), ("new", new_route)):
            took, stalls, lags, gcs = [], [], [], []
            for _ in range(scrapes):
                recheck()
                expire()
                await asyncio.sleep(0.12)  # a loop-lag wake between scrapes; the window starts clean
                list(lag.window.collect())
                ticker.mark()
                collections.mark()
                t = time.perf_counter()
                body = await route()
                took.append((time.perf_counter() - t) * 1000)
                await asyncio.sleep(0.11)  # the lag monitor's next wake falls after the scrape
                stalls.append(ticker.worst_ms())
                lags.append(lag.window.peek() * 1000)
                gcs.extend(collections.pauses)
            recheck()
            expire()
            renders = page.renders
            ticker.mark()
            t = time.perf_counter()
            bodies = await asyncio.gather(*(route() for _ in range(10)))
            ten_ms = (time.perf_counter() - t) * 1000
            ten_stall = ticker.worst_ms()
            extra = f" renders={page.renders - renders}" if name == "new" else ""
            extra += f" distinct_bodies={len(set(bodies))}"
            size = len(body) if isinstance(body, bytes) else sum(len(c) for c in body)
            print(f"monitors={n} route={name} bytes={size} scrape_ms median={statistics.median(took):.0f} "
                  f"max={max(took):.0f}; loop_stall_ms (1 ms ticker) median={statistics.median(stalls):.0f} "
                  f"max={max(stalls):.0f}; looplag_max_ms max={max(lags):.0f}; full_gc_in_scrapes={len(gcs)} "
                  f"longest_ms={max(gcs, default=0):.0f}; ten_concurrent_ms={ten_ms:.0f} "
                  f"stall_ms={ten_stall:.0f}{extra}")
    collections.close()
    await lag.stop()
    print(f"monitors={n} gc.collect() of everything (ms) median={statistics.median(gc_full_ms):.0f} "
          f"(objects tracked: {len(gc.get_objects())})")


def main() -> None:
    if "--sizes" in sys.argv:
        for n in (int(x) for x in sys.argv[sys.argv.index("--sizes") + 1].split(",")):
            asyncio.run(scrape_paths(n))
        return
    figures()
    asyncio.run(scrape_paths(N))


def figures() -> None:
    latest = fake_latest(N)
    expo = ProbeExposition(lambda: latest, time.monotonic, ttl_s=1.0)
    expo.render()  # label texts are built once per monitor config

    fresh = fake_latest(N)  # other Latest objects with the same content: what a check leaves behind

    def rechecked(fraction: float):
        # Monitors checked since the last scrape get new Latest objects (60 s interval, 15 s scrapes: 1/4).
        step = max(1, round(1 / fraction))
        offset = rechecked.round % step
        rechecked.round += 1
        for i in range(offset, N, step):
            latest[i], fresh[i] = fresh[i], latest[i]

        def run():
            expo._cached = None
            expo.render()
        return run

    rechecked.round = 0

    def scrape(fraction):
        out = []
        for _ in range(8):
            run = rechecked(fraction)
            out.extend(timed(run, 1))
        return out

    ours = scrape(0.25)
    everything = scrape(1.0)
    cached = timed(expo.render, 10)
    registry = CollectorRegistry()
    registry.register(PeerCollector(latest))
    peer = timed(lambda: generate_latest(registry), 3)
    first = ProbeExposition(lambda: latest, time.monotonic)
    first_ms = timed(first.render, 1)[0]
    stall = asyncio.run(loop_stall(expo, 5))
    baseline = asyncio.run(loop_stall(None, 5))
    body = expo.render()
    series = body.count(b"\n")
    print(f"monitors={N} lines={series} bytes={len(body)} ({len(body) / N:.0f} per monitor, full blackbox family set)")
    print(f"scrape_render_ms (1/4 of monitors re-checked since the last scrape) median={statistics.median(ours):.1f}"
          f" max={max(ours):.1f} (target <= 150)")
    print(f"scrape_render_all_rechecked_ms median={statistics.median(everything):.1f} max={max(everything):.1f}")
    print(f"scrape_render_first_ever_ms={first_ms:.1f} (labels escaped on the first scrape)")
    print(f"scrape_cached_ms median={statistics.median(cached):.3f}")
    print(f"peer_generate_latest_ms median={statistics.median(peer):.1f}")
    print(f"ratio_peer_over_ours={statistics.median(peer) / statistics.median(ours):.1f}x "
          f"(all re-checked: {statistics.median(peer) / statistics.median(everything):.1f}x)")
    print(f"max_event_loop_stall_during_scrapes_ms={stall:.1f} (same ticker without scrapes: {baseline:.1f})")
    peer_probe = asyncio.run(blackbox_per_probe())
    if peer_probe is None:
        print("blackbox_exporter not installed: no per-probe peer")
    else:
        cpu_ms, size = peer_probe
        ours_ms = statistics.median(ours) / N
        print(f"blackbox_exporter_per_probe cpu_ms={cpu_ms:.3f} answer_bytes={size:.0f}; ours per monitor in a "
              f"scrape render_ms={ours_ms:.4f} bytes={len(body) / N:.0f}; ratio blackbox/ours cpu="
              f"{cpu_ms / ours_ms:.0f}x")


if __name__ == "__main__":
    main()
