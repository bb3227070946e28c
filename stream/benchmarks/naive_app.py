"""The framework ceiling: a Faust agent that forwards each event with ``send()``, nothing else.

``python -m stream.benchmarks.naive_app worker`` (or ``faust -A stream.benchmarks.naive_app
worker``) runs it. It reads the same event topics as xsell, with the same consumer and
producer settings as ``stream.app`` (raw bytes, ``producer_linger_ms=5``, the same stream
buffer), so the gap between it and xsell's full path is xsell's own work per event.

Configured only by environment variables (``XSELL_BENCH_*``; Faust's own settings under
``XSELL_BENCH_FAUST_``):

| variable | meaning |
|---|---|
| ``XSELL_BENCH_BROKER`` | ``kafka://host:port`` |
| ``XSELL_BENCH_APP_ID`` | consumer group |
| ``XSELL_BENCH_SOURCES`` | comma-separated input topics |
| ``XSELL_BENCH_SINK`` | output topic |
| ``XSELL_BENCH_DATA_DIR`` | Faust's data directory |
| ``XSELL_BENCH_PARTITIONS`` | partitions of the topics (default 4) |
| ``XSELL_BENCH_PROCESSING_GUARANTEE`` | ``at_least_once`` (default) or ``exactly_once`` |
"""

from __future__ import annotations

import os
from typing import Any

import faust

__all__ = ["app", "forward"]

DEFAULT_PARTITIONS = 4
STREAM_BUFFER = 4096  # stream.app's stream_buffer_maxsize at its default batch size


def _setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(f"XSELL_BENCH_{name}", default)
    if value is None:
        raise SystemExit(f"error: XSELL_BENCH_{name} is not set")
    return value


PARTITIONS = int(_setting("PARTITIONS", str(DEFAULT_PARTITIONS)))

app = faust.App(
    _setting("APP_ID", "xsell-bench-naive"),
    broker=_setting("BROKER", "kafka://127.0.0.1:9092"),
    env_prefix="XSELL_BENCH_FAUST_",
    autodiscover=False,
    datadir=_setting("DATA_DIR", ".xsell-bench-naive"),
    store="memory://",
    topic_partitions=PARTITIONS,
    processing_guarantee=_setting("PROCESSING_GUARANTEE", "at_least_once"),
    key_serializer="raw",
    value_serializer="raw",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    stream_buffer_maxsize=STREAM_BUFFER,
    producer_linger_ms=5,
)

_raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
source_topic = app.topic(*_setting("SOURCES", "clicks").split(","), partitions=PARTITIONS, **_raw)  # type: ignore[arg-type]
sink_topic = app.topic(_setting("SINK", "bench-naive-out"), partitions=PARTITIONS, **_raw)  # type: ignore[arg-type]


@app.agent(source_topic, name="xsell-bench-forward")
async def forward(stream: Any) -> None:
    """One ``send()`` per event, its delivery not awaited (Faust acks once it is sent)."""
    async for event in stream.events():
        await sink_topic.send(key=event.key, value=event.value)


if __name__ == "__main__":
    app.main()
