"""The one exception of the pipeline benchmark: a run that cannot go on (the CLI prints it
as one line and exits 2)."""

from __future__ import annotations

from stream.errors import XsellError

__all__ = ["BenchmarkError"]


class BenchmarkError(XsellError):
    """A benchmark run that cannot go on: bad input, a worker that died, a phase that stalled."""
