"""Space-Saving: the top partners of one item in bounded memory, with a stated error bound.

Metwally, Agrawal, El Abbadi (2005), weighted form. With ``capacity`` m counters and a total
added weight W, every kept key's estimate ``ĉ`` satisfies ``c ≤ ĉ ≤ c + error ≤ c + W/m``
(``error`` is recorded per key), and any key whose true weight exceeds ``W/m`` is kept. A
sketch whose ``capacity`` is None never evicts and counts exactly.

Two sketches merge (Agarwal et al., "Mergeable summaries", 2012): a key missing from a full
sketch may have had at most that sketch's minimum, which is added to its estimate and its
error, then the m largest keys are kept. The bounds add up, so the merged sketch still obeys
``ĉ ≤ c + W/m`` with W the sum of both totals.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any

from stream.engine.errors import EngineConfigError, StateFormatError

__all__ = ["SpaceSaving"]


class SpaceSaving:
    """Weighted heavy hitters over string keys; ``capacity=None`` is an exact counter."""

    __slots__ = ("capacity", "counts", "errors", "evictions", "total")

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise EngineConfigError(f"heavy-hitters capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.counts: dict[str, float] = {}
        self.errors: dict[str, float] = {}
        self.evictions = 0
        self.total = 0.0

    def __len__(self) -> int:
        return len(self.counts)

    def add(self, key: str, weight: float = 1.0) -> None:
        """Add ``weight`` to ``key``; the one-item form of ``add_many``."""
        self.add_many({key: weight})

    def add_many(self, increments: Mapping[str, float]) -> None:
        """Add already aggregated per-key weights (one dictionary update per key, not per event).

        The outcome depends only on the mapping, not on its iteration order: when keys may be
        evicted, the increments of kept keys go first, then new keys in key order, and the
        victim is the smallest count (the smallest key among equal counts). So a batch counted
        by the per-event path and by the batched path leaves identical sketches.
        """
        counts = self.counts
        errors = self.errors
        capacity = self.capacity
        if capacity is None or len(counts) + len(increments) <= capacity:
            total = self.total
            if counts.keys().isdisjoint(increments):
                counts.update(increments)
                errors.update(dict.fromkeys(increments, 0.0))
                for weight in increments.values():
                    total += weight
            else:
                for key, weight in increments.items():
                    total += weight
                    if key in counts:
                        counts[key] += weight
                    else:
                        counts[key] = weight
                        errors[key] = 0.0
            self.total = total
            return
        fresh = []
        for key, weight in increments.items():
            if key in counts:
                self.total += weight
                counts[key] += weight
            else:
                fresh.append(key)
        for key in sorted(fresh):
            weight = increments[key]
            self.total += weight
            if len(counts) < capacity:
                counts[key] = weight
                errors[key] = 0.0
                continue
            floor = min(counts.values())
            victim = min(candidate for candidate, count in counts.items() if count == floor)
            del counts[victim]
            del errors[victim]
            counts[key] = floor + weight
            errors[key] = floor
            self.evictions += 1

    @property
    def full(self) -> bool:
        return self.capacity is not None and len(self.counts) >= self.capacity

    def minimum(self) -> float:
        """The smallest kept count when full (an upper bound on any missing key), else 0."""
        return min(self.counts.values()) if self.full else 0.0

    def error_bound(self) -> float:
        """The guaranteed bound ``W/m`` on any overestimate (0 for an exact counter)."""
        return 0.0 if self.capacity is None else self.total / self.capacity

    def top(self, k: int | None = None) -> list[tuple[str, float, float]]:
        """``(key, estimate, error)`` by estimate descending, key ascending on ties."""
        order = lambda pair: (-pair[1], pair[0])  # noqa: E731
        if k is not None and k < len(self.counts):
            ranked = heapq.nsmallest(k, self.counts.items(), key=order)  # sorted(...)[:k] without the sort
        else:
            ranked = sorted(self.counts.items(), key=order)
        return [(key, count, self.errors[key]) for key, count in ranked]

    def merge(self, other: SpaceSaving) -> SpaceSaving:
        """A new sketch summarising both inputs (exact when both are exact)."""
        capacity = (
            self.capacity
            if other.capacity is None
            else (other.capacity if self.capacity is None else min(self.capacity, other.capacity))
        )
        floor_self, floor_other = self.minimum(), other.minimum()
        merged = SpaceSaving(capacity)
        for key in self.counts.keys() | other.counts.keys():
            count = self.counts.get(key, floor_self) + other.counts.get(key, floor_other)
            error = self.errors.get(key, floor_self) + other.errors.get(key, floor_other)
            merged.counts[key] = count
            merged.errors[key] = error
        if capacity is not None and len(merged.counts) > capacity:
            keep = sorted(merged.counts, key=lambda key: (-merged.counts[key], key))[:capacity]
            merged.counts = {key: merged.counts[key] for key in keep}
            merged.errors = {key: merged.errors[key] for key in keep}
        merged.total = self.total + other.total
        merged.evictions = self.evictions + other.evictions
        return merged

    def to_state(self) -> list[Any]:
        """A JSON-ready list (capacity, total, evictions, keys, counts, errors)."""
        keys = list(self.counts)
        return [
            self.capacity,
            self.total,
            self.evictions,
            keys,
            [self.counts[key] for key in keys],
            [self.errors[key] for key in keys],
        ]

    @classmethod
    def from_state(cls, state: list[Any]) -> SpaceSaving:
        try:
            capacity, total, evictions, keys, counts, errors = state
            sketch = cls(capacity)
            sketch.total = float(total)
            sketch.evictions = int(evictions)
            sketch.counts = dict(zip(keys, counts, strict=True))
            sketch.errors = dict(zip(keys, errors, strict=True))
        except (TypeError, ValueError) as exc:
            raise StateFormatError(f"not a Space-Saving state: {exc}") from exc
        return sketch
