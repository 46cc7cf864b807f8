"""The per-monitor exposition and the database-backed collectors."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dashboards.collectors import MetricsHub, flip_latency_families
from dashboards.metrics import ProbeExposition
from monitor.catalog import MonitorConfig
from monitor.models import Flip, Monitor, State
from monitor.policy import Policy
from monitor.runner import Latest
from probes import Outcome, ProbeResult


def _latest(n: int, *, down_every: int = 0, label_extra: str = "") -> dict[int, Latest]:
    out = {}
    for i in range(n):
        cfg = MonitorConfig(i, f"m{i}", "http", None, 60.0, Policy(),
                            {"monitor": f"m{i}{label_extra}", "service": f"s{i % 7}", "customer": f"c{i % 3}",
                             "location": "thr", "kind": "http", "instance": f"http://127.0.0.{i + 1}/"})
        down = bool(down_every) and i % down_every == 0
        result = ProbeResult(Outcome.DOWN if down else Outcome.UP, "ok", "", 0.01 * (i + 1))
        out[i] = Latest(cfg, result, State.DOWN if down else State.UP)
    return out


def _samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_the_exposition_is_valid_text_with_blackbox_names_and_our_labels():
    latest = _latest(5, down_every=2)
    samples = _samples(ProbeExposition(lambda: latest, lambda: 0.0).render().decode())
    key = tuple(sorted({"monitor": "m2", "service": "s2", "customer": "c2", "location": "thr",
                        "kind": "http", "instance": "http://127.0.0.3/"}.items()))
    assert samples[("probe_success", key)] == 0.0
    assert samples[("probe_duration_seconds", key)] == 0.03
    assert samples[("negahban_monitor_state", tuple(sorted((*key, ("state", "DOWN")))))] == 1.0
    assert samples[("negahban_monitors", (("state", "DOWN"),))] == 3.0
    assert samples[("negahban_monitors", (("state", "UP"),))] == 2.0
    assert samples[("negahban_monitors", (("state", "MAINTENANCE"),))] == 0.0


def test_label_values_with_quotes_backslashes_and_newlines_are_escaped():
    latest = _latest(1, label_extra='"x\\y\nz')
    families = list(text_string_to_metric_families(ProbeExposition(lambda: latest, lambda: 0).render().decode()))
    assert families[0].samples[0].labels["monitor"] == 'm0"x\\y\nz'


def test_the_text_is_cached_for_the_ttl_and_then_rendered_again():
    latest, mono = _latest(3), [100.0]
    expo = ProbeExposition(lambda: latest, lambda: mono[0], ttl_s=1.0)
    first = expo.render()
    latest[0] = _latest(1, down_every=1)[0]
    mono[0] += 0.5
    assert expo.render() == first and expo.renders == 1
    mono[0] += 0.6
    assert (b'probe_success{customer="c0",instance="http://127.0.0.1/",kind="http",location="thr",monitor="m0",'
            b'service="s0"} 0.0') in expo.render()
    assert expo.renders == 2


def test_an_empty_runner_renders_only_the_state_counts():
    samples = _samples(ProbeExposition(dict, lambda: 0.0).render().decode())
    assert {k[0] for k in samples} == {"negahban_monitors"}


async def test_detection_latency_and_waiting_flips_come_from_the_flips_table(sessionmaker, clock):
    now = clock.now()
    async with sessionmaker.begin() as s:
        m = Monitor(name="m", kind="http", target="http://127.0.0.1:9/")
        s.add(m)
        await s.flush()
        s.add_all([Flip(monitor_id=m.id, at=now - timedelta(seconds=30), old_state="UP", new_state="DOWN",
                        processed_at=now - timedelta(seconds=29.8)),
                   Flip(monitor_id=m.id, at=now - timedelta(seconds=20), old_state="DOWN", new_state="UP",
                        processed_at=now - timedelta(seconds=17)),
                   Flip(monitor_id=m.id, at=now - timedelta(seconds=12), old_state="UP", new_state="DOWN")])
    registry = CollectorRegistry()
    hub = MetricsHub(registry, sessionmaker, clock)
    hub.add("flips", flip_latency_families, ttl_s=10)
    await hub.refresh()
    get = registry.get_sample_value
    assert get("negahban_detection_latency_seconds_bucket", {"state": "DOWN", "le": "0.25"}) == 1.0
    assert get("negahban_detection_latency_seconds_bucket", {"state": "UP", "le": "2.0"}) == 0.0
    assert get("negahban_detection_latency_seconds_bucket", {"state": "UP", "le": "5.0"}) == 1.0
    assert get("negahban_flips_unprocessed") == 1.0
    assert get("negahban_flips_oldest_unprocessed_seconds") == 12.0
    assert b"negahban_detection_latency_seconds_count" in generate_latest(registry)


async def test_the_hub_queries_again_only_when_the_ttl_has_passed(sessionmaker, clock):
    calls = []

    async def gather(session, now):
        calls.append(now)
        return []

    hub = MetricsHub(CollectorRegistry(), sessionmaker, clock)
    hub.add("counting", gather, ttl_s=5)
    await hub.refresh()
    clock.advance(4)
    await hub.refresh()
    clock.advance(1)
    await hub.refresh()
    assert len(calls) == 2


async def test_a_failing_gather_keeps_its_old_figures_and_does_not_break_the_others(sessionmaker, clock):
    from prometheus_client.core import GaugeMetricFamily

    state = {"fail": False}

    async def flaky(session, now):
        if state["fail"]:
            raise RuntimeError("boom")
        g = GaugeMetricFamily("negahban_flaky", "x")
        g.add_metric([], 1.0)
        return [g]

    registry = CollectorRegistry()
    hub = MetricsHub(registry, sessionmaker, clock)
    hub.add("flaky", flaky, ttl_s=1)
    await hub.refresh()
    state["fail"] = True
    clock.advance(2)
    await hub.refresh()
    assert registry.get_sample_value("negahban_flaky") == 1.0
