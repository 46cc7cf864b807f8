"""``negahban agent``: a probe-only process for one location.

It holds no database of the service. It fetches its assignments from the central API (``If-None-Match``: an
unchanged set costs one request and no body), probes them on the same planned instants as the central
scheduler (``monitor.scheduler.next_start``), probes its location's canaries, and pushes what it saw in
batches. Every result goes to an on-disk buffer (SQLite, ``Buffer``) before anything is sent, so a restart or
an outage of the central side loses nothing: the agent keeps probing, the buffer keeps at least
``retention_s`` (24 h by default) of results, and once the central side answers again the batches go oldest
first. A batch gets its sequence number when it is formed and keeps it until the central side acknowledges
it, so a batch sent twice (the answer was lost) is recognised there and written once.

The last assignments are kept in the buffer too: an agent restarted while the central side is unreachable
goes on probing what it was given.

Time comes from a ``Clock``; ``run_due`` and ``send`` are the two steps ``run`` repeats, so tests drive the
agent on a ``ManualClock`` without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp

from monitor.clock import Clock, SystemClock
from monitor.scheduler import DueQueue, next_start
from probes import PROBERS, SPECS, Outcome, ProbeContext, ProbeResult, SpecBase

__all__ = ["Agent", "Buffer", "AgentConfig", "Assigned"]

log = logging.getLogger("negahban.agent")
DAY_S = 86400.0


class Buffer:
    """The agent's results on disk until the central side has them.

    ``pending`` holds results not yet in a batch, in arrival order; ``batches`` holds formed batches (seq and
    body fixed) until acknowledged. Forming a batch moves rows from one to the other in one transaction, so a
    crash leaves each result in exactly one place."""

    def __init__(self, path: str | Path, agent_id: str | None = None) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                                at REAL NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, formed_at REAL NOT NULL,
                                                first_at REAL NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);
        """)
        if self.meta("agent_id") is None:
            self.set_meta("agent_id", agent_id or f"{socket.gethostname()[:60]}-{int(time.time())}")
        if self.meta("next_seq") is None:
            self.set_meta("next_seq", "1")
        self.dropped = 0

    @property
    def agent_id(self) -> str:
        return self.meta("agent_id") or ""

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                         "excluded.value", (key, value))

    def add(self, items: list[tuple[str, float, dict]]) -> None:
        """Append (kind ``r`` result or ``c`` canary, Unix time, body) rows, in one transaction."""
        if not items:
            return
        with self._tx():
            self._db.executemany("INSERT INTO pending (kind, at, body) VALUES (?, ?, ?)",
                                 [(k, at, json.dumps(b, separators=(",", ":"))) for k, at, b in items])

    def form(self, max_results: int, now: float) -> int | None:
        """Move up to ``max_results`` of the oldest pending rows into a new batch; its seq, or None."""
        with self._tx():
            rows = self._db.execute("SELECT id, kind, at, body FROM pending ORDER BY id LIMIT ?",
                                    (max_results,)).fetchall()
            if not rows:
                return None
            seq = int(self.meta("next_seq") or "1")
            body = {"results": [json.loads(b) for _, k, _, b in rows if k == "r"],
                    "canaries": [json.loads(b) for _, k, _, b in rows if k == "c"]}
            self._db.execute("INSERT INTO batches (seq, formed_at, first_at, n, body) VALUES (?, ?, ?, ?, ?)",
                             (seq, now, rows[0][2], len(rows), json.dumps(body, separators=(",", ":"))))
            self._db.execute("DELETE FROM pending WHERE id <= ?", (rows[-1][0],))
            self.set_meta("next_seq", str(seq + 1))
            return seq

    def oldest_batch(self) -> tuple[int, dict] | None:
        row = self._db.execute("SELECT seq, body FROM batches ORDER BY seq LIMIT 1").fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def ack(self, seq: int) -> None:
        self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))

    def prune(self, older_than: float) -> int:
        """Drop what is older than the retention (counted in ``dropped``: the one way results are lost)."""
        with self._tx():
            n = self._db.execute("DELETE FROM pending WHERE at < ?", (older_than,)).rowcount
            n += self._db.execute("SELECT COALESCE(SUM(n), 0) FROM batches WHERE first_at < ?",
                                  (older_than,)).fetchone()[0]
            self._db.execute("DELETE FROM batches WHERE first_at < ?", (older_than,))
        self.dropped += n
        return n

    def waiting(self) -> int:
        """Results (and canary checks) not yet acknowledged: pending and in formed batches."""
        p = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        return p + self._db.execute("SELECT COALESCE(SUM(n), 0) FROM batches").fetchone()[0]

    def counts(self) -> tuple[int, int]:
        """(pending results, formed batches)."""
        p = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        b = self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        return p, b

    @contextlib.contextmanager
    def _tx(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True, slots=True)
class Assigned:
    id: int
    name: str
    kind: str
    interval_s: float
    spec: SpecBase


@dataclass(frozen=True, slots=True)
class AgentConfig:
    central_url: str
    token: str
    batch_max: int = 1000
    send_every_s: float = 1.0
    refresh_every_s: float = 30.0
    canary_every_s: float = 10.0
    retention_s: float = DAY_S
    max_concurrent: int = 500
    request_timeout_s: float = 20.0


def _result_body(monitor_id: int, at: datetime, r: ProbeResult) -> dict:
    return {"monitor_id": monitor_id, "at": at.isoformat(), "outcome": str(r.outcome), "reason": r.reason[:40],
            "message": r.message[:4000], "latency_s": round(min(max(r.latency_s, 0.0), 3600.0), 6)}


class Agent:
    def __init__(self, config: AgentConfig, buffer: Buffer, ctx: ProbeContext, clock: Clock | None = None,
                 http: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self.buffer = buffer
        self.ctx = ctx
        self.clock = clock or SystemClock()
        self._http = http
        self._own_http = http is None
        self.monitors: dict[int, Assigned] = {}
        self.canaries: list[tuple[int, Assigned]] = []
        self.version: str | None = None
        self.queue = DueQueue()
        self._next_canary = 0.0
        self._limit = asyncio.Semaphore(config.max_concurrent)
        self._tasks: set[asyncio.Task] = set()
        self._fresh: list[tuple[str, float, dict]] = []  # results not yet in the buffer
        self._running: set[int] = set()
        self.overlaps_skipped = 0
        self.backoff_s = 0.0
        self.sent_batches = 0
        self.repeats_acknowledged = 0
        self.central_reachable = False
        self._load_saved()

    # --- assignments --------------------------------------------------------------------------------------

    def _load_saved(self) -> None:
        saved = self.buffer.meta("assignments")
        if saved:
            with contextlib.suppress(Exception):  # a bad saved copy is replaced by the next fetch
                self._take(json.loads(saved))

    def _take(self, body: dict) -> None:
        fresh: dict[int, Assigned] = {}
        for m in body.get("monitors", []):
            try:
                spec = SPECS[m["kind"]].model_validate(m["spec"])
            except Exception as exc:  # one monitor this agent cannot read does not stop the others
                log.error("assignment_unreadable monitor=%s error=%s", m.get("name"), exc)
                continue
            fresh[int(m["id"])] = Assigned(int(m["id"]), m["name"], m["kind"], float(m["interval_s"]), spec)
        canaries = []
        for c in body.get("canaries", []):
            with contextlib.suppress(Exception):
                spec = SPECS[c["kind"]].model_validate({"kind": c["kind"], "target": c["target"]})
                canaries.append((int(c["index"]), Assigned(-1, f"canary:{c['target']}", c["kind"], 0.0, spec)))
        now = self.clock.now().timestamp()
        for mid in set(self.monitors) - set(fresh):
            self.queue.discard(mid)
        for mid, a in fresh.items():
            old = self.monitors.get(mid)
            if old is None or old.interval_s != a.interval_s:
                self.queue.put(mid, next_start(mid, a.interval_s, now))
        self.monitors, self.canaries = fresh, canaries
        self.version = body.get("version")

    async def refresh(self) -> bool:
        """Fetch the assignments; True when they changed. A failure keeps the current ones."""
        headers = {"Authorization": f"Bearer {self.config.token}"}
        if self.version:
            headers["If-None-Match"] = f'"{self.version}"'
        async with self._session().get(self.config.central_url.rstrip("/") + "/api/v1/agent/assignments",
                                       headers=headers) as resp:
            if resp.status == 304:
                return False
            if resp.status != 200:
                raise RuntimeError(f"assignments: HTTP {resp.status}: {(await resp.text())[:200]}")
            body = await resp.json()
        self._take(body)
        self.buffer.set_meta("assignments", json.dumps(body, separators=(",", ":")))
        log.info("assignments location=%s monitors=%s canaries=%s version=%s", body.get("location"),
                 len(self.monitors), len(self.canaries), self.version)
        return True

    # --- probing ------------------------------------------------------------------------------------------

    async def _probe(self, a: Assigned) -> ProbeResult:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(a.spec.timeout_s + 1.0):
                return await PROBERS[a.kind](a.spec, self.ctx)
        except TimeoutError:
            return ProbeResult(Outcome.DOWN, "timeout", "probe exceeded its timeout", time.perf_counter() - start)
        except Exception as exc:  # a probe bug is a DOWN result, never the agent's end
            log.exception("probe_failed monitor=%s", a.name)
            return ProbeResult(Outcome.DOWN, "probe_error", f"{type(exc).__name__}: {exc}",
                               time.perf_counter() - start)

    async def _check(self, a: Assigned, kind: str = "r", index: int = 0) -> None:
        if kind == "r":
            self._running.add(a.id)
        try:
            async with self._limit:
                at = self.clock.now()
                r = await self._probe(a)
        finally:
            if kind == "r":
                self._running.discard(a.id)
        body = _result_body(a.id, at, r)
        if kind == "c":
            body.pop("monitor_id")
            body["index"] = index
        self._fresh.append((kind, at.timestamp(), body))

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def due(self) -> list[asyncio.Task]:
        """Start every check planned up to now (and the canaries when theirs is due); the started tasks."""
        now = self.clock.now().timestamp()
        started = []
        for _at, mid, _gen in self.queue.pop_until(now):
            a = self.monitors.get(mid)
            if a is None:
                continue
            self.queue.put(mid, next_start(mid, a.interval_s, now))
            if mid in self._running:  # the previous check is still going: this start is skipped, counted
                self.overlaps_skipped += 1
                continue
            started.append(self._spawn(self._check(a)))
        if self.canaries and now >= self._next_canary:
            self._next_canary = now + self.config.canary_every_s
            started += [self._spawn(self._check(c, "c", i)) for i, c in self.canaries]
        return started

    async def run_due(self) -> int:
        """Run every due check to its end and buffer the results (the step tests drive)."""
        started = self.due()
        if started:
            await asyncio.gather(*started)
        self.keep()
        return len(started)

    def recheck(self, monitor_ids: list[int]) -> None:
        now = self.clock.now().timestamp()
        for mid in monitor_ids:
            if mid in self.monitors:
                self.queue.put(mid, now)

    # --- buffering and sending ----------------------------------------------------------------------------

    def keep(self) -> None:
        """Write the fresh results to the buffer (the disk has them before any is sent)."""
        fresh, self._fresh = self._fresh, []
        self.buffer.add(fresh)

    async def send(self) -> int:
        """Send the buffered batches oldest first until none is left or the central side fails; the number
        acknowledged. Results older than the retention are dropped first (counted)."""
        self.keep()
        now = self.clock.now().timestamp()
        self.buffer.prune(now - self.config.retention_s)
        done = 0
        while True:
            batch = self.buffer.oldest_batch()
            if batch is None:
                seq = self.buffer.form(self.config.batch_max, now)
                if seq is None:
                    return done
                batch = self.buffer.oldest_batch()
            seq, body = batch
            try:
                answer = await self._post(seq, body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self.central_reachable = False
                self.backoff_s = min(max(self.backoff_s * 2, 1.0), 30.0)
                log.warning("central_unreachable seq=%s error=%s retry_in=%ss", seq, type(exc).__name__,
                            self.backoff_s)
                return done
            self.central_reachable = True
            self.backoff_s = 0.0
            self.buffer.ack(seq)
            done += 1
            self.sent_batches += 1
            if answer.get("duplicate"):
                self.repeats_acknowledged += 1
            self.recheck(answer.get("rechecks") or [])

    async def _post(self, seq: int, body: dict) -> dict:
        behind = self.buffer.waiting() - len(body["results"]) - len(body["canaries"])
        payload = {"agent": self.buffer.agent_id, "seq": seq, "buffered": max(behind, 0), **body}
        async with self._session().post(self.config.central_url.rstrip("/") + "/api/v1/agent/results",
                                        json=payload,
                                        headers={"Authorization": f"Bearer {self.config.token}"}) as resp:
            text = await resp.text()
            if resp.status == 200:
                return json.loads(text)
            if resp.status in (400, 413, 422):
                # The central side will never take this batch: keeping it would block every later one.
                log.error("batch_refused seq=%s status=%s answer=%s", seq, resp.status, text[:500])
                return {}
            raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=text[:200])

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_s))
        return self._http

    # --- the process --------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Probe, buffer and send until ``stop`` is set.

        Sending runs beside the loop (one send at a time), not in it: a slow answer from the central side
        must not hold back the checks that fall due meanwhile (bench/README.md "Agents": awaited inline, it
        made the p99 schedule lateness 1.5-4 s at 10,000 monitors)."""
        next_refresh = next_send = 0.0
        sending: asyncio.Task | None = None
        while not stop.is_set():
            mono = time.monotonic()
            if mono >= next_refresh:
                try:
                    await self.refresh()
                except Exception as exc:
                    log.warning("assignments_unavailable error=%s keeping=%s", exc, len(self.monitors))
                next_refresh = mono + self.config.refresh_every_s
            self.due()
            if sending is not None and sending.done():
                if not sending.cancelled() and sending.exception() is not None:
                    log.error("send_failed error=%r", sending.exception())
                sending = None
                next_send = time.monotonic() + max(self.config.send_every_s, self.backoff_s)
            if sending is None and mono >= next_send:
                self.keep()
                sending = asyncio.ensure_future(self.send())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        if sending is not None:
            await asyncio.wait({sending}, timeout=30)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30)
        self.keep()
        with contextlib.suppress(Exception):
            await self.send()

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
        self.buffer.close()


def run_agent(args, token: str) -> int:
    """``negahban agent``: run until SIGTERM or SIGINT."""
    import signal

    from probes import make_context

    async def main() -> None:
        config = AgentConfig(args.central, token, send_every_s=args.send_every, refresh_every_s=args.refresh_every,
                             canary_every_s=args.canary_every, retention_s=args.retention_hours * 3600)
        buffer = Buffer(args.buffer, args.id)
        ctx = await make_context(icmp=args.icmp)
        agent = Agent(config, buffer, ctx)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("agent_started id=%s central=%s buffer=%s", buffer.agent_id, args.central, args.buffer)
        try:
            await agent.run(stop)
        finally:
            pending, batches = buffer.counts()
            await agent.close()
            await ctx.close()
            log.info("agent_stopped pending=%s batches=%s", pending, batches)

    if args.loop == "uvloop":  # as ``serve``: about a third off the CPU of every check
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    return 0
