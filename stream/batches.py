"""Batches of a Faust stream that go as soon as nothing more is waiting.

Faust's ``Stream.take_events(max_, within)`` waits ``within`` after every batch, even when
records have queued up meanwhile: at 1,000 events/s an answer waited for the batch in
progress, then for the whole window (52 ms between batches), then for its own batch
(docs/benchmarks/pipeline.md, tenth set). A shorter window did not help either: the
stream moves one record from its queue into the batch per turn of the event loop, so the
window, not the backlog, set the batch size, and batches of 36 events could not keep up.

``take_batches`` takes a batch when it is full, or as soon as the stream's queue is empty
after a record was added: every record that had arrived is in it, and none waits a window
for records that have not. Under load the records that arrived while a batch was being
processed make up the next one, so batches grow with the load; idle, a lone event goes
alone. ``within`` only bounds how long the loop waits for that moment before it takes
what it has (records kept arriving as fast as they were moved).

After a batch of ``fill_from`` events or more (a backlog: more records are in Kafka than in
the stream's queue) the next batch waits up to ``within`` to fill, as ``take_events`` does:
the fetcher refills the queue in bursts, and taking it whenever it ran dry made batches of
~1,200 events instead of 2,000 at saturation, each paying a batch's fixed costs.

Everything else is Faust's ``take_events`` (faust-streaming 0.15): the same processor
fills the batch in the stream's background drainer, and the batch's events are acked
only once the caller has processed it, so offsets are committed for processed records
only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from mode.utils.futures import notify

__all__ = ["take_batches"]


def take_batches(stream: Any, max_: int, within: float, *, fill_from: int | None = None) -> AsyncIterator[list[Any]]:
    """Batches of at most ``max_`` events of ``stream`` (a Faust ``Stream``); see the module docstring."""
    batches = _take_batches(stream, max_, within, fill_from)
    active = getattr(stream, "_active_agens", None)
    if active is not None:  # Faust closes a stream's abandoned buffering generators when it stops
        active.add(batches)
    return batches


async def _take_batches(stream: Any, max_: int, within: float, fill_from: int | None) -> AsyncIterator[list[Any]]:
    events: list[Any] = []
    filling = False  # the last batch was a backlog's: wait for this one to fill
    ready = asyncio.Event()  # the batch is full, or nothing more is waiting in the queue
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    queue = stream.channel.queue

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:  # a batch is being processed: the next one starts after it
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found no current event")
            events.append(event)
            if len(events) >= max_:
                ready.set()
                consumed.clear()
                await stream.wait(consumed)  # never more than max_ events in a batch
            elif queue.empty() and not filling:
                ready.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False  # acked below, once the caller is done with the batch
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(ready, timeout=within)
            if not events:
                ready.clear()
                continue
            consuming = asyncio.get_running_loop().create_future()
            batch = list(events)
            filling = fill_from is not None and len(batch) >= fill_from
            try:
                yield batch
            finally:
                events.clear()
                for event in batch:
                    await stream.ack(event)
                notify(consuming)
                ready.clear()
                consumed.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)
