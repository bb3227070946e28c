"""``xsell bench pipeline``: events/s and latency through Kafka, against two ceilings.

One run, one broker (its own ``LocalKafka`` unless ``broker`` is given), per processing
guarantee its own topic prefix and app id:

1. **prepare**: create xsell's topics, publish ``items`` vectors to ``item-embeddings``
   (see ``workload``), produce ``events`` Taobao events, keyed by user, in event-time order,
   to the ceilings' own copy of clicks/carts/purchases (``bench-in-*``);
2. **client ceiling** (once): a plain aiokafka loop consumes those event topics and produces
   one message per event without awaiting each send;
3. **framework ceiling**: the naive Faust agent (``naive_app``) forwards each event with
   ``send()``, in its own worker process; then the same latency phase as xsell's (5.) on the
   ceilings' event topics, each forwarded event matched by its ``event_id``: the framework's
   own latency at that rate, the floor under xsell's;
4. **xsell, saturation**: once an ``xsell worker`` is ready (its replica built), the same
   events are fed to xsell's topics in event-time order, at most ``FEED_LEAD`` ahead of what
   it has answered or dead-lettered, so it always has work waiting but its three topics
   advance together in event time, as live traffic does. (All of them waiting up front,
   Faust reads the three topics at equal *record* rates: the rarer carts and purchases raced
   weeks of event time ahead of the clicks, and a third of the events were dead-lettered as
   too late, see docs/benchmarks/pipeline.md.) Once the last event is answered, the run waits
   until xsell's consumer group has committed all of ``item-pairs`` (the counts caught up:
   ``pairs_counted_after_last_answer_s``, as coarse as the commit interval);
5. **xsell, latency**: the same worker, events offered at ``rate`` per second for
   ``latency_seconds``; latency runs from the wall clock just before each produce to the
   wall clock when its recommendation (matched by ``trigger_event_id``) was consumed;
6. **memory**: worker RSS growth from ready to the end, and the serialised sizes of the
   user-state, cooccurrence and item-associations records.

With ``split_roles`` xsell runs as two worker processes, ``XSELL_ROLE=interactions`` and
``XSELL_ROLE=cooccurrence`` (one consumer group), the way an operator moves the co-occurrence
agent off the answering workers; the naive agent stays one process, and RSS is the sum.

**Events/s** is the same for all three: the outputs' CreateTime stamps (set by the
producer that wrote them, when it was handed the message), ``n / (last - first)``, where
``n`` counts the outputs stamped after the first millisecond — so neither start-up nor a
first batch that lands in one millisecond inflates it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import shutil
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.benchmarks import kafka_io
from stream.benchmarks.errors import BenchmarkError
from stream.benchmarks.workers import WorkerProcess, naive_worker, xsell_worker
from stream.benchmarks.workload import EMBEDDING_DIMENSION, TAOBAO_FILE, Workload, embedding_messages, load_workload
from stream.localkafka import LocalKafka, free_port
from stream.replica import parse_association_record
from stream.settings import Settings
from stream.topics import EVENT_TOPICS, create_topics

__all__ = [
    "DEFAULT_EVENTS",
    "DEFAULT_LATENCY_SECONDS",
    "DEFAULT_RATE",
    "GUARANTEES",
    "PipelineConfig",
    "rate_from_timestamps",
    "run_pipeline_benchmark",
]

DEFAULT_EVENTS = 50_000
DEFAULT_ITEMS = 50_000
DEFAULT_RATE = 1_000.0
DEFAULT_LATENCY_SECONDS = 20.0
DEFAULT_PARTITIONS = 4
DEFAULT_EXACT_INDEX_BELOW = 1_000  # far below the catalog: the worker searches with HNSW
DEFAULT_STORE = "rocksdb"  # the workers' default: the path production runs
# The replay squeezes nine days of event time into seconds, so Faust's round-robin over the
# three event topics reorders a user's events by hours of event time; a day of allowed
# lateness keeps them from being dead-lettered as too late (60 s in production).
DEFAULT_LATENESS_S = 86_400.0
GUARANTEES = ("at_least_once", "exactly_once")
GOAL_RATIO_TO_FRAMEWORK = 1.0
GOAL_P99_MS = 50.0
LATENCY_GRACE_S = 30.0
PACE_TICK_S = 0.002
# The time-ordered feed keeps at most this many events waiting ahead of xsell's outputs: a few
# full batches (the worker never waits for input), a few hours of the log's event time.
FEED_LEAD = 5_000
FEED_POLL_S = 0.05
SATURATION_MIN_TIMEOUT_S = 300.0
STALL_S = 30.0

Step = Callable[[str, int, int], None]  # description, done, total


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """One run of the pipeline benchmark (see the module docstring for the phases)."""

    events: int = DEFAULT_EVENTS
    items: int = DEFAULT_ITEMS
    rate: float = DEFAULT_RATE
    latency_seconds: float = DEFAULT_LATENCY_SECONDS
    partitions: int = DEFAULT_PARTITIONS
    guarantees: tuple[str, ...] = ("at_least_once",)
    broker: str | None = None
    shared_data: Path = Path("../shared/data")
    work_dir: Path | None = None  # None: a new temporary directory
    store: str = DEFAULT_STORE
    exact_index_below: int = DEFAULT_EXACT_INDEX_BELOW
    lateness_s: float = DEFAULT_LATENESS_S
    worker_settings: tuple[tuple[str, str], ...] = ()  # extra XSELL_* settings for the xsell worker
    split_roles: bool = False  # xsell as an interactions worker and a co-occurrence worker
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            (self.events >= 1, f"--events must be at least 1, got {self.events}"),
            (self.items >= 1, f"--items must be at least 1, got {self.items}"),
            (self.rate > 0, f"--rate must be positive, got {self.rate}"),
            (self.latency_seconds >= 0, f"--latency-seconds must be >= 0, got {self.latency_seconds}"),
            (self.partitions >= 1, f"--partitions must be at least 1, got {self.partitions}"),
            (self.store in {"rocksdb", "memory"}, f"--store must be rocksdb or memory, got {self.store!r}"),
        )
        for ok, message in checks:
            if not ok:
                raise BenchmarkError(message)
        for name, _ in self.worker_settings:
            if not name.startswith("XSELL_") or not name[6:].replace("_", "").isalnum():
                raise BenchmarkError(f"--worker-setting takes XSELL_NAME=VALUE, got name {name!r}")
        unknown = [g for g in self.guarantees if g not in GUARANTEES]
        if unknown or not self.guarantees:
            given = ", ".join(unknown) or "none"
            raise BenchmarkError(f"--guarantee must be among {', '.join(GUARANTEES)}, got {given}")


def rate_from_timestamps(timestamps_ms: np.ndarray) -> dict[str, float]:
    """Events/s from output CreateTimes: outputs after the first millisecond over the span."""
    if timestamps_ms.size < 2:
        return {"events_per_s": float("nan"), "seconds": 0.0, "outputs": int(timestamps_ms.size)}
    first, last = int(timestamps_ms.min()), int(timestamps_ms.max())
    after_first = int(np.count_nonzero(timestamps_ms > first))
    seconds = (last - first) / 1000.0
    rate = after_first / seconds if seconds > 0 else float("inf")
    return {"events_per_s": rate, "seconds": seconds, "outputs": int(timestamps_ms.size)}


def machine_description() -> dict[str, Any]:
    """nproc, memory, CPU model, Python and date, for the record (the machine is shared)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_bytes": memory,
        "cpu_model": cpu,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


@dataclass
class _Run:
    """What one run shares between phases."""

    config: PipelineConfig
    bootstrap: str
    run_dir: Path
    run_id: str
    workload: Workload
    model_version: str
    step: Step
    workers: list[WorkerProcess] = field(default_factory=list)

    def prefix(self, guarantee: str) -> str:
        return f"xsell-bench-{self.run_id}-{guarantee.replace('_', '-')}."

    def event_topics(self, guarantee: str) -> list[str]:
        """The ceilings' copy of the event topics (xsell's own are fed in time order later)."""
        return [self.prefix(guarantee) + "bench-in-" + name for name in EVENT_TOPICS]

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


def run_pipeline_benchmark(config: PipelineConfig, step: Step | None = None) -> dict[str, Any]:
    """Run every phase; return the report (raw figures, ratios, goals). Never fails on speed."""
    step = step or (lambda description, done, total: None)
    if config.work_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="xsell-bench-pipeline-"))
    else:
        run_dir = Path(config.work_dir) / f"run-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        run_dir.mkdir(parents=True, exist_ok=True)
    step("loading Taobao events", 0, 1)
    workload = load_workload(config.shared_data, items=config.items)
    step("loading Taobao events", 1, 1)
    model_version = _encoder_model_version()
    broker = None
    if config.broker is None:
        broker = LocalKafka(data_dir=run_dir / "kafka", port=free_port())
        step("starting Kafka", 0, 1)
        bootstrap = broker.start()
        step("starting Kafka", 1, 1)
    else:
        bootstrap = config.broker.removeprefix("kafka://")
    run = _Run(config, bootstrap, run_dir, uuid.uuid4().hex[:8], workload, model_version, step)
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "config": {**{k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}},
        "machine": machine_description(),
        "workload": {
            "events_file": str(TAOBAO_FILE),
            "events_in_file": len(workload.events),
            "users_in_file": workload.users,
            "catalog_items": workload.items,
            "catalog_vectors": f"index.clustered_vectors(n={workload.items}, dim={EMBEDDING_DIMENSION}, "
            f"seed={config.seed})",
            "embedding_model": model_version,
        },
        "runs": {},
    }
    try:
        for number, guarantee in enumerate(config.guarantees):
            try:
                _prepare(run, guarantee)
                if number == 0:
                    report["client_ceiling"] = _client_ceiling(run, guarantee)
                report["runs"][guarantee] = _guarantee_run(run, guarantee, report["client_ceiling"])
            except BenchmarkError as exc:
                if number == 0:
                    raise
                report["runs"][guarantee] = {"error": str(exc)}
            finally:
                run.stop_workers()
    finally:
        run.stop_workers()
        if broker is not None:
            broker.stop()
        # The topics' data and the workers' tables and index copies: ~330 MB a run, which
        # repeated runs left behind in the temp dir. The logs (files) stay.
        for path in run_dir.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
    report["run_dir"] = str(run_dir)
    return report


def _encoder_model_version() -> str:
    """The default encoder's ``model_version``: the replica drops vectors with any other."""
    from encoders import BertEncoder

    return BertEncoder().model_version


# -- phases ---------------------------------------------------------------------------------------


def _prepare(run: _Run, guarantee: str) -> None:
    config = run.config
    prefix = run.prefix(guarantee)
    settings = Settings(broker=run.bootstrap, topic_prefix=prefix, partitions=config.partitions)
    asyncio.run(create_topics(settings))
    sinks = [prefix + "bench-client-out", prefix + "bench-naive-out"]
    asyncio.run(kafka_io.create_plain_topics(run.bootstrap, sinks + run.event_topics(guarantee), config.partitions))

    from index import clustered_vectors

    vectors = clustered_vectors(config.items, EMBEDDING_DIMENSION, seed=config.seed)
    embeddings_topic = prefix + "item-embeddings"
    description = f"[{guarantee}] publishing item vectors"
    asyncio.run(
        kafka_io.produce(
            run.bootstrap,
            (
                (embeddings_topic, key, value)
                for key, value in embedding_messages(run.workload, model_version=run.model_version, vectors=vectors)
            ),
            on_sent=lambda done: run.step(description, done, config.items),
        )
    )
    description = f"[{guarantee}] producing events"
    asyncio.run(
        kafka_io.produce(
            run.bootstrap,
            (
                (prefix + "bench-in-" + topic, key, value)
                for topic, key, value, _ in run.workload.replay(0, config.events)
            ),
            on_sent=lambda done: run.step(description, done, config.events),
        )
    )


def _client_ceiling(run: _Run, guarantee: str) -> dict[str, Any]:
    """A plain aiokafka consume→produce loop over the same event topics."""
    config = run.config
    sink = run.prefix(guarantee) + "bench-client-out"
    description = "client ceiling (aiokafka loop)"
    started = time.monotonic()
    moved = asyncio.run(
        _forward_loop(
            run.bootstrap,
            run.event_topics(guarantee),
            sink,
            total=config.events,
            group=f"xsell-bench-{run.run_id}-client",
            on_progress=lambda done: run.step(description, done, config.events),
        )
    )
    wall = time.monotonic() - started
    outputs = asyncio.run(kafka_io.read_topic(run.bootstrap, sink))
    measured = rate_from_timestamps(np.array([record.timestamp_ms for record in outputs], dtype=np.int64))
    return {"events": moved, **measured, "wall_seconds_with_startup": wall}


async def _forward_loop(
    bootstrap: str, sources: list[str], sink: str, *, total: int, group: str, on_progress: Callable[[int], None]
) -> int:
    consumer = AIOKafkaConsumer(
        *sources,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    moved = 0
    deadline = time.monotonic() + SATURATION_MIN_TIMEOUT_S
    try:
        while moved < total:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"client ceiling: {moved} of {total} events after {SATURATION_MIN_TIMEOUT_S:.0f}s")
            batches = await consumer.getmany(timeout_ms=200, max_records=5_000)
            for records in batches.values():
                for record in records:
                    await producer.send(sink, key=record.key, value=record.value)  # not awaiting delivery
                moved += len(records)
            on_progress(moved)
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return moved


async def _feed_in_time_order(run: _Run, guarantee: str, on_progress: Callable[[int], None]) -> None:
    """Produce the saturation events to xsell's topics in event-time order, never more than
    ``FEED_LEAD`` ahead of the worker's outputs (answers and dead letters)."""
    config = run.config
    prefix = run.prefix(guarantee)
    events = [(prefix + topic, key, value) for topic, key, value, _ in run.workload.replay(0, config.events)]
    watcher = AIOKafkaConsumer(bootstrap_servers=run.bootstrap, group_id=None, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=run.bootstrap, linger_ms=5)
    await watcher.start()
    await producer.start()
    try:
        outputs = [
            tp
            for name in ("cross-recommendations", "dead-letter")
            for tp in await kafka_io.partitions_of(watcher, prefix + name)
        ]
        since = await watcher.end_offsets(outputs)
        sent = handled = 0
        last_progress, deadline = time.monotonic(), time.monotonic() + _saturation_timeout(config.events)
        while sent < len(events):
            for topic, key, value in events[sent : min(len(events), handled + FEED_LEAD)]:
                await producer.send(topic, key=key, value=value)  # not awaiting delivery
                sent += 1
            await asyncio.sleep(FEED_POLL_S)
            ends = await watcher.end_offsets(outputs)
            now_handled = sum(ends[tp] - since[tp] for tp in outputs)
            now = time.monotonic()
            if now_handled != handled:
                handled, last_progress = now_handled, now
                on_progress(min(handled, config.events))
            if now - last_progress > STALL_S or now > deadline:
                raise BenchmarkError(f"xsell stopped answering: {handled} outputs for {sent} events fed")
        await producer.flush()
    finally:
        await producer.stop()
        await watcher.stop()


def _saturation_timeout(events: int) -> float:
    return max(SATURATION_MIN_TIMEOUT_S, events / 100.0)


def _framework_ceiling(run: _Run, guarantee: str) -> dict[str, Any]:
    """The naive Faust agent, in its own worker process, over the same event topics."""
    config = run.config
    sink = run.prefix(guarantee) + "bench-naive-out"
    worker = naive_worker(
        f"naive-{guarantee}",
        run_dir=run.run_dir,
        settings={
            "XSELL_BENCH_BROKER": f"kafka://{run.bootstrap}",
            "XSELL_BENCH_APP_ID": f"xsell-bench-{run.run_id}-naive-{guarantee}",
            "XSELL_BENCH_SOURCES": ",".join(run.event_topics(guarantee)),
            "XSELL_BENCH_SINK": sink,
            "XSELL_BENCH_PARTITIONS": str(config.partitions),
            "XSELL_BENCH_PROCESSING_GUARANTEE": guarantee,
        },
    )
    run.workers.append(worker.start())
    description = f"[{guarantee}] framework ceiling (naive Faust agent)"
    polls: list[tuple[int, float]] = []  # (records out, worker CPU s) per poll, until output began

    def progress(done: int) -> None:
        if not polls or polls[-1][0] == 0:
            polls.append((done, worker.cpu_seconds()))
        run.step(description, done, config.events)

    try:
        asyncio.run(
            kafka_io.wait_for_offsets(
                run.bootstrap,
                sink,
                total=config.events,
                timeout_s=_saturation_timeout(config.events),
                alive=worker.check_alive,
                on_progress=progress,
            )
        )
        cpu_end = worker.cpu_seconds()
        outputs = asyncio.run(kafka_io.read_topic(run.bootstrap, sink))
        # The same latency phase as xsell's, on the ceilings' copy of the event topics.
        latency = _latency(
            run,
            f"[{guarantee}] framework ceiling",
            run.prefix(guarantee) + "bench-in-",
            [worker],
            sink,
            _event_id_of,
        )
    finally:
        worker.stop()
        run.workers.remove(worker)
    measured = rate_from_timestamps(np.array([record.timestamp_ms for record in outputs], dtype=np.int64))
    done_before, cpu_before = _cpu_window_start(polls, config.events)
    cpu = _cpu_use(config.events - done_before, cpu_end - cpu_before)
    return {"events": config.events, **measured, **cpu, "latency": latency}


def _cpu_window_start(polls: list[tuple[int, float]], events: int) -> tuple[int, float]:
    """Where the naive agent's CPU count starts: ``(records out, CPU s)`` of one poll.

    ``polls`` runs up to the first poll that saw output. Startup's CPU is left out by starting
    there (a poll's worth of records later). When that poll saw more than half of them, what
    is left may cost less than one of /proc's 10 ms ticks (a small run at 4,000 events/s read
    0.0), so the count starts at the last poll that saw none: a little of the startup in, but
    every event too.
    """
    done, cpu = polls[-1]
    if done > events / 2:
        done, cpu = polls[-2] if len(polls) > 1 else (0, float("nan"))
    return done, cpu


def _cpu_use(events: int, cpu_seconds: float) -> dict[str, Any]:
    """Events per CPU second of the worker processes: steadier than events/s on a shared
    machine, where other jobs take cores away but seldom change the work one event costs."""
    return {
        "cpu_seconds": cpu_seconds,
        "events_per_cpu_s": events / cpu_seconds if cpu_seconds > 0 else float("nan"),  # NaN > 0 is False
    }


def _guarantee_run(run: _Run, guarantee: str, client: dict[str, Any]) -> dict[str, Any]:
    config = run.config
    framework = _framework_ceiling(run, guarantee)
    prefix = run.prefix(guarantee)
    app_id = f"xsell-bench-{run.run_id}-{guarantee.replace('_', '-')}"
    settings = {
        "XSELL_BROKER": f"kafka://{run.bootstrap}",
        "XSELL_APP_ID": app_id,
        "XSELL_TOPIC_PREFIX": prefix,
        "XSELL_PARTITIONS": str(config.partitions),
        "XSELL_STORE": config.store,
        "XSELL_EXACT_INDEX_BELOW": str(config.exact_index_below),
        "XSELL_PROCESSING_GUARANTEE": guarantee,
        "XSELL_LATENESS_S": str(config.lateness_s),
        **dict(config.worker_settings),
    }
    roles = ("interactions", "cooccurrence") if config.split_roles else ("all",)
    workers = [
        xsell_worker(
            f"xsell-{guarantee}" + ("" if role == "all" else f"-{role}"),
            run_dir=run.run_dir,
            web_port=free_port(),
            settings={**settings, "XSELL_ROLE": role},
        )
        for role in roles
    ]
    for worker in workers:
        run.workers.append(worker.start())

    def alive() -> None:
        for worker in workers:
            worker.check_alive()

    recommendations = prefix + "cross-recommendations"
    description = f"[{guarantee}] xsell: loading encoder, building the index"
    run.step(description, 0, 1)
    ready_s = max(worker.wait_healthy() for worker in workers)
    rss_ready = sum(worker.rss_bytes() for worker in workers)
    cpu_ready = sum(worker.cpu_seconds() for worker in workers)
    run.step(description, 1, 1)

    description = f"[{guarantee}] xsell: feeding {config.events:,} events in time order"
    asyncio.run(
        _feed_in_time_order(run, guarantee, lambda done: run.step(description, done, config.events)),
    )
    description = f"[{guarantee}] xsell: answering {config.events:,} events"
    asyncio.run(
        kafka_io.wait_for_offsets(
            run.bootstrap,
            recommendations,
            total=config.events,
            timeout_s=_saturation_timeout(config.events),
            alive=alive,
            on_progress=lambda done: run.step(description, done, config.events),
            stall_s=STALL_S,
        )
    )
    counted_after_s = asyncio.run(
        kafka_io.wait_for_group(
            run.bootstrap, app_id, prefix + "item-pairs", timeout_s=_saturation_timeout(config.events), alive=alive
        )
    )
    # From ready until every pair is counted: all the work the events cost, co-occurrence included.
    cpu = _cpu_use(config.events, sum(worker.cpu_seconds() for worker in workers) - cpu_ready)
    outputs = asyncio.run(kafka_io.read_topic(run.bootstrap, recommendations))
    first_answers = _first_answers(outputs)
    expected = {event_id for _, _, _, event_id in run.workload.replay(0, config.events)}
    answered = expected & set(first_answers)
    measured = rate_from_timestamps(np.array(list(first_answers.values()), dtype=np.int64))
    dead_letters = _dead_letter_reasons(asyncio.run(kafka_io.read_topic(run.bootstrap, prefix + "dead-letter")))
    xsell = {
        "events": config.events,
        "dead_letters": dead_letters,
        "answered": len(answered),
        "unanswered": len(expected - answered),
        "duplicate_answers": len(outputs) - len(first_answers),
        "ready_seconds": ready_s,
        "pairs_counted_after_last_answer_s": counted_after_s,
        **measured,
        **cpu,
    }

    latency = _latency(run, f"[{guarantee}] xsell", prefix, workers, recommendations, _trigger_of)
    memory = _memory(run, workers, app_id, prefix, rss_ready)
    for worker in workers:
        worker.stop()
        run.workers.remove(worker)

    xsell_rate = xsell["events_per_s"]
    ratios = {
        "xsell_over_framework": xsell_rate / framework["events_per_s"],
        "xsell_over_client": xsell_rate / client["events_per_s"],
        "framework_over_client": framework["events_per_s"] / client["events_per_s"],
        "xsell_over_framework_per_cpu_s": xsell["events_per_cpu_s"] / framework["events_per_cpu_s"],
    }
    goals = {
        "throughput_vs_framework": {
            "target": f">= {GOAL_RATIO_TO_FRAMEWORK}x",
            "measured": ratios["xsell_over_framework"],
            "reached": ratios["xsell_over_framework"] >= GOAL_RATIO_TO_FRAMEWORK,
        },
    }
    if latency:
        goals["p99_latency"] = {
            "target": f"<= {GOAL_P99_MS} ms at {config.rate:g} events/s",
            "measured": latency["p99_ms"],
            "reached": latency["p99_ms"] <= GOAL_P99_MS and latency["unanswered"] == 0,
        }
    return {
        "framework_ceiling": framework,
        "xsell": xsell,
        "latency": latency,
        "memory": memory,
        "ratios": ratios,
        "goals": goals,
        "worker_processes": len(workers),
        "worker_logs": [str(worker.log_path) for worker in workers],
    }


def _dead_letter_reasons(records: list[kafka_io.OutputRecord]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for record in records:
        reason = str(orjson.loads(record.value or b"{}").get("reason", "unknown"))
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def _first_answers(outputs: list[kafka_io.OutputRecord]) -> dict[str, int]:
    """trigger_event_id → CreateTime of its first answer."""
    first: dict[str, int] = {}
    for record in outputs:
        if record.value is None:
            continue
        trigger = orjson.loads(record.value)["trigger_event_id"]
        if trigger not in first or record.timestamp_ms < first[trigger]:
            first[trigger] = record.timestamp_ms
    return first


def _latency(
    run: _Run,
    who: str,
    topic_prefix: str,
    workers: Sequence[WorkerProcess],
    outputs: str,
    answer_of: Callable[[bytes], str],
) -> dict[str, Any]:
    """The latency phase (none when ``latency_seconds`` is 0): the events after the saturation
    ones, to ``topic_prefix`` + their topic, offered at the configured rate; each one's
    latency is from just before its produce to when the record of ``outputs`` (from its end
    offsets now) that ``answer_of`` names it in was consumed. Also the CPU the ``workers``
    used meanwhile: how busy each was, and CPU milliseconds per event offered."""
    config = run.config
    if config.latency_seconds <= 0:
        return {}
    since = asyncio.run(kafka_io.end_offsets(run.bootstrap, outputs))
    events = _latency_events(run, topic_prefix)
    total = len(events)
    description = f"{who}: latency at {config.rate:g} events/s"
    cpu_before = [worker.cpu_seconds() for worker in workers]
    started = time.monotonic()
    produced, received, offered_seconds = asyncio.run(
        _offer_at_rate(run, events, since, answer_of, lambda done: run.step(description, done, total))
    )
    seconds = time.monotonic() - started
    for worker in workers:
        worker.check_alive()
    cpu = {worker.name: worker.cpu_seconds() - before for worker, before in zip(workers, cpu_before, strict=True)}
    answered_ids = [event_id for event_id in produced if event_id in received]
    latencies = np.array([received[event_id] - produced[event_id] for event_id in answered_ids]) * 1000.0
    summary: dict[str, Any] = {
        "offered_rate": config.rate,
        "achieved_offered_rate": total / offered_seconds if offered_seconds > 0 else float("nan"),
        "events": total,
        "answered": int(latencies.size),
        "unanswered": total - int(latencies.size),
        # Until the last answer came (or the grace ran out): a worker busy near 1.0 queues the events.
        "seconds": seconds,
        "busy": {name: used / seconds for name, used in cpu.items()},
        "cpu_ms_per_event": 1000.0 * sum(cpu.values()) / total,
    }
    if latencies.size:
        summary.update(
            p50_ms=float(np.percentile(latencies, 50)),
            p90_ms=float(np.percentile(latencies, 90)),
            p99_ms=float(np.percentile(latencies, 99)),
            max_ms=float(latencies.max()),
            mean_ms=float(latencies.mean()),
            by_second=latency_by_second(np.array([produced[event_id] for event_id in answered_ids]), latencies),
        )
    else:
        summary.update(p50_ms=float("nan"), p90_ms=float("nan"), p99_ms=float("nan"), max_ms=float("nan"))
    return summary


def latency_by_second(produced_at: np.ndarray, latencies_ms: np.ndarray) -> list[dict[str, float]]:
    """Latency per second of the phase, by when each answered event was produced (second 0
    starts with the first of them): one summary in the JSON hides whether a p99 comes from
    a steady queue or from a few stalls (waves)."""
    if not latencies_ms.size:
        return []
    seconds = np.floor(produced_at - produced_at.min()).astype(np.int64)
    rows = []
    for second in np.unique(seconds):
        window = latencies_ms[seconds == second]
        rows.append({
            "second": int(second),
            "events": int(window.size),
            "p50_ms": float(np.percentile(window, 50)),
            "p99_ms": float(np.percentile(window, 99)),
            "max_ms": float(window.max()),
        })
    return rows


def _trigger_of(value: bytes) -> str:
    """The event a cross-recommendation answers."""
    return str(orjson.loads(value)["trigger_event_id"])


def _event_id_of(value: bytes) -> str:
    """The event the naive agent forwarded (its output is the event itself)."""
    return str(orjson.loads(value)["event_id"])


async def _offer_at_rate(
    run: _Run,
    events: list[tuple[str, bytes, bytes, str]],
    since: dict[Any, int],
    answer_of: Callable[[bytes], str],
    on_progress: Callable[[int], None],
) -> tuple[dict[str, float], dict[str, float], float]:
    """Produce ``events`` paced at the configured rate while consuming the outputs."""
    config = run.config
    total = len(events)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=run.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    producer = AIOKafkaProducer(bootstrap_servers=run.bootstrap, linger_ms=0, acks=1)
    await consumer.start()
    await producer.start()
    produced: dict[str, float] = {}
    received: dict[str, float] = {}
    done_producing = asyncio.Event()

    async def consume() -> None:
        partitions = list(since)
        consumer.assign(partitions)
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        grace_until = None
        while True:
            batches = await consumer.getmany(timeout_ms=50, max_records=2_000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    answered = answer_of(record.value)
                    if answered not in received:
                        received[answered] = now
            if done_producing.is_set():
                if len(received.keys() & produced.keys()) >= total:
                    return
                grace_until = grace_until or time.monotonic() + LATENCY_GRACE_S
                if time.monotonic() > grace_until:
                    return

    consuming = asyncio.create_task(consume())
    started = time.monotonic()
    sent = 0
    try:
        while sent < total:
            due = min(total, int((time.monotonic() - started) * config.rate) + 1)
            while sent < due:
                topic_name, key, value, event_id = events[sent]
                produced[event_id] = time.time()
                await producer.send(topic_name, key=key, value=value)
                sent += 1
            if sent % 100 == 0:
                on_progress(sent)
            await asyncio.sleep(PACE_TICK_S)
        offered_seconds = time.monotonic() - started
        await producer.flush()
        on_progress(sent)
        done_producing.set()
        await consuming
    finally:
        consuming.cancel()
        await producer.stop()
        await consumer.stop()
    return produced, received, offered_seconds


def _latency_events(run: _Run, topic_prefix: str) -> list[tuple[str, bytes, bytes, str]]:
    """The events after the saturation ones in the endless replay, to ``topic_prefix`` + each
    event's topic name; ``rate · latency_seconds`` of them."""
    total = int(round(run.config.rate * run.config.latency_seconds))
    return [
        (topic_prefix + topic, key, value, event_id)
        for topic, key, value, event_id in run.workload.replay(run.config.events, total)
    ]


def _memory(run: _Run, workers: list[WorkerProcess], app_id: str, prefix: str, rss_ready: int) -> dict[str, Any]:
    """Worker RSS growth (all of xsell's workers), and the serialised (and parsed) sizes of what they hold."""
    rss_end = sum(worker.rss_bytes() for worker in workers)
    run.step("memory: reading tables", 0, 3)
    users = _latest_values(asyncio.run(kafka_io.read_topic(run.bootstrap, f"{app_id}-user-state-changelog")))
    profiles = {key: value for key, value in users.items() if not key.startswith(b"__")}
    run.step("memory: reading tables", 1, 3)
    counts = _latest_values(asyncio.run(kafka_io.read_topic(run.bootstrap, f"{app_id}-cooccurrence-changelog")))
    counts = {key: value for key, value in counts.items() if not key.startswith(b"__")}
    run.step("memory: reading tables", 2, 3)
    associations = _latest_values(asyncio.run(kafka_io.read_topic(run.bootstrap, prefix + "item-associations")))
    run.step("memory: reading tables", 3, 3)
    growth = rss_end - rss_ready
    entries = len(profiles) + len(associations)
    return {
        "rss_ready_bytes": rss_ready,
        "rss_end_bytes": rss_end,
        "rss_growth_bytes": growth,
        "users": len(profiles),
        "items_with_counts": len(counts),
        "items_with_associations": len(associations),
        "rss_growth_per_user_and_item_bytes": growth / entries if entries else float("nan"),
        "user_state_serialised_bytes_mean": _mean_size(profiles),
        "cooccurrence_serialised_bytes_mean": _mean_size(counts),
        "item_associations_serialised_bytes_mean": _mean_size(associations),
        "item_associations_parsed_bytes_mean": _parsed_size(associations),
    }


def _latest_values(records: list[kafka_io.OutputRecord]) -> dict[bytes, bytes]:
    latest: dict[bytes, bytes | None] = {}
    for record in records:
        latest[record.key or b""] = record.value
    return {key: value for key, value in latest.items() if value is not None}


def _mean_size(values: dict[bytes, bytes]) -> float:
    return float(np.mean([len(value) for value in values.values()])) if values else float("nan")


def _parsed_size(values: dict[bytes, bytes]) -> float:
    """Bytes Python allocates per record when parsed as the replica parses it (orjson → dicts,
    without the published rules: ``stream.replica.parse_association_record``)."""
    if not values:
        return float("nan")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parsed = [parse_association_record(value) for value in values.values()]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del parsed
    return (after - before) / len(values)
