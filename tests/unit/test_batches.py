"""``take_batches`` on a real Faust stream: a batch goes as soon as nothing more is waiting
(never a window for records that have not come), holds at most ``max_`` events, and its
events are acked only once the caller is done with it. Faust's own ``take_events`` over
the same records is the reference for what is delivered and acked.

The window is an hour in every test: a batch that waited for it would fail the test by
its timeout (``DEADLINE_S``), whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust
from faust.types import Message

from stream.batches import take_batches

WINDOW_S = 3600.0
DEADLINE_S = 30.0

Taker = Callable[[Any, int, float], AsyncIterator[list[Any]]]


def faust_take_events(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    return stream.take_events(max_, within=within)  # type: ignore[no-any-return]


class Feed:
    """A Faust app's in-memory channel and a started stream over it (no broker is contacted)."""

    def __init__(self) -> None:
        self.app = faust.App("xsell-test-batches", broker="kafka://127.0.0.1:9", store="memory://")
        self.channel = self.app.channel(maxsize=1000)
        self.stream = self.app.stream(aiter(self.channel))
        self.offset = 0

    async def start(self) -> None:
        self.app.flow_control.resume()  # what the consumer does once partitions are assigned
        await self.stream.start()

    async def put(self, *values: int) -> list[Message]:
        """Deliver records as the conductor does (one reference per stream); return their messages."""
        messages = []
        for value in values:
            message = Message("events", 0, self.offset, 0.0, 0, [], None, value, None, generation_id=0)
            self.offset += 1
            message.incref()
            await self.channel.put(self.app.create_event(None, value, [], message))
            messages.append(message)
        return messages

    async def stop(self) -> None:
        await self.stream.stop()


async def collect(batches: AsyncIterator[list[Any]], count: int, record: list[Any]) -> None:
    """Take ``count`` batches; while a batch is "processed", note which of its events were acked."""
    async for batch in batches:
        record.append(([event.value for event in batch], [event.message.acked for event in batch]))
        await asyncio.sleep(0)
        if len(record) == count:
            return


def run(scenario: Callable[[Feed], Any]) -> Any:
    async def main() -> Any:
        feed = Feed()
        await feed.start()
        try:
            return await asyncio.wait_for(scenario(feed), DEADLINE_S)
        finally:
            await feed.stop()

    return asyncio.run(main())


def test_records_waiting_when_a_batch_ends_make_the_next_batch_at_once() -> None:
    async def scenario(feed: Feed) -> list[Any]:
        record: list[Any] = []
        gate = asyncio.Event()

        async def first_batch_is_slow() -> None:
            async for batch in take_batches(feed.stream, 100, WINDOW_S):
                record.append([event.value for event in batch])
                if len(record) == 1:
                    await gate.wait()  # records 1..3 arrive while this batch is processed
                else:
                    return

        taking = asyncio.ensure_future(first_batch_is_slow())
        await feed.put(0)
        while not record:
            await asyncio.sleep(0.01)
        await feed.put(1, 2, 3)
        gate.set()
        await taking
        return record

    assert run(scenario) == [[0], [1, 2, 3]]


def test_a_batch_holds_at_most_max_events_and_the_rest_follow_without_a_window() -> None:
    async def scenario(feed: Feed) -> list[list[int]]:
        record: list[Any] = []
        await feed.put(*range(12))
        await collect(take_batches(feed.stream, 5, WINDOW_S), 3, record)
        return [values for values, _ in record]

    assert run(scenario) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


def test_a_lone_record_goes_alone_without_waiting_for_the_window() -> None:
    async def scenario(feed: Feed) -> list[list[int]]:
        record: list[Any] = []
        taking = asyncio.ensure_future(collect(take_batches(feed.stream, 100, WINDOW_S), 2, record))
        await feed.put(7)
        while not record:
            await asyncio.sleep(0.01)
        await feed.put(8)
        await taking
        return [values for values, _ in record]

    assert run(scenario) == [[7], [8]]


def test_events_are_acked_after_their_batch_as_faust_take_events_acks_them() -> None:
    def acks_with(taker: Taker, within: float) -> tuple[list[list[int]], list[list[bool]], list[bool]]:
        async def scenario(feed: Feed) -> tuple[list[list[int]], list[list[bool]], list[bool]]:
            record: list[Any] = []
            messages = await feed.put(*range(7))
            await collect(taker(feed.stream, 4, within), 2, record)
            # collect returned inside the second batch: only the first batch's events are acked
            return [values for values, _ in record], [acked for _, acked in record], [m.acked for m in messages]

        return run(scenario)  # type: ignore[no-any-return]

    mine = acks_with(take_batches, WINDOW_S)
    reference = acks_with(faust_take_events, 0.05)  # Faust's window must pass before each batch
    assert mine == reference
    batches, acked_while_processed, acked_at_end = mine
    assert batches == [[0, 1, 2, 3], [4, 5, 6]]
    assert acked_while_processed == [[False] * 4, [False] * 3]
    assert acked_at_end == [True] * 4 + [False] * 3


def test_after_a_backlog_batch_the_next_one_waits_to_fill() -> None:
    """``fill_from``: after a batch that large the next waits to fill (here: the window is an
    hour, so only a full batch can come); after a smaller one a batch goes at once again."""

    async def scenario(feed: Feed) -> list[list[int]]:
        record: list[Any] = []
        batches = take_batches(feed.stream, 5, WINDOW_S, fill_from=3)
        taking = asyncio.ensure_future(collect(batches, 3, record))

        async def after(count: int) -> None:
            while len(record) < count:
                await asyncio.sleep(0.01)

        await feed.put(0, 1)
        await after(1)  # [0, 1]: two events, below fill_from, so the next goes at once
        await feed.put(2, 3, 4)
        await after(2)  # [2, 3, 4]: three, so the next waits to fill
        await feed.put(5)
        await asyncio.sleep(0.2)  # were it not filling, [5] would go now
        await feed.put(6, 7, 8, 9)
        await taking
        return [values for values, _ in record]

    assert run(scenario) == [[0, 1], [2, 3, 4], [5, 6, 7, 8, 9]]
