"""What a query returns: rows of ``(item_id, cosine similarity)``, best first, plus a report
of how they were found.

The report matters to callers that must know whether the approximate graph or exact search
answered: recall tests assert the HNSW path, the stream counts exact fallbacks in a metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

__all__ = ["Neighbour", "NeighbourArrays", "QueryPath", "QueryReport", "QueryResult"]

Neighbour = tuple[str, float]
"""One result: the item id and its cosine similarity to the query."""


class QueryPath(StrEnum):
    """Which search answered a query call."""

    HNSW = "hnsw"  # every row came from the HNSW graph
    EXACT = "exact"  # every row came from exact (numpy) search
    MIXED = "mixed"  # a filtered call where some rows needed the exact fallback


@dataclass(slots=True)
class QueryReport:
    """How one ``query`` call was answered.

    ``reason`` says why exact search was used, when it was ("deterministic", "small index",
    "filter too selective", "hnswlib found fewer than k"); ``deepest_fetch`` is the largest
    number of neighbours asked of HNSW for one row (k, or more when a filter removed some).
    """

    path: QueryPath
    hnsw_rows: int
    exact_rows: int
    deepest_fetch: int
    reason: str = ""


class QueryResult(list[list[Neighbour]]):
    """A list with one row per query (``list[tuple[str, float]]``, best first) and its ``report``."""

    report: QueryReport

    def __init__(self, rows: list[list[Neighbour]], report: QueryReport) -> None:
        super().__init__(rows)
        self.report = report

    @property
    def path(self) -> QueryPath:
        return self.report.path


@dataclass(frozen=True, slots=True)
class NeighbourArrays:
    """What ``query_arrays`` returns: the same answers as ``query`` without a Python object per
    neighbour, for callers that go on with arrays (the stream's ranking).

    ``ids`` is an object array ``(queries, m)`` of item ids and ``scores`` a float32 array
    ``(queries, m)`` of cosine similarities, best first, where ``m = min(k, live items)``.
    """

    ids: np.ndarray
    scores: np.ndarray
    report: QueryReport

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def rows(self) -> list[list[Neighbour]]:
        """The answers as ``query`` gives them: rows of ``(item_id, similarity)``."""
        return neighbour_rows(self.ids, self.scores)


def neighbour_rows(ids: np.ndarray, scores: np.ndarray) -> list[list[Neighbour]]:
    """Rows of ``(id, score)`` tuples from two ``(n, m)`` arrays: one flat zip, then slices
    (a third faster than one zip per row at m = 10)."""
    width = ids.shape[1] if ids.ndim == 2 else 0
    if width == 0:
        return [[] for _ in range(ids.shape[0])]
    flat = list(zip(ids.ravel().tolist(), scores.ravel().tolist(), strict=True))
    return [flat[start : start + width] for start in range(0, len(flat), width)]
