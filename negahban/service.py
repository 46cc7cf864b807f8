"""The composition root: the one function that builds the running service from settings.

It is the only place (with ``negahban.cli``) that imports every package, and it passes collaborators in:
session factory, clock, probe context, metrics registry.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from dataclasses import dataclass, field, replace

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from dashboards.blackbox_modules import load_modules, parse_networks
from dashboards.collectors import MetricsHub, flip_latency_families, refreshing
from dashboards.collectors_desk import desk_families
from dashboards.collectors_incidents import incident_families, outbox_families
from dashboards.collectors_ledger import ledger_families
from dashboards.metrics import ProbeExposition
from dashboards.noc import NocIndex, StateFeed
from dashboards.web.api_agents import INGEST
from dashboards.web.app import build_app
from dashboards.web.deps import DEPS, Company, WebDeps, parse_channels
from dashboards.web.heartbeat_routes import ping_limits
from incidents.alertmanager import RECEIVER_WORKER, AlertmanagerConfig
from incidents.channel_config import ChannelSpec, parse_notification_channels, sync_channels
from incidents.engine import EngineConfig
from incidents.escalation_policy import EscalationConfig, parse_escalation
from incidents.messengers import BaleNotifier, TelegramNotifier
from incidents.models import NotificationChannel
from incidents.notifiers import EmailNotifier, Notifier, WebhookNotifier
from incidents.pagerduty import PagerDutyNotifier
from incidents.signed_webhook import SignedWebhookNotifier
from incidents.sms import GhasedakNotifier, HttpSmsNotifier, KavenegarNotifier
from incidents.statuspage.fanout import WEBHOOK_KIND
from incidents.statuspage.maintenance_notices import MaintenanceNotices
from incidents.statuspage.webhooks import StatusWebhookNotifier
from incidents.workers import IncidentWorkers, PeriodicConfig
from monitor.agents import Ingest
from monitor.clock import Clock, SystemClock
from monitor.db import make_engine, make_sessionmaker, upgrade
from monitor.errors import InvalidInput, SettingsError
from monitor.heartbeat_service import HeartbeatService
from monitor.inventory import apply_inventory, load_inventory
from monitor.leases import SINGLETONS, Cluster, exclusive, one_at_a_time
from monitor.looplag import LoopLag, freeze_long_lived
from monitor.maintenance import in_maintenance
from monitor.retention import Retention, catch_up, housekeeping_loops
from monitor.runner import Runner
from monitor.scheduler import Scheduler
from monitor.selfcheck import ensure_selfcheck
from monitor.settings import Settings
from monitor.store import ResultStore
from monitor.work import Loop, WorkerFailures
from probes import ProbeContext, make_context
from probes.allow import parse_networks as parse_allow
from tickets.auto_ticketing import AutoTicketer
from tickets.ledger.metrics import register_ledger_collector

__all__ = ["Service", "build_service", "configured_channels", "configured_escalation"]

log = logging.getLogger("negahban.service")


@dataclass
class Service:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker
    clock: Clock
    registry: CollectorRegistry
    probe_ctx: ProbeContext
    runner: Runner
    scheduler: Scheduler
    app: web.Application
    site_runner: web.AppRunner | None = None
    extras: dict = field(default_factory=dict)
    failures: WorkerFailures = field(default_factory=WorkerFailures)

    def loops(self) -> list[Loop]:
        """Every background loop this service runs, by name: the one list ``start`` starts them from (so a
        loop cannot run without being named here, and tests/test_worker_loops.py poisons each by name)."""
        out: list[Loop] = []
        if self.settings.run_scheduler:
            out += self.scheduler.loops()
            out += housekeeping_loops(self.sessionmaker, self.clock,
                                      Retention(raw_s=self.settings.raw_result_days * 86400), self.failures)
        ingest = self.app[DEPS].services.get(INGEST)
        if self.settings.run_scheduler and self.settings.node_name and ingest is not None:
            # Several nodes: agents' results another node took, voted here for this node's monitors.
            out.append(Loop("location_inbox", ingest.inbox, every_s=1.0))
        if self.settings.run_scheduler and "heartbeats" in self.extras:
            # Late heartbeats are found by this sweep (pings themselves arrive over HTTP).
            out.append(Loop("heartbeat_sweep", self.extras["heartbeats"].sweep,
                            every_s=self.settings.heartbeat_sweep_seconds))
        if "incidents" in self.extras:
            out += self.extras["incidents"].loops()
        names = [loop.name for loop in out]
        if len(set(names)) != len(names):
            raise ValueError(f"two loops share a name: {sorted(names)}")
        if self.settings.node_name:  # jobs that must run on one node at a time
            out = [replace(loop, run_pass=exclusive(self.engine, loop.name, loop.run_pass))
                   if loop.name in SINGLETONS and loop.task is None else loop for loop in out]
        return out

    def worker_names(self) -> set[str]:
        """Every ``worker`` label of ``negahban_worker_item_failures_total`` (the loops' and the receiver's)."""
        return {w for loop in self.loops() for w in loop.worker_names} | {RECEIVER_WORKER}

    async def start(self) -> None:
        loops = self.loops()
        if "loop_lag" in self.extras:  # first, so a slow start shows in the lag too
            self.extras["loop_lag"].start()
        if self.settings.run_scheduler:
            await catch_up(self.sessionmaker, self.clock.now(), self.failures)
            await self.scheduler.start([loop for loop in loops if loop.task is None])
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(self.scheduler.reload(force=True)))
        if "incidents" in self.extras:
            self.extras["incidents"].start([loop for loop in loops if loop.task is not None])
        # A request line may carry a /probe target of 2,048 characters, percent-encoded (up to 12 bytes each).
        self.site_runner = web.AppRunner(self.app, handle_signals=False, max_line_size=32768)
        await self.site_runner.setup()
        site = web.TCPSite(self.site_runner, self.settings.listen_host, self.settings.listen_port)
        await site.start()
        # Pings sent before this could not be heard (see monitor.heartbeat.deadline).
        self.extras["heartbeats"].listening()
        self.app[DEPS].ready["ready"] = True
        # Full collections stall the loop for their whole length (bench/gc_pauses.py, bench/README.md). Freeze
        # what start-up built, and again after each reload that changed the catalog (the one place long-lived
        # objects are replaced in bulk): a full collection then walks ~4.4 objects per monitor instead of ~21-34
        # (at 50,000 monitors 685 -> 199 ms CPU each). And run one after 100 collections of generation 1
        # instead of 10: at 50,000 monitors 11 -> 1 full collections in 90 s, loop-lag p99 178 -> 15 ms, check
        # lateness p99 233 -> 16 ms, RSS unchanged (400-411 MB). Both are undone by stop().
        self.extras["gc_threshold"] = gc.get_threshold()
        gc.set_threshold(*self.extras["gc_threshold"][:2], 100)
        frozen = freeze_long_lived()
        self.scheduler.on_reload(freeze_long_lived)
        log.info("gc_frozen objects=%s", frozen)
        log.info("started listen=%s:%s database=%s", self.settings.listen_host, self.settings.listen_port,
                 self.engine.url.render_as_string(hide_password=True))

    async def stop(self) -> None:
        """Stop taking new work, let in-flight checks finish within their timeout, then close."""
        log.info("stopping")
        if self.settings.run_scheduler:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await self.scheduler.shutdown()
        await self.runner.drain()
        await self.runner.flush()
        if self.scheduler.cluster is not None:
            try:  # the others take this node's monitors at once instead of after a lease
                await self.scheduler.cluster.leave()
            except Exception:
                log.exception("leases_not_released node=%s", self.settings.node_name)
        if "incidents" in self.extras:
            await self.extras["incidents"].stop()
        if self.site_runner:
            await self.site_runner.cleanup()
        await self.probe_ctx.close()
        if "loop_lag" in self.extras:
            await self.extras["loop_lag"].stop()
        if "http" in self.extras:
            await self.extras["http"].close()
        status_webhooks = self.extras["incidents"].dispatcher.notifiers.get(WEBHOOK_KIND) \
            if "incidents" in self.extras else None
        if status_webhooks is not None:
            await status_webhooks.close()
        if self.extras.get("incident_db") not in (None, self.engine):
            await self.extras["incident_db"].dispose()
        await self.engine.dispose()
        gc.unfreeze()  # what this service froze is collectable again (a process that goes on, e.g. tests)
        if "gc_threshold" in self.extras:
            gc.set_threshold(*self.extras.pop("gc_threshold"))
        log.info("stopped")


def _outbound_http() -> aiohttp.ClientSession:
    """The session for notifications and Alertmanager calls (probes have their own connections)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                 timeout=aiohttp.ClientTimeout(total=30))


def _secret(value) -> str:
    return value.get_secret_value() if value is not None else ""


def _notifiers(settings: Settings, http: aiohttp.ClientSession, clock: Clock) -> dict[str, Notifier]:
    """One notifier per channel kind that is configured; a channel of a kind missing here fails its notices
    with "no notifier for kind ..." (visible on the notification row)."""
    s = settings
    signing = _secret(s.webhook_signing_secret)
    notifiers: dict[str, Notifier] = {
        "webhook": SignedWebhookNotifier(http, signing, clock.now) if signing else WebhookNotifier(http),
        "email": EmailNotifier(s.smtp_host, s.smtp_port, s.smtp_sender, username=s.smtp_username,
                               password=s.smtp_password, starttls=s.smtp_starttls),
        "pagerduty": PagerDutyNotifier(http, base_url=s.pagerduty_events_url, source=s.pagerduty_source)}
    if signing:  # status-page webhooks: each subscription signed with its own key derived from this one
        notifiers[WEBHOOK_KIND] = StatusWebhookNotifier(signing, parse_allow(s.status_webhook_allow), clock.now)
    if s.sms_gateway_url:
        notifiers["sms"] = HttpSmsNotifier(http, s.sms_gateway_url, method=s.sms_method, encoding=s.sms_encoding,
                                           to_field=s.sms_to_field, text_field=s.sms_text_field,
                                           max_parts=s.sms_max_parts)
    if s.kavenegar_api_key:
        notifiers["kavenegar"] = KavenegarNotifier(http, _secret(s.kavenegar_api_key), sender=s.kavenegar_sender,
                                                   base_url=s.kavenegar_url, max_parts=s.sms_max_parts)
    if s.ghasedak_api_key:
        notifiers["ghasedak"] = GhasedakNotifier(http, _secret(s.ghasedak_api_key),
                                                 line_number=s.ghasedak_line_number, base_url=s.ghasedak_url,
                                                 max_parts=s.sms_max_parts)
    if s.telegram_bot_token:
        notifiers["telegram"] = TelegramNotifier(http, _secret(s.telegram_bot_token), base_url=s.telegram_api_url)
    if s.bale_bot_token:
        notifiers["bale"] = BaleNotifier(http, _secret(s.bale_bot_token), base_url=s.bale_api_url)
    return notifiers


def configured_channels(settings: Settings) -> list[ChannelSpec]:
    """The channels the settings name; a bad entry is a ``SettingsError`` naming the variable and field."""
    try:
        return parse_notification_channels(settings.notification_channels)
    except InvalidInput as exc:
        raise SettingsError(f"NEGAHBAN_NOTIFICATION_CHANNELS: {exc}") from None


async def _configured_channels(settings: Settings, sm: async_sessionmaker) -> None:
    try:
        await sync_channels(sm, configured_channels(settings))
    except InvalidInput as exc:  # a customer the database does not know
        raise SettingsError(f"NEGAHBAN_NOTIFICATION_CHANNELS: {exc}") from None


def configured_escalation(settings: Settings) -> EscalationConfig:
    """The escalation policies and rotations the settings name; a bad entry is a ``SettingsError``."""
    try:
        return parse_escalation(settings.escalation_policies)
    except InvalidInput as exc:
        raise SettingsError(f"NEGAHBAN_ESCALATION_POLICIES: {exc}") from None


def _trusted_cas(settings: Settings) -> str | None:
    """The extra CAs of NEGAHBAN_TRUST_CA_FILE, checked now so a bad file stops start-up with one line."""
    if settings.trust_ca_file is None:
        return None
    try:
        pem = settings.trust_ca_file.read_text(encoding="ascii")
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except (OSError, UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
        raise SettingsError(f"NEGAHBAN_TRUST_CA_FILE={settings.trust_ca_file}: not a readable PEM file of "
                            f"certificates ({exc})") from None
    return pem


async def _checked_escalation(settings: Settings, sm: async_sessionmaker) -> EscalationConfig:
    """The escalation settings, once every channel they name exists (a page must not go to a typo)."""
    config = configured_escalation(settings)
    async with sm() as session:
        known = set((await session.execute(select(NotificationChannel.name))).scalars())
    missing = sorted(config.channel_names() - known)
    if missing:
        raise SettingsError(f"NEGAHBAN_ESCALATION_POLICIES: no notification channel named {', '.join(missing)}")
    return config


def _incident_workers(settings: Settings, sm: async_sessionmaker, clock: Clock, http: aiohttp.ClientSession,
                      registry: CollectorRegistry, failures: WorkerFailures,
                      escalation: EscalationConfig) -> IncidentWorkers:
    alertmanager = AlertmanagerConfig(severity_label=settings.alertmanager_severity_label,
                                      service_label=settings.alertmanager_service_label,
                                      url=settings.alertmanager_url)
    return IncidentWorkers(sm, clock, http, _notifiers(settings, http, clock), alertmanager=alertmanager,
                           engine=EngineConfig(recovery_hold_s=settings.incident_recovery_hold_seconds),
                           periodic=PeriodicConfig(escalation_policy=settings.escalation_policy,
                                                   escalation=escalation,
                                                   maintenance_notices=MaintenanceNotices(
                                                       channels=tuple(parse_channels(settings.support_channels)))),
                           registry=registry, in_maintenance=in_maintenance, failures=failures)


def _probe_endpoint(settings: Settings) -> tuple[dict, list]:
    """The /probe endpoint's modules and allowed networks; a bad file or network stops the start, named."""
    try:
        modules = load_modules(settings.blackbox_config) if settings.blackbox_config else {}
        return modules, parse_networks(settings.probe_allow)
    except InvalidInput as exc:
        where = "NEGAHBAN_PROBE_ALLOW" if exc.field == "NEGAHBAN_PROBE_ALLOW" else \
            f"NEGAHBAN_BLACKBOX_CONFIG={settings.blackbox_config}: {exc.field}"
        raise SettingsError(f"{where}: {exc.reason}") from None
    except OSError as exc:
        raise SettingsError(f"NEGAHBAN_BLACKBOX_CONFIG={settings.blackbox_config}: {exc.strerror or exc}") from None


async def build_service(settings: Settings, clock: Clock | None = None,
                        registry: CollectorRegistry | None = None) -> Service:
    clock = clock or SystemClock()
    registry = registry if registry is not None else CollectorRegistry()
    trusted_cas = _trusted_cas(settings)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    async with one_at_a_time(engine, "startup"):  # several nodes starting together write these once
        await upgrade(engine)
        if settings.inventory_file:
            inv, specs = load_inventory(settings.inventory_file)
            counts = await apply_inventory(sm, inv, specs, clock.now(), file=str(settings.inventory_file))
            log.info("inventory_applied file=%s monitors=%s", settings.inventory_file, counts["monitors"])
            for name in counts.get("new_ping_tokens", {}):
                # The token is not logged: staff issue one they can see with `negahban heartbeat token NAME`.
                log.warning("heartbeat_token_unseen monitor=%s hint=negahban_heartbeat_token", name)
        await _configured_channels(settings, sm)
        escalation = await _checked_escalation(settings, sm)
        await ensure_selfcheck(sm, settings.canaries.split(","), clock.now(), settings.canary_interval_seconds)
    # Fresh connection per check and no state shared between monitors are the probes' own rules; this
    # raises IcmpUnavailable (naming the setting to change) when ICMP sockets cannot be opened.
    ctx = await make_context(now=clock.now, icmp=settings.icmp, trust_ca_pem=trusted_cas)
    # One failure counter for every loop; items without an error column of their own keep attempts in the ledger.
    failures = WorkerFailures(registry)
    failures.attach(sm, clock.now)
    runner = Runner(sm, ctx, clock, ResultStore(sm, failures))
    scheduler = Scheduler(sm, runner, clock, registry, reload_every_s=settings.reload_seconds,
                          flush_every_s=settings.result_flush_seconds,
                          max_concurrent=settings.max_concurrent_probes, failures=failures)
    if settings.node_name:  # several nodes on one PostgreSQL (monitor.leases)
        scheduler.cluster = Cluster(sm, settings.node_name, clock, shards=settings.shards,
                                    lease_s=settings.lease_seconds, registry=registry)
        runner.store.fenced = True
    http = _outbound_http()
    # The incident path gets a small pool of its own, so a burst of result writes never makes a flip
    # wait for a connection on its way to an incident and a ticket.
    incident_db = make_engine(settings.database_url, pool_size=3, max_overflow=2) \
        if settings.database_url.startswith("postgresql") else engine
    incident_sm = make_sessionmaker(incident_db)
    incidents = _incident_workers(settings, incident_sm, clock, http, registry, failures, escalation)
    incidents.add_stage(AutoTicketer(incident_sm, clock, failures=incidents.failures))
    runner.on_flip(incidents.on_flip)
    ingest = Ingest(sm, runner, clock, lambda: scheduler.catalog, registry, node=settings.node_name or None,
                    owns=scheduler.mine) if settings.run_scheduler else None
    hub = MetricsHub(registry, sm, clock)
    hub.add("flips", flip_latency_families)
    hub.add("desk", desk_families)
    hub.add("incidents", incident_families)
    hub.add("outbox", outbox_families, ttl_s=5.0)
    hub.add("ledger", ledger_families, ttl_s=60.0)
    hub.add("ledger-totals", refreshing(register_ledger_collector(registry)), ttl_s=60.0)
    heartbeats = HeartbeatService(sm, runner, clock, lambda: scheduler.catalog, registry, incidents.failures)
    blackbox_modules, probe_allow = _probe_endpoint(settings)
    noc_index = NocIndex(sm, clock, lambda: runner.latest)
    noc_feed = StateFeed(lambda: runner.latest)
    runner.on_flip(noc_feed.nudge)
    deps = WebDeps(sessionmaker=sm, clock=clock, registry=registry, cookie_secure=settings.cookie_secure,
                   public_url=settings.public_url.rstrip("/") if settings.public_url else None,
                   company=Company.of(settings.company_name, settings.company_logo),
                   services={"runner": runner, "scheduler": scheduler, "noc_index": noc_index,
                             "noc_feed": noc_feed, "incidents": incidents,
                             "alertmanager": incidents.alertmanager, "worker_failures": incidents.failures,
                             "incidents_changed": incidents.incidents_changed, "heartbeats": heartbeats,
                             "maintenance_changed": incidents.maintenance_changed,
                             # status-page webhooks are offered when their deliveries can be signed
                             **({"status_webhook_allow": parse_allow(settings.status_webhook_allow)}
                                if _secret(settings.webhook_signing_secret) else {}),
                             "escalation": escalation,
                             INGEST: ingest,
                             "probe_context": ctx, "blackbox_modules": blackbox_modules, "probe_allow": probe_allow,
                             "heartbeat_limits": ping_limits(settings.heartbeat_pings_per_token_per_minute,
                                                             settings.heartbeat_pings_per_address_per_minute)},
                   probe_exposition=ProbeExposition(lambda: runner.latest, clock.monotonic), metrics_hub=hub,
                   metrics_cache_seconds=settings.metrics_cache_seconds,
                   support_channels=parse_channels(settings.support_channels))
    app = build_app(deps)
    service = Service(settings, engine, sm, clock, registry, ctx, runner, scheduler, app,
                      extras={"incidents": incidents, "http": http, "incident_db": incident_db,
                              "heartbeats": heartbeats, "loop_lag": LoopLag(registry)}, failures=failures)
    failures.declare(service.worker_names())  # every series at 0 before the first failure
    return service


def run_loop(main, loop: str) -> None:
    """Run ``main`` on the chosen event loop. uvloop takes about a third off the CPU of every check
    (bench/README.md); the scheduler keeps it to a few timers, not one APScheduler job per monitor."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    service = await build_service(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
