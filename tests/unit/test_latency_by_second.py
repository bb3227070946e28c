"""The pipeline benchmark's latency per second of its phase (``latency_by_second``)."""

import numpy as np
import pytest

from stream.benchmarks.pipeline import latency_by_second


def test_events_are_grouped_by_the_second_they_were_produced_in() -> None:
    # Seconds count from the first event: 100.2 and 100.9 are in second 0, 102.5 in second 2
    # (second 1 had no answered event), 103.3 in second 3.
    produced = np.array([100.2, 100.9, 102.5, 103.3])
    latencies = np.array([10.0, 30.0, 2_000.0, 40.0])

    rows = latency_by_second(produced, latencies)

    assert [(row["second"], row["events"]) for row in rows] == [(0, 2), (2, 1), (3, 1)]
    # Two values 10 and 30: the median 20, the 99th percentile 10 + 0.99 * 20 (linear).
    assert rows[0]["p50_ms"] == pytest.approx(20.0)
    assert rows[0]["p99_ms"] == pytest.approx(29.8)
    assert rows[0]["max_ms"] == 30.0
    assert rows[1] == {"second": 2, "events": 1, "p50_ms": 2_000.0, "p99_ms": 2_000.0, "max_ms": 2_000.0}


def test_no_answers_no_rows() -> None:
    assert latency_by_second(np.array([]), np.array([])) == []
