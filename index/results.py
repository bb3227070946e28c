"""What a query returns: rows of ``(item_id, cosine similarity)``, best first, plus a report
of how they were found.

The report matters to callers that must know whether the approximate graph or exact search
answered: recall tests assert the HNSW path, the stream counts exact fallbacks in a metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Neighbour", "QueryPath", "QueryReport", "QueryResult"]

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
