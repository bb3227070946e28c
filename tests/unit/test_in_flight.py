"""The interactions agent sends a batch's pairs while the next batch is read and ranked; the
next batch may write its states only once those pairs have left (``_InFlight``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents.interactions import _InFlight


class FakeWork:
    """Records its sends; the first ``failures`` of them raise."""

    def __init__(self, failures: int = 0) -> None:
        self.release = asyncio.Event()
        self.sends: list[tuple[Any, ...]] = []
        self.failures = failures

    async def durable_then_send(self, answers: Any = ()) -> None:
        await self.release.wait()
        self.sends.append(tuple(answers))
        if len(self.sends) <= self.failures:
            raise ConnectionError("broker gone")


def test_settle_waits_until_the_pairs_in_flight_have_left() -> None:
    async def scenario() -> None:
        in_flight, work = _InFlight(), FakeWork()
        in_flight.start(work, ["answer"])  # type: ignore[arg-type]
        settling = asyncio.ensure_future(in_flight.settle())
        await asyncio.sleep(0.01)
        assert not settling.done()  # the next batch's writes would wait here
        work.release.set()
        await settling
        assert work.sends == [("answer",)]
        await in_flight.settle()  # nothing in flight any more: returns at once, sends nothing
        assert work.sends == [("answer",)]

    asyncio.run(scenario())


def test_pairs_whose_send_failed_are_sent_again_before_the_next_batch_writes() -> None:
    async def scenario() -> None:
        in_flight, work = _InFlight(), FakeWork(failures=1)
        work.release.set()
        in_flight.start(work, ["answer"])  # type: ignore[arg-type]
        await in_flight.settle()
        assert work.sends == [("answer",), ()]  # the retry re-sends the pairs, not the answers

    asyncio.run(scenario())


def test_pairs_that_failed_twice_stay_in_flight_until_they_have_left() -> None:
    async def scenario() -> None:
        in_flight, work = _InFlight(), FakeWork(failures=2)
        work.release.set()
        in_flight.start(work, [])  # type: ignore[arg-type]
        with pytest.raises(ConnectionError):  # the batch that waits fails (and is dead-lettered)
            await in_flight.settle()
        assert len(work.sends) == 2
        await in_flight.settle()  # the next batch sends them once more before it writes
        assert len(work.sends) == 3
        await in_flight.settle()  # they have left: nothing more in flight
        assert len(work.sends) == 3

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_send_in_flight() -> None:
    async def scenario() -> None:
        in_flight, work = _InFlight(), FakeWork()
        in_flight.start(work, [])  # type: ignore[arg-type]
        waiter = asyncio.ensure_future(in_flight.settle())
        await asyncio.sleep(0.01)
        waiter.cancel()  # e.g. the agent stopping while it waited
        with pytest.raises(asyncio.CancelledError):
            await waiter
        settling = asyncio.ensure_future(in_flight.settle())  # the agent's last settle
        await asyncio.sleep(0.01)
        assert not settling.done()  # still waits for the same send
        work.release.set()
        await settling
        assert work.sends == [()]

    asyncio.run(scenario())
