"""``xsell produce`` and ``xsell consume``: move JSON between files and topics."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.progress import Progress

from stream.cli.base import app, err_console
from stream.errors import UsageError
from stream.settings import Settings
from stream.topics import EVENT_TOPICS, admin_security

KIND_TOPICS = {kind: topic for topic, kind in EVENT_TOPICS.items()}
KEY_FIELDS = {
    **{name: "user_id" for name in EVENT_TOPICS},
    "catalog": "item_id",
    "ad-campaigns": "campaign_id",
}

BrokerOption = typer.Option(
    None, "--broker", help="Kafka bootstrap (default: XSELL_BROKER or 127.0.0.1:9092)."
)
PrefixOption = typer.Option(None, "--topic-prefix", help="Topic prefix (default: XSELL_TOPIC_PREFIX).")


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a CSV file (with a header) or a JSON-lines file, by extension or content."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(1).lstrip()
    if path.suffix.lower() in {".jsonl", ".json", ".ndjson"} or head == b"{":
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise UsageError(f"{path}:{number}: not JSON ({exc})") from exc
                if not isinstance(record, dict):
                    raise UsageError(f"{path}:{number}: a JSON object per line expected")
                yield record
        return
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise UsageError(f"{path}: empty file, a CSV header was expected")
        yield from (dict(row) for row in reader)


def to_event(record: dict[str, Any], origin: str) -> dict[str, Any]:
    """A generic-CSV row (``user,item,kind,ts`` with ts in seconds) as the event contract."""
    if "user_id" in record:
        return record
    event = {
        "event_id": record.get("event_id") or hashlib.sha1(origin.encode()).hexdigest()[:20],
        "user_id": record.get("user"),
        "item_id": record.get("item"),
        "kind": record.get("kind"),
    }
    ts = record.get("ts")
    try:
        event["ts"] = int(float(ts) * 1000) if ts not in (None, "") else None
    except ValueError:
        event["ts"] = ts  # the worker dead-letters it with its reason
    return event


def route(topic: str, record: dict[str, Any], origin: str) -> tuple[str, dict[str, Any]]:
    """The topic a record goes to: ``events`` routes each event by its ``kind``."""
    if topic != "events":
        return topic, record
    event = to_event(record, origin)
    kind = event.pop("kind", None)
    if kind not in KIND_TOPICS:
        raise UsageError(f"{origin}: kind must be click, cart or purchase, got {kind!r}")
    return KIND_TOPICS[kind], event


async def _produce(settings: Settings, topic: str, path: Path, rate: float | None) -> int:
    from aiokafka import AIOKafkaProducer

    records = list(read_records(path))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks="all", **admin_security(settings)
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task(f"producing to {topic}", total=len(records))
            pending = []
            for number, record in enumerate(records, start=1):
                target, value = route(topic, record, f"{path}:{number}")
                key_field = KEY_FIELDS.get(target)
                key = value.get(key_field) if key_field else None
                pending.append(
                    await producer.send(
                        settings.topic(target),
                        key=str(key).encode() if key is not None else None,
                        value=orjson.dumps(value),
                    )
                )
                sent += 1
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                if len(pending) >= 1000:
                    await asyncio.gather(*pending)
                    pending.clear()
                progress.advance(task)
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


@app.command("produce")
def produce(
    topic: str = typer.Option(
        ..., "--topic", help="Topic name without prefix, or 'events' to route by kind."
    ),
    file: Path = typer.Option(..., "--file", help="CSV with a header, or JSON lines."),
    rate: float = typer.Option(0.0, "--rate", min=0, help="Messages per second (0: as fast as possible)."),
    broker: str = BrokerOption,
    topic_prefix: str = PrefixOption,
) -> None:
    """Produce a file's records to a topic, keyed as the contracts say."""
    settings = Settings.from_env(broker=broker, topic_prefix=topic_prefix)
    sent = asyncio.run(_produce(settings, topic, file, rate or None))
    err_console.print(f"produced {sent} messages")


async def _consume(settings: Settings, topic: str, from_beginning: bool, limit: int, timeout_s: float) -> int:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        **admin_security(settings),
    )
    await consumer.start()
    printed = 0
    deadline = time.monotonic() + timeout_s
    try:
        while (not limit or printed < limit) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    value = record.value
                    line = value.decode("utf-8", "replace") if value is not None else "null"
                    sys.stdout.write(line + "\n")
                    printed += 1
                    if limit and printed >= limit:
                        break
            sys.stdout.flush()
    finally:
        await consumer.stop()
    return printed


@app.command("consume")
def consume(
    topic: str = typer.Option(..., "--topic", help="Topic name without prefix."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the earliest offset."),
    limit: int = typer.Option(0, "--max", min=0, help="Stop after this many messages (0: no limit)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0, help="Stop after this many seconds."),
    broker: str = BrokerOption,
    topic_prefix: str = PrefixOption,
) -> None:
    """Print a topic's messages as JSON lines."""
    settings = Settings.from_env(broker=broker, topic_prefix=topic_prefix)
    asyncio.run(_consume(settings, topic, from_beginning, limit, timeout))
