"""Benchmarks that need the whole system running: ``xsell bench pipeline``.

The measurements live here, not in ``tests/``: they measure and report, and never fail on
speed. Modules::

    workload.py   the Taobao events and the synthetic 50k-item catalog the run replays
    workers.py    the worker subprocesses (xsell's and the naive Faust app), started and
                  stopped by the PID we recorded
    naive_app.py  the framework ceiling: a Faust agent that forwards each event with send()
    pipeline.py   the phases (client ceiling, framework ceiling, xsell's throughput, latency
                  at a fixed rate, memory) and the report

Errors: ``BenchmarkError`` (a ``stream.errors.XsellError``) for anything that stops a run.
"""

from __future__ import annotations

from stream.benchmarks.errors import BenchmarkError

__all__ = ["BenchmarkError"]
