"""``DirectDelivery.wait_first``: what Faust's fetcher sees is what mode's ``Service.wait_first``
gives (the reference here), with no tasks when the delivery completes without waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from mode import Service

from stream.app import DirectDelivery


class Reference(Service):
    """mode's own ``wait_first``, for the same scenarios."""


def run_counting_tasks(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, int]:
    """Run ``scenario`` on a fresh loop; return its result and how many tasks it created."""
    created = 0

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)
        try:
            return await scenario()
        finally:
            loop.set_task_factory(None)

    return asyncio.run(main()), created


def both(make: Callable[[type[Service]], Coroutine[Any, Any, Any]]) -> tuple[tuple[Any, int], tuple[Any, int]]:
    return run_counting_tasks(lambda: make(DirectDelivery)), run_counting_tasks(lambda: make(Reference))


def test_a_delivery_that_need_not_wait_completes_at_once_without_tasks() -> None:
    delivered: list[str] = []

    async def deliver(record: str) -> str:
        delivered.append(record)
        return f"queued {record}"

    async def scenario(kind: type[Service]) -> tuple[list[Any], list[Any], bool]:
        service, suspend = kind(), asyncio.Event()
        callback = deliver("r1")
        done, results, stopped = await service.wait_first(callback, suspend)
        return [winner is callback for winner in done], results, stopped

    (direct, direct_tasks), (reference, reference_tasks) = both(scenario)
    assert direct == reference == ([True], ["queued r1"], False)
    assert delivered == ["r1", "r1"]
    assert direct_tasks == 0
    assert reference_tasks == 4  # the callback, the flow event, stopped and crashed


def test_a_delivery_that_waits_for_room_completes_once_there_is_room() -> None:
    async def scenario(kind: type[Service]) -> tuple[list[Any], list[Any]]:
        service, suspend, room = kind(), asyncio.Event(), asyncio.Event()
        steps: list[str] = []

        async def deliver() -> str:
            steps.append("full")
            await room.wait()
            steps.append("put")
            return "queued"

        asyncio.get_running_loop().call_later(0.01, room.set)
        callback = deliver()
        done, results, _ = await service.wait_first(callback, suspend)
        assert steps == ["full", "put"]
        return [winner is callback for winner in done], results

    (direct, _), (reference, _) = both(scenario)
    assert direct == reference == ([True], ["queued"])


def test_a_waiting_delivery_is_abandoned_and_cancelled_when_the_flow_is_suspended() -> None:
    async def scenario(kind: type[Service]) -> tuple[list[Any], list[str]]:
        service, suspend, room = kind(), asyncio.Event(), asyncio.Event()
        steps: list[str] = []

        async def deliver() -> None:
            steps.append("full")
            try:
                await room.wait()
                steps.append("put")
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        asyncio.get_running_loop().call_later(0.01, suspend.set)
        done, _, stopped = await service.wait_first(deliver(), suspend)
        await asyncio.sleep(0)  # the cancellation reaches the delivery
        assert not stopped
        return [winner is suspend for winner in done], steps

    (direct, _), (reference, _) = both(scenario)
    assert direct == reference == ([True], ["full", "cancelled"])


@pytest.mark.parametrize("waits_first", [False, True], ids=["at-once", "after-waiting"])
def test_a_delivery_that_fails_raises_its_error(waits_first: bool) -> None:
    async def scenario(kind: type[Service]) -> str:
        async def deliver() -> None:
            if waits_first:
                await asyncio.sleep(0.001)
            raise ValueError("undecodable")

        try:
            await kind().wait_first(deliver(), asyncio.Event())
        except ValueError as exc:
            return str(exc)
        return "no error"

    (direct, _), (reference, _) = both(scenario)
    assert direct == reference == "undecodable"


def test_a_stopped_service_reports_stopped_as_mode_does() -> None:
    async def scenario(kind: type[Service]) -> tuple[list[Any], bool]:
        service = kind()
        service._stopped.set()

        async def deliver() -> str:
            return "queued"

        done, _, stopped = await service.wait_first(deliver(), asyncio.Event())
        return done, stopped

    (direct, _), (reference, _) = both(scenario)
    assert direct == reference == ([], True)
