"""``WorkerProcess.cpu_seconds`` (the pipeline benchmark's events per CPU second) against the
child's own account of its CPU time."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from stream.benchmarks.workers import WorkerProcess

BURN_THEN_WAIT = """
import sys, threading, time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(1000))
threads = [threading.Thread(target=burn, args=(0.2,)) for _ in range(2)]  # every thread counts
for thread in threads: thread.start()
for thread in threads: thread.join()
print(f"used {time.process_time():.4f}", flush=True)
time.sleep(60)
"""


def test_cpu_seconds_matches_the_process_own_cpu_time(tmp_path: Path) -> None:
    worker = WorkerProcess(
        name="burner", command=[sys.executable, "-c", BURN_THEN_WAIT], env={}, log_path=tmp_path / "burner.log"
    ).start()
    try:
        deadline = time.monotonic() + 60
        while "used" not in worker.log_tail() and time.monotonic() < deadline:
            worker.check_alive()
            time.sleep(0.05)
        own = float(worker.log_tail().split("used ")[1].split()[0])
        measured = worker.cpu_seconds()
    finally:
        worker.stop()
    assert own >= 0.4
    # /proc counts in clock ticks (usually 10 ms); the child prints a moment before we read.
    assert measured == pytest.approx(own, abs=0.05)
