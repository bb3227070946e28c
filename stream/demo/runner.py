"""``xsell demo``: a local broker, the topics, one worker, a catalog, and a live replay.

The run, in order (each step is shown as it happens; start-up is timed separately from
the replay):

1. refuse to start if a previous demo under the same data directory still runs; else
   clear that run's broker and worker folders (only those) so every demo starts fresh;
2. start ``LocalKafka`` on a free port under ``DATA_DIR/kafka`` and create xsell's topics
   (prefix ``demo.``); start ``python -m stream worker`` with ``XSELL_*`` settings;
   record both PIDs in ``DATA_DIR/demo-pids.json``;
3. produce the catalog and the ad campaigns, wait for the worker's ``/healthz`` and for
   every item to be encoded into its index;
4. replay behaviour events at ``rate`` per second (the simulator's, or a file's) for
   ``duration_s`` (or until Ctrl-C / SIGTERM), while reading ``cross-recommendations``,
   ``ad-targets`` and ``item-associations`` back and polling ``/metrics``;
5. let the worker drain (it counts what is buffered for lateness once idle), then
   summarise: what was published, and the discovered associations against the planted pairs;
6. always (``finally``): stop the worker, then the broker, each by the PID this run started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from stream.demo.catalog import DEFAULT_CATALOG_SIZE
from stream.demo.display import DemoDisplay, LiveState
from stream.demo.errors import DemoError
from stream.demo.probes import http_get, parse_worker_metrics
from stream.demo.processes import PID_FILE, PidRecord, WorkerProcess, worker_environment
from stream.demo.scoring import PlantedRecovery, anchor_partners, score_planted
from stream.demo.simulator import DEFAULT_EVENTS_PER_SECOND, DEFAULT_USERS
from stream.demo.sources import ReplaySource, file_source, simulated_source
from stream.localkafka import REPO_ROOT, LocalKafka, free_port
from stream.settings import Settings
from stream.topics import create_topics

__all__ = ["DEFAULT_DATA_DIR", "DemoConfig", "DemoSummary", "run_demo"]

DEFAULT_DATA_DIR = REPO_ROOT / ".demo"
DEFAULT_PARTITIONS = 2
DEFAULT_STARTUP_TIMEOUT_S = 600.0
DEFAULT_DRAIN_TIMEOUT_S = 60.0
TOPIC_PREFIX = "demo."
APP_ID = "xsell-demo"
SEND_TICK_S = 0.1
MAX_LAG_S = 5.0  # the replay pauses while the worker is this many seconds of events behind
METRICS_EVERY_S = 1.0
QUIET_ASSOCIATIONS_S = 3.0
GRAFANA_URL = "http://localhost:3000 (with Docker: docker compose up)"
CLEARED_FOLDERS = ("kafka", "worker")
CLEARED_FILES = ("worker.log", PID_FILE)


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Options of one demo run (the ``xsell demo`` flags)."""

    data_dir: Path = DEFAULT_DATA_DIR
    duration_s: float | None = None  # None: until Ctrl-C
    rate: float = DEFAULT_EVENTS_PER_SECOND
    seed: int = 0
    catalog_size: int = DEFAULT_CATALOG_SIZE
    users: int = DEFAULT_USERS
    events_file: Path | None = None
    catalog_file: Path | None = None
    partitions: int = DEFAULT_PARTITIONS
    web_port: int | None = None  # None: a free port
    lateness_s: float | None = None  # None: by source (simulated or file)
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S
    status_every_s: float = 5.0

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise DemoError(f"--rate must be > 0 events per second, got {self.rate}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise DemoError(f"--duration must be > 0 seconds, got {self.duration_s}")
        if (self.events_file is None) != (self.catalog_file is None):
            raise DemoError("--events and --catalog go together: a real log needs its catalog")
        for path in (self.events_file, self.catalog_file):
            if path is not None and not Path(path).is_file():
                raise DemoError(f"{path}: no such file")


@dataclass
class DemoSummary:
    """What a run did; printed at the end and written by ``--json``."""

    source: str
    rate: float = 0.0  # events per second asked for
    interrupted: bool = False
    startup_s: float = 0.0
    replay_s: float = 0.0
    drain_s: float = 0.0
    events_sent: int = 0
    events_consumed: float = 0.0
    dead_letters: float = 0.0
    dead_letter_reasons: dict[str, float] = field(default_factory=dict)
    recommendations: int = 0
    ad_targets: int = 0
    items: int = 0
    items_with_associations: int = 0
    strongest: list[dict[str, Any]] = field(default_factory=list)
    planted: dict[str, Any] | None = None
    planted_anchors: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    data_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DemoRun:
    """One run of the demo; ``run()`` does the steps of the module docstring."""

    def __init__(self, config: DemoConfig, display: DemoDisplay) -> None:
        self.config = config
        self.display = display
        self.data_dir = Path(config.data_dir).resolve()
        self.stop_requested = asyncio.Event()
        self.state = LiveState()
        self.broker: LocalKafka | None = None
        self.worker: WorkerProcess | None = None
        self.pids = PidRecord(self.data_dir / PID_FILE)
        self.web_url = ""
        self.settings: Settings | None = None
        self.association_messages = 0
        self.dead_letter_reasons: dict[str, float] = {}

    # -- the whole run ---------------------------------------------------------------------------

    async def run(self) -> DemoSummary:
        # aiokafka retries a produce to a topic whose leader is being elected; the retry is not news.
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._request_stop, signum)
        started = time.monotonic()
        summary = DemoSummary(source="", rate=self.config.rate, data_dir=str(self.data_dir))
        try:
            source = await self._start(summary)
            if source is not None:
                summary.startup_s = round(time.monotonic() - started, 1)
                self.display.step(f"ready in {summary.startup_s:.0f}s; replaying {source.description}")
                await self._replay(source, summary)
        finally:
            summary.interrupted = self.stop_requested.is_set()
            await self._shutdown()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        summary.pids = dict(self.pids.pids)
        return summary

    def _request_stop(self, signum: int) -> None:
        if not self.stop_requested.is_set():
            self.display.step(f"{signal.Signals(signum).name}: stopping cleanly (worker, then broker)")
        self.stop_requested.set()

    # -- start-up ----------------------------------------------------------------------------------

    def _prepare_data_dir(self) -> None:
        left = PidRecord.left_running(self.data_dir / PID_FILE)
        if left:
            described = ", ".join(f"{role} pid {pid}" for role, pid in sorted(left.items()))
            raise DemoError(
                f"a previous demo under {self.data_dir} still runs ({described}); stop it first "
                f"(Ctrl-C in its terminal, or `kill PID`), or use another --data-dir"
            )
        for name in CLEARED_FOLDERS:
            shutil.rmtree(self.data_dir / name, ignore_errors=True)
        for name in CLEARED_FILES:
            (self.data_dir / name).unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)

    async def _start(self, summary: DemoSummary) -> ReplaySource | None:
        """Broker, topics, worker, catalog; None if a stop was requested on the way."""
        self._prepare_data_dir()
        start_ms = int(time.time() * 1000)
        config = self.config
        if config.events_file is not None and config.catalog_file is not None:
            source = file_source(config.events_file, config.catalog_file)
        else:
            source = simulated_source(
                seed=config.seed,
                catalog_size=config.catalog_size,
                users=config.users,
                rate=config.rate,
                start_ms=start_ms,
            )
        summary.source = source.description
        summary.items = len(source.catalog_records)
        self.state.titles = source.catalog.titles
        lateness_s = self.config.lateness_s if self.config.lateness_s is not None else source.lateness_s

        self.display.step(f"starting a Kafka broker under {self.data_dir / 'kafka'}")
        self.broker = LocalKafka(data_dir=self.data_dir / "kafka", port=free_port())
        try:
            bootstrap = await asyncio.to_thread(self.broker.start)
        finally:
            pid = self.broker.running_pid()
            if pid is not None:
                self.pids.record("broker", pid)
        if self.stop_requested.is_set():
            return None
        settings = Settings(
            app_id=APP_ID, broker=bootstrap, topic_prefix=TOPIC_PREFIX, partitions=self.config.partitions
        )
        created = await create_topics(settings)
        self.display.step(f"broker {bootstrap} (pid {self.pids.pids.get('broker')}); {len(created)} topics created")

        web_port = self.config.web_port or free_port()
        self.web_url = f"http://127.0.0.1:{web_port}"
        env = worker_environment(
            {
                "XSELL_BROKER": f"kafka://{bootstrap}",
                "XSELL_APP_ID": APP_ID,
                "XSELL_TOPIC_PREFIX": TOPIC_PREFIX,
                "XSELL_PARTITIONS": str(self.config.partitions),
                "XSELL_DATA_DIR": str(self.data_dir / "worker"),
                "XSELL_WEB_HOST": "127.0.0.1",
                "XSELL_WEB_PORT": str(web_port),
                "XSELL_STORE": "memory",  # every demo starts afresh; memory tables start fastest
                "XSELL_IDLE_FLUSH_S": "1",
                "XSELL_LATENESS_S": str(lateness_s),
                "XSELL_LOG_LEVEL": "warn",
            }
        )
        self.worker = WorkerProcess(env, self.data_dir / "worker.log")
        self.pids.record("worker", self.worker.start().pid)
        self.display.step(
            f"worker pid {self.worker.pid} starting (loads the BERT model; log: {self.data_dir / 'worker.log'})"
        )
        example_item = source.catalog_records[0]["item_id"] if source.catalog_records else "ITEM"
        self.state.urls = {
            "HTTP API": f"{self.web_url}/items/{example_item}/associations",
            "similar": f"{self.web_url}/items/{example_item}/similar",
            "metrics": f"{self.web_url}/metrics",
            "Grafana": GRAFANA_URL,
        }
        summary.urls = dict(self.state.urls)

        sent = await self._produce_catalog(settings, source)
        self.display.step(f"catalog: {sent} products and {len(source.catalog.campaigns)} ad campaigns sent")
        if not await self._wait_until(self._worker_ready, "the worker to be ready"):
            return None
        self.display.step(f"worker ready: {self.web_url}/healthz; encoding the catalog with BERT")
        expected = len({str(record["item_id"]) for record in source.catalog_records})
        if not await self._wait_until(lambda: self._indexed(expected), f"{expected} items to be encoded"):
            return None
        self.settings = settings
        return source

    async def _wait_until(self, condition: Any, what: str) -> bool:
        """Poll ``condition`` (a coroutine function) until true; False if a stop was requested."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        while not self.stop_requested.is_set():
            assert self.worker is not None
            code = self.worker.exit_code()
            if code is not None:
                raise DemoError(f"the worker exited with code {code} while waiting for {what}: {self._log_hint()}")
            if await condition():
                return True
            if time.monotonic() > deadline:
                raise DemoError(
                    f"gave up waiting for {what} after {self.config.startup_timeout_s:.0f}s: {self._log_hint()}"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), 0.5)
        return False

    def _log_hint(self) -> str:
        assert self.worker is not None
        last = [line for line in self.worker.log_tail(40).splitlines() if line.strip()][-1:]
        return f"see {self.worker.log_path}" + (f" (last line: {last[0][:200]})" if last else "")

    async def _worker_ready(self) -> bool:
        status, _ = await asyncio.to_thread(http_get, f"{self.web_url}/healthz")
        return status == 200

    async def _indexed(self, expected: int) -> bool:
        status, body = await asyncio.to_thread(http_get, f"{self.web_url}/healthz")
        if status != 200:
            return False
        return int(orjson.loads(body).get("index_items", 0)) >= expected

    async def _produce_catalog(self, settings: Settings, source: ReplaySource) -> int:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=20)
        await producer.start()
        try:
            futures = [
                await producer.send(
                    settings.topic("catalog"), key=str(record["item_id"]).encode(), value=orjson.dumps(record)
                )
                for record in source.catalog_records
            ]
            futures += [
                await producer.send(
                    settings.topic("ad-campaigns"),
                    key=str(campaign["campaign_id"]).encode(),
                    value=orjson.dumps(campaign),
                )
                for campaign in source.catalog.campaigns
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return len(source.catalog_records)

    # -- replay ----------------------------------------------------------------------------------

    async def _replay(self, source: ReplaySource, summary: DemoSummary) -> None:
        settings = self.settings
        assert settings is not None
        self.state.replay_started = time.monotonic()
        self.display.start(self.state)
        readers = [
            asyncio.create_task(self._read_outputs(settings)),
            asyncio.create_task(self._poll_metrics()),
            asyncio.create_task(self._refresh_display()),
        ]
        try:
            await self._send_events(settings, source)
            summary.replay_s = round(self.state.elapsed(), 1)
            if not self.stop_requested.is_set():
                drain_started = time.monotonic()
                await self._drain()
                summary.drain_s = round(time.monotonic() - drain_started, 1)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            self.display.stop()
        state = self.state
        summary.events_sent = state.produced
        summary.events_consumed = state.consumed
        summary.dead_letters = state.dead_letters
        summary.dead_letter_reasons = dict(self.dead_letter_reasons)
        summary.recommendations = state.recommendations
        summary.ad_targets = state.ad_targets
        summary.items_with_associations = len(state.associations)
        summary.strongest = [
            {
                "antecedent": rule.antecedent,
                "antecedent_title": state.title(rule.antecedent),
                "consequent": rule.consequent,
                "consequent_title": state.title(rule.consequent),
                "pairs": rule.count,
                "confidence": round(rule.confidence, 4),
                "lift": round(rule.lift, 3),
                "llr": round(rule.llr, 2),
            }
            for rule in state.strongest(10)
        ]
        if source.catalog.planted:
            recovery: PlantedRecovery = score_planted(state.associations, source.catalog.planted)
            summary.planted = recovery.to_dict()
            summary.planted_anchors = anchor_partners(state.associations, source.catalog.planted)

    async def _send_events(self, settings: Settings, source: ReplaySource) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=10)
        await producer.start()
        duration = self.config.duration_s
        rate = self.config.rate
        max_lag = max(1.0, rate * MAX_LAG_S)
        try:
            started = last_tick = time.monotonic()
            credit = 0.0  # events we may send now: the rate accrues it, sending spends it
            while not self.stop_requested.is_set():
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    break
                assert self.worker is not None
                code = self.worker.exit_code()
                if code is not None:
                    raise DemoError(f"the worker exited with code {code} during the replay: {self._log_hint()}")
                # No catching up after a pause: a burst would only make the worker lag again.
                credit = min(credit + rate * (now - last_tick), max(1.0, rate * SEND_TICK_S * 2))
                last_tick = now
                # Back-pressure: while the worker is far behind, wait. Its three input topics are
                # read at their own pace, and a large backlog skews them beyond the lateness.
                self.state.throttled = self.state.produced - self.state.consumed >= max_lag
                due = 0 if self.state.throttled else int(credit)
                batch = list(islice(source.events, due))
                if due > 0 and not batch:
                    self.display.step("the event source is exhausted")
                    break
                credit -= len(batch)
                futures = [
                    await producer.send(
                        settings.topic(topic), key=str(event["user_id"]).encode(), value=orjson.dumps(event)
                    )
                    for topic, event in batch
                ]
                if futures:
                    await asyncio.gather(*futures)
                self.state.produced += len(batch)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stop_requested.wait(), SEND_TICK_S)
        finally:
            await producer.stop()

    async def _drain(self) -> None:
        """Wait until the worker took every event and the associations stop changing."""
        self.display.step("replay done; letting the worker count what it buffered for lateness")
        deadline = time.monotonic() + self.config.drain_timeout_s
        quiet_since = time.monotonic()
        last_seen = -1
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            seen = self.association_messages
            if seen != last_seen:
                last_seen, quiet_since = seen, time.monotonic()
            caught_up = self.state.consumed >= self.state.produced
            if caught_up and time.monotonic() - quiet_since >= QUIET_ASSOCIATIONS_S:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), 0.5)
        if not self.stop_requested.is_set():
            self.display.step(f"drain timed out after {self.config.drain_timeout_s:.0f}s")

    async def _read_outputs(self, settings: Settings) -> None:
        from aiokafka import AIOKafkaConsumer

        topics = {
            settings.topic("cross-recommendations"): self._on_recommendation,
            settings.topic("ad-targets"): self._on_ad_target,
            settings.topic("item-associations"): self._on_association,
        }
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=settings.bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for partition, messages in batches.items():
                    handle = topics[partition.topic]
                    for message in messages:
                        handle(message.key, message.value)
        finally:
            await consumer.stop()

    def _on_recommendation(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        self.state.recommendations += 1
        self.state.latest_recommendations.append(orjson.loads(value))

    def _on_ad_target(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        self.state.ad_targets += 1
        self.state.latest_ad_targets.append(orjson.loads(value))

    def _on_association(self, key: bytes | None, value: bytes | None) -> None:
        item_id = (key or b"").decode("utf-8", "replace")
        self.association_messages += 1
        if value is None:
            self.state.associations.pop(item_id, None)
        else:
            self.state.associations[item_id] = orjson.loads(value)

    async def _poll_metrics(self) -> None:
        while True:
            status, body = await asyncio.to_thread(http_get, f"{self.web_url}/metrics")
            if status == 200:
                found, self.dead_letter_reasons = parse_worker_metrics(body.decode("utf-8", "replace"), TOPIC_PREFIX)
                self.state.consumed = found["consumed"]
                self.state.dead_letters = found["dead_letters"]
                self.state.lag = max(found["lag"], self.state.produced - found["consumed"])
            await asyncio.sleep(METRICS_EVERY_S)

    async def _refresh_display(self) -> None:
        while True:
            self.display.refresh(self.state)
            await asyncio.sleep(0.5)

    # -- shutdown ----------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Worker first (it commits and leaves the group), then the broker; both by their PID."""
        if self.worker is not None and self.worker.exit_code() is None:
            self.display.step(f"stopping the worker (pid {self.worker.pid})")
            await self.worker.stop_async()
        elif self.worker is not None:
            await self.worker.stop_async()  # closes its log
        if self.broker is not None and self.broker.running_pid() is not None:
            self.display.step(f"stopping the broker (pid {self.broker.running_pid()})")
            await asyncio.to_thread(self.broker.stop)


async def _run(config: DemoConfig, display: DemoDisplay) -> DemoSummary:
    return await DemoRun(config, display).run()


def run_demo(config: DemoConfig, display: DemoDisplay) -> DemoSummary:
    """Run the demo to the end (duration, exhausted source, Ctrl-C or SIGTERM); return its summary."""
    return asyncio.run(_run(config, display))
