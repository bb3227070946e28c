"""Baskets (orders) counted in vectorised mini-batches, and the same baskets as events.

A basket is one transaction whose lines have no inner order: every ordered pair of distinct
items counts once in ``purchase->purchase`` and every item once as a purchase occurrence,
exactly what ``UserActivity`` does for the purchase lines of one order. Here a mini-batch
of baskets becomes a sparse basket × item matrix B and ``Bᵀ·B`` gives all pair counts at
once (the diagonal holds the item counts), so a batch costs a sparse product instead of
one Python step per pair. ``baskets_to_events`` gives the per-event route, which the tests
use to check that both agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from stream.engine.events import PURCHASE, Event

__all__ = ["BasketCounts", "basket_counts", "baskets_to_events"]


@dataclass(frozen=True, slots=True)
class BasketCounts:
    """Counts of one mini-batch: items, per-item basket counts, pair counts (items × items)."""

    items: list[str]
    occurrences: NDArray[np.float64]
    pairs: sparse.csr_matrix
    baskets: int


def basket_counts(baskets: Sequence[Sequence[str]]) -> BasketCounts:
    """Count a batch of baskets (items within a basket are taken once each)."""
    codes: dict[str, int] = {}
    rows: list[int] = []
    columns: list[int] = []
    for number, basket in enumerate(baskets):
        for item in dict.fromkeys(basket):
            code = codes.get(item)
            if code is None:
                code = codes[item] = len(codes)
            rows.append(number)
            columns.append(code)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (np.asarray(rows), np.asarray(columns))),
        shape=(len(baskets), len(codes)),
    )
    together = (matrix.T @ matrix).tocsr()
    occurrences = together.diagonal().copy()
    together.setdiag(0)
    together.eliminate_zeros()
    return BasketCounts(list(codes), occurrences, together, len(baskets))


def baskets_to_events(
    baskets: Sequence[Sequence[str]], *, ts: int = 0, prefix: str = "basket"
) -> list[Event]:
    """One purchase event per basket line; each basket is its own user and order."""
    events = []
    for number, basket in enumerate(baskets):
        basket_id = f"{prefix}:{number}"
        for position, item in enumerate(basket):
            events.append(Event(f"{basket_id}:{position}", basket_id, item, PURCHASE, ts, order_id=basket_id))
    return events
