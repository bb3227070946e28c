"""Real workers against the session's real broker.

``worker_factory`` starts ``xsell worker`` processes (each test gets its own app id, topic
prefix, data directory and web port) and stops them at the end of the test by the PID it
recorded, also when the test fails. ``kafka_io`` produces and consumes the test's topics.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.localkafka import LocalKafka, free_port
from stream.processes import ChildProcess

READY_TIMEOUT_S = 180.0


@dataclass
class Worker(ChildProcess):
    """One ``xsell worker`` subprocess (stopped by its PID: ``stream.processes.ChildProcess``)."""

    web_port: int = 0
    stop_timeout_s: float = 60.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> Worker:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                raise AssertionError(f"worker {self.name} exited {code}:\n{self.log_tail(60)}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker {self.name} not ready in {timeout_s:.0f}s:\n{self.log_tail(60)}")

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=10, follow_redirects=True)


@dataclass
class Deployment:
    """What the workers of one test share: app id, topic prefix, settings."""

    bootstrap: str
    root: Path
    app_id: str = field(default_factory=lambda: f"xsell-test-{uuid.uuid4().hex[:8]}")
    partitions: int = 4
    settings: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.app_id}."

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def worker(self, name: str, *, start: bool = True, store: str = "memory", role: str = "all") -> Worker:
        """A worker of this deployment (its data directory survives restarts under ``name``)."""
        web_port = free_port()
        env = {
            **os.environ,
            "XSELL_BROKER": f"kafka://{self.bootstrap}",
            "XSELL_APP_ID": self.app_id,
            "XSELL_TOPIC_PREFIX": self.prefix,
            "XSELL_PARTITIONS": str(self.partitions),
            "XSELL_DATA_DIR": str(self.root / name),
            "XSELL_WEB_PORT": str(web_port),
            "XSELL_WEB_HOST": "127.0.0.1",
            "XSELL_STORE": store,
            "XSELL_IDLE_FLUSH_S": "1",
            "XSELL_LATENESS_S": "60",
            "XSELL_EXACT_INDEX_BELOW": "1000000",  # exact search: restarts give identical answers
            "XSELL_LOG_LEVEL": "info",
            "XSELL_ROLE": role,
            **self.settings,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "stream", "worker"]
        worker = Worker(name, command, env, self.root / f"{name}.log", web_port=web_port)
        self.workers.append(worker)
        return worker.start() if start else worker


@pytest.fixture
def deployment_factory(kafka_broker: LocalKafka, tmp_path: Path) -> Iterator[Any]:
    """Makes independent deployments (own app id and topics); stops all their workers after."""
    made: list[Deployment] = []

    def make(**options: Any) -> Deployment:
        deployment = Deployment(kafka_broker.bootstrap, tmp_path / f"d{len(made)}", **options)
        made.append(deployment)
        return deployment

    try:
        yield make
    finally:
        for deployment in made:
            for worker in deployment.workers:
                worker.stop(timeout_s=30)


@pytest.fixture
def deployment(deployment_factory: Any) -> Deployment:
    """A fresh xsell deployment on the session broker; its workers are stopped afterwards."""
    return deployment_factory()


class KafkaIO:
    """Produce to and consume from a deployment's topics (synchronous wrappers)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def produce(self, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]) -> int:
        async def run() -> int:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
            await producer.start()
            try:
                futures = [await producer.send(topic, key=key, value=value) for key, value in messages]
                await asyncio.gather(*futures)
                return len(futures)
            finally:
                await producer.stop()

        return asyncio.run(run())

    def produce_json(self, topic: str, records: Iterable[dict[str, Any]], key_field: str) -> int:
        return self.produce(topic, ((str(r[key_field]).encode(), orjson.dumps(r)) for r in records))

    def consume(
        self,
        topic: str,
        *,
        until: int | None = None,
        timeout_s: float = 60.0,
        idle_s: float = 3.0,
        done: Any = None,
    ) -> list[Any]:
        """Every record of ``topic`` from the beginning: stops at ``until`` records, when
        ``done(records)`` is true, or (with neither) after ``idle_s`` without new ones; at
        ``timeout_s`` at the latest."""

        async def run() -> list[Any]:
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
            )
            await consumer.start()
            found: list[Any] = []
            deadline = time.monotonic() + timeout_s
            last_new = time.monotonic()
            try:
                while time.monotonic() < deadline:
                    batches = await consumer.getmany(timeout_ms=300, max_records=5000)
                    for records in batches.values():
                        found.extend(records)
                        last_new = time.monotonic()
                    if until is not None and len(found) >= until:
                        break
                    if done is not None:
                        if done(found):
                            break
                    elif until is None and time.monotonic() - last_new > idle_s:
                        break
            finally:
                await consumer.stop()
            return found

        return asyncio.run(run())

    def consume_json(self, topic: str, **options: Any) -> list[dict[str, Any]]:
        return [orjson.loads(record.value) for record in self.consume(topic, **options) if record.value is not None]


@pytest.fixture(scope="session")
def kafka_io(kafka_broker: LocalKafka) -> KafkaIO:
    return KafkaIO(kafka_broker.bootstrap)


def wait_until(condition: Any, timeout_s: float = 60.0, every_s: float = 0.5, message: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or "condition not met in time")
        time.sleep(every_s)


@pytest.fixture(scope="session")
def until() -> Any:
    """``wait_until`` as a fixture (test modules cannot import conftest)."""
    return wait_until
