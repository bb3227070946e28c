"""Popularity so far: items by how many events they had up to now, ties to the item seen first.

Both a ``Ranker`` and an ``Observer``: counts live in a growing numpy array indexed by the
order in which items were first seen, so a ranking is one partition and one small sort.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.evaluation.protocol import LoggedEvent

__all__ = ["Popularity"]

INITIAL_CAPACITY = 1024


class Popularity:
    """Event counts per item over everything applied so far."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []
        self.counts = np.zeros(INITIAL_CAPACITY, dtype=np.int64)

    def _code(self, item: str) -> int:
        code = self.codes.get(item)
        if code is None:
            code = self.codes[item] = len(self.names)
            self.names.append(item)
            if code >= self.counts.shape[0]:
                self.counts = np.concatenate([self.counts, np.zeros_like(self.counts)])
        return code

    def warm(self, events: Sequence[LoggedEvent]) -> None:
        codes = np.array([self._code(event.item) for event in events], dtype=np.int64)
        if codes.shape[0]:
            np.add.at(self.counts, codes, 1)

    def apply(self, event: LoggedEvent) -> None:
        self.counts[self._code(event.item)] += 1

    def rank(self, user: str, ts: int, depth: int) -> list[str]:
        known = len(self.names)
        if known == 0:
            return []
        counts = self.counts[:known]
        depth = min(depth, known)
        threshold = np.partition(counts, known - depth)[known - depth]
        candidates = np.flatnonzero(counts >= threshold)  # ascending code = first seen first
        order = candidates[np.argsort(-counts[candidates], kind="stable")][:depth]
        return [self.names[code] for code in order.tolist()]
