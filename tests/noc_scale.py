"""10,000 monitors for the NOC wall, written with bulk inserts (as bench/dashboards_scale.py does): 250
customers, 3 datacenters, 100 switches, 2,500 services and servers, four monitors each; a few DOWN and
DEGRADED with open incidents, and the runner's live states (with reasons) for the failing ones. Shared by
tests/test_noc_at_scale.py and bench/noc_wall.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert

from incidents.models import Incident
from monitor.accounts import Role, create_user
from monitor.models import Customer, Datacenter, Monitor, MonitorState, NetworkDevice, Server, Service, State
from probes.base import Outcome, ProbeResult

__all__ = ["populate", "LiveState", "DOWN_EVERY", "DEGRADED_EVERY"]

DOWN_EVERY, DEGRADED_EVERY = 500, 700


class LiveState:
    """What the runner keeps per monitor (``Latest``): the state and the newest result."""

    __slots__ = ("state", "result")

    def __init__(self, state: State, result: ProbeResult) -> None:
        self.state, self.result = state, result


def _state(i: int) -> str:
    if i % DOWN_EVERY == 0:
        return "DOWN"
    if i % DEGRADED_EVERY == 0:
        return "DEGRADED"
    return "UP"


async def populate(sm, now: datetime, n: int = 10_000) -> dict:
    """Write the inventory; return the monitors' ids by state, the open incidents and the live states."""
    async with sm.begin() as s:
        await s.execute(insert(Customer), [{"id": i + 1, "name": f"cust-{i}", "display_name": f"مشتری {i}",
                                            "verified": True} for i in range(250)])
        await s.execute(insert(Datacenter), [{"id": i + 1, "name": name} for i, name in
                                             enumerate(("afranet", "asiatech", "shatel"))])
        await s.execute(insert(NetworkDevice), [{"id": i + 1, "name": f"thr-sw-{i}", "kind": "switch",
                                                 "datacenter_id": i % 3 + 1} for i in range(100)])
        await s.execute(insert(Service), [{"id": i + 1, "name": f"svc-{i}", "customer_id": i // 10 + 1}
                                          for i in range(2500)])
        await s.execute(insert(Server), [{"id": i + 1, "name": f"srv-{i}", "address": f"10.{i // 250}.{i % 250}.1",
                                          "datacenter_id": i % 3 + 1, "parent_device_id": i % 100 + 1,
                                          "service_id": i + 1} for i in range(2500)])
        await s.execute(insert(Monitor), [{"id": i + 1, "name": f"mon-{i:05d}", "kind": "http",
                                           "target": f"http://10.0.0.{i % 250}/{i}", "service_id": i // 4 + 1,
                                           "server_id": i // 4 + 1} for i in range(n)])
        await s.execute(insert(MonitorState), [{"monitor_id": i + 1, "state": _state(i),
                                                "since": now - timedelta(minutes=(i * 7) % 600 + 1)}
                                               for i in range(n)])
        down = [i + 1 for i in range(n) if _state(i) == "DOWN"]
        degraded = [i + 1 for i in range(n) if _state(i) == "DEGRADED"]
        await s.execute(insert(Incident), [
            {"id": k + 1, "dedup_key": f"monitor:{mid}", "open_key": f"monitor:{mid}", "source": "monitor",
             "severity": "urgent" if k % 3 else "important", "status": "triggered" if k % 2 else "acknowledged",
             "title": f"mon-{mid - 1:05d} is DOWN", "monitor_id": mid, "service_id": (mid - 1) // 4 + 1,
             "customer_id": (mid - 1) // 40 + 1, "opened_at": now - timedelta(minutes=((mid - 1) * 7) % 600)}
            for k, mid in enumerate(down)])
        await create_user(s, "nora", Role.NOC, password="nora-pass-1")
    live = {mid: LiveState(State.DOWN, ProbeResult(Outcome.DOWN, "status_mismatch", "HTTP 503", 0.12))
            for mid in down}
    live.update({mid: LiveState(State.DEGRADED, ProbeResult(Outcome.DEGRADED, "latency", "slow answer", 2.4))
                 for mid in degraded})
    up = [i + 1 for i in range(n) if _state(i) == "UP"]
    return {"down": down, "degraded": degraded, "up": up, "live": live, "n": n}
