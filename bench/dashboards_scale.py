"""The web side at 10,000 monitors, over HTTP on loopback against a real database:

* /metrics scrape (per-monitor series from 10,000 latest results, plus the database-backed collectors),
* the NOC first screen (the page and its first page of monitors; cold = inventory read from the database),
* a year-long customer uptime report (a service with two monitors and a year of flips every 6 hours, its
  server behind a switch that failed for 20 minutes every week: 58 shared incidents listing 25 servers).

Usage: ``python bench/dashboards_scale.py [DATABASE_URL]`` (default: a scratch SQLite file).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from all_models import load_all  # noqa: E402
from metrics_scrape import fake_latest  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from dashboards.collectors import MetricsHub, flip_latency_families  # noqa: E402
from dashboards.collectors_desk import desk_families  # noqa: E402
from dashboards.metrics import ProbeExposition  # noqa: E402
from dashboards.web.app import build_app  # noqa: E402
from dashboards.web.deps import WebDeps  # noqa: E402
from incidents.models import Incident, IncidentAffected  # noqa: E402
from monitor.accounts import Role, create_user, issue_token  # noqa: E402
from monitor.clock import ManualClock  # noqa: E402
from monitor.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from monitor.models import (  # noqa: E402
    Customer,
    Datacenter,
    Flip,
    Monitor,
    MonitorState,
    NetworkDevice,
    RollupArchive,
    Server,
    Service,
)
from monitor.rollups import DAY, HOUR, Bucket, month_index, pack  # noqa: E402

N = 10_000
NOW = datetime(2027, 3, 15, 8, 0, tzinfo=UTC)   # late in Jalali 1405


async def populate(sm) -> dict:
    async with sm.begin() as s:
        await s.execute(insert(Customer), [{"id": i + 1, "name": f"cust-{i}", "verified": True} for i in range(250)])
        await s.execute(insert(Datacenter), [{"id": i + 1, "name": f"dc{i}"} for i in range(3)])
        await s.execute(insert(NetworkDevice), [{"id": i + 1, "name": f"sw{i}", "kind": "switch",
                                                 "datacenter_id": i % 3 + 1} for i in range(100)])
        await s.execute(insert(Service), [{"id": i + 1, "name": f"svc-{i}", "customer_id": i // 10 + 1}
                                          for i in range(2500)])
        await s.execute(insert(Server), [{"id": i + 1, "name": f"srv-{i}", "address": f"10.{i // 250}.{i % 250}.1",
                                          "datacenter_id": i % 3 + 1, "parent_device_id": i % 100 + 1,
                                          "service_id": i + 1} for i in range(2500)])
        await s.execute(insert(Monitor), [{"id": i + 1, "name": f"mon-{i:05d}", "kind": "http",
                                           "target": f"http://10.0.0.{i % 250}/{i}", "service_id": i // 4 + 1,
                                           "server_id": i // 4 + 1} for i in range(N)])
        await s.execute(insert(MonitorState), [{"monitor_id": i + 1, "state": "DOWN" if i % 97 == 0 else "UP",
                                                "since": NOW} for i in range(N)])
        await _year_of_flips(s, [1, 2])
        await _year_of_rollups(s, [1, 2, 3, 4])
        await _weekly_switch_outages(s, device_id=1)
        noc = await create_user(s, "nora", Role.NOC)
        cust = await create_user(s, "alice", Role.CUSTOMER, customer_id=1)
        return {"noc": await issue_token(s, noc.id, "b", NOW), "customer": await issue_token(s, cust.id, "b", NOW)}


async def _year_of_flips(s, monitor_ids) -> None:
    rows, at = [], NOW - timedelta(days=400)
    for mid in monitor_ids:
        t, state = at, "UP"
        while t < NOW:
            rows.append({"monitor_id": mid, "at": t, "old_state": "DOWN" if state == "UP" else "UP",
                         "new_state": state, "processed_at": t})
            t += timedelta(hours=6) if state == "UP" else timedelta(minutes=3)
            state = "DOWN" if state == "UP" else "UP"
    await s.execute(insert(Flip), rows)


async def _weekly_switch_outages(s, device_id: int) -> None:
    """The switch in front of service 1's server fails for 20 minutes every week: its monitor's flips and one
    incident each, listing every server behind it (as the incident engine writes them)."""
    mid = N + 1
    await s.execute(insert(Monitor), [{"id": mid, "name": "sw-mgmt", "kind": "http", "target": "http://10.9.9.9/",
                                       "device_id": device_id}])
    behind = [i + 1 for i in range(2500) if i % 100 + 1 == device_id]
    flips, t = [{"monitor_id": mid, "at": NOW - timedelta(days=400), "old_state": "UNKNOWN", "new_state": "UP",
                 "processed_at": NOW}], NOW - timedelta(days=400, hours=-3)
    n = 0
    while t < NOW:
        end = t + timedelta(minutes=20)
        flips += [{"monitor_id": mid, "at": t, "old_state": "UP", "new_state": "DOWN", "processed_at": t},
                  {"monitor_id": mid, "at": end, "old_state": "DOWN", "new_state": "UP", "processed_at": end}]
        n += 1
        await s.execute(insert(Incident), [{"id": n, "dedup_key": f"monitor:{mid}", "source": "monitor",
                                            "severity": "urgent", "status": "resolved", "title": "sw-mgmt down",
                                            "monitor_id": mid, "opened_at": t, "resolved_at": end,
                                            "duration_s": 1200.0}])
        await s.execute(insert(IncidentAffected), [
            {"incident_id": n, "key": f"monitor:{mid}", "monitor_id": mid, "device_id": device_id, "added_at": t}]
            + [{"incident_id": n, "key": f"server:{srv}", "server_id": srv, "device_id": device_id,
                "service_id": srv, "customer_id": (srv - 1) // 10 + 1, "added_at": t} for srv in behind])
        t += timedelta(days=7)
    await s.execute(insert(Flip), flips)


async def _year_of_rollups(s, monitor_ids) -> None:
    """Daily rollup rows for 14 months and hourly rows for the last 90 days, as the engine keeps them."""
    end_day = int(NOW.timestamp()) // DAY
    periods = sorted({month_index(d)[0] for d in range(end_day - 430, end_day + 1)})
    day = Bucket(288, 287, 0, 1, 0.01, 288 * 0.05, 0.4)
    rows = [{"monitor_id": m, "resolution": DAY, "period": p, "slots": pack([day] * 31)}
            for m in monitor_ids for p in periods]
    rows += [{"monitor_id": m, "resolution": HOUR, "period": d, "slots": pack([Bucket(12, 12, 0, 0, 0.01, 0.6, 0.1)] * 24)}
             for m in monitor_ids for d in range(end_day - 90, end_day + 1)]
    await s.execute(insert(RollupArchive), rows)


async def timed(client, path, headers, n) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        resp = await client.get(path, headers=headers)
        await resp.read()
        assert resp.status == 200, (path, resp.status)
        out.append((time.perf_counter() - t) * 1000)
    return out


def fmt(name: str, values: list[float], target: float | None = None) -> str:
    tail = f" (target <= {target:g})" if target else ""
    return f"{name} first={values[0]:.1f} median={statistics.median(values):.1f} max={max(values):.1f}{tail}"


async def main(url: str | None) -> None:
    load_all()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite+aiosqlite:///{tmp}/bench.db")
        await upgrade(engine)
        sm = make_sessionmaker(engine)
        tokens = await populate(sm)
        clock = ManualClock(NOW)
        registry = CollectorRegistry()
        hub = MetricsHub(registry, sm, clock)
        hub.add("flips", flip_latency_families)
        hub.add("desk", desk_families)
        latest = fake_latest(N)
        runner = type("R", (), {"latest": latest})()
        deps = WebDeps(sessionmaker=sm, clock=clock, registry=registry, services={"runner": runner},
                       probe_exposition=ProbeExposition(lambda: latest, time.monotonic, ttl_s=0.0), metrics_hub=hub)
        noc = {"Authorization": f"Bearer {tokens['noc']}"}
        cust = {"Authorization": f"Bearer {tokens['customer']}"}
        async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
            print(f"database={engine.dialect.name} monitors={N}")
            print(fmt("scrape_ms", await timed(client, "/metrics", noc, 5), 150))
            first_screen = []
            for _ in range(5):
                t = time.perf_counter()
                await timed(client, "/noc", noc, 1)
                await timed(client, "/api/v1/noc/monitors?page=1&per_page=200", noc, 1)
                first_screen.append((time.perf_counter() - t) * 1000)
            print(fmt("noc_first_screen_ms", first_screen, 1000) + " (first = inventory read from the database)")
            print(fmt("noc_search_ms", await timed(client, "/api/v1/noc/monitors?q=mon-0999&group=customer", noc, 5)))
            jy = 1405
            print(fmt("year_report_ms", await timed(client, f"/portal/services/1/report?year={jy}", cust, 5), 200))
            print(fmt("month_report_ms", await timed(client, f"/portal/services/1/report?month={jy}-12", cust, 5)))
            print(fmt("portal_home_ms", await timed(client, "/portal", cust, 3)))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
