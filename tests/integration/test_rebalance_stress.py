"""Diagnosis first: rotate workers many times and check that no event is lost or answered twice.

Runs only when ``XSELL_STRESS_CYCLES`` is a number (``make test`` skips it). Each cycle starts
a new worker beside the current one, feeds half a synthetic log, stops the old worker, feeds
the other half, and checks every answer so far: two rebalances and two recoveries per cycle,
the path of the Faust races in docs/DECISIONS.md (12 cycles take about 4 minutes). On a
failure the surviving workers get SIGUSR1, so their logs end with every thread's and task's
stack (mode's ``cry``); run the workers with ``XSELL_LOG_LEVEL=debug`` to log each batch's
offsets as well.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from stream.partitions import partition_for
from tests.integration.test_stream_reliability import (
    PRODUCED_TOPIC_BY_TOPIC,
    answers_by_trigger,
    assigned,
    produce_events,
    synthetic_log,
)

CYCLES = os.environ.get("XSELL_STRESS_CYCLES", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not CYCLES.isdigit(), reason="diagnosis only: set XSELL_STRESS_CYCLES=N"),
]
ALL = {"0", "1", "2", "3"}


def test_rotating_workers_lose_and_repeat_nothing(deployment_factory, kafka_io, until):
    deployment = deployment_factory(
        settings={**PRODUCED_TOPIC_BY_TOPIC, "XSELL_LOG_LEVEL": os.environ.get("XSELL_LOG_LEVEL", "info")}
    )
    old = deployment.worker("w0").wait_ready()
    produced: dict[str, dict] = {}

    def check(stage: str, workers) -> None:
        by_trigger = answers_by_trigger(kafka_io, deployment, list(produced.values()), timeout_s=90)
        missing = sorted(set(produced) - set(by_trigger))
        repeated = sorted(trigger for trigger, found in by_trigger.items() if len(found) > 1)
        if missing or repeated:
            for worker in workers:
                os.kill(worker.pid, signal.SIGUSR1)
            time.sleep(5)

            def where(event_id: str) -> tuple:
                event = produced[event_id]
                return event_id, event["kind"], partition_for(event["user_id"].encode(), deployment.partitions)

            pytest.fail(
                f"{stage}: {len(missing)} never answered {[where(e) for e in missing[:20]]}, "
                f"{len(repeated)} answered twice {[where(e) for e in repeated[:20]]}; "
                f"logs: {[str(worker.log_path) for worker in workers]}"
            )

    for cycle in range(1, int(CYCLES) + 1):
        new = deployment.worker(f"w{cycle}").wait_ready()
        shared = lambda old=old, new=new: assigned(old, deployment) and assigned(new, deployment)  # noqa: E731
        until(shared, 120, message="partitions not shared")
        events = synthetic_log(30, seed=100 + cycle)
        for event in events:
            event["event_id"] = f"c{cycle}-{event['event_id']}"
        half = len(events) // 2
        produced.update((event["event_id"], event) for event in events[:half])
        produce_events(kafka_io, deployment, events[:half])
        check(f"cycle {cycle}, shared", [old, new])
        assert old.stop() == 0, old.log_tail()
        until(lambda new=new: assigned(new, deployment) == ALL, 120, message="partitions did not move")
        produced.update((event["event_id"], event) for event in events[half:])
        produce_events(kafka_io, deployment, events[half:])
        check(f"cycle {cycle}, after the handover", [new])
        old = new
