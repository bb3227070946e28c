"""Exact co-occurrence counts kept as sorted integer columns until someone reads them.

The batched engine path hands ``CooccurrenceStore`` one aggregated batch of coded counts at
a time. Building an ``ItemAssociations`` with a ``SpaceSaving`` sketch and a dictionary
per (item, channel) for each of them was most of the counting path's time (tens of
thousands of small objects per replay), although nearly every sketch stays below its
capacity for its whole life, and a sketch that never evicts is an exact counter: its
state is the sum of its increments, in any order.

So the counts of an item stay here, as one sorted array of keys ``(item, channel,
partner)`` with their sums and one occurrence row per item, for as long as every partner
sketch of the item would still hold all its partners. The moment a batch would push one of
them past its capacity, that item is handed to the store as an ``ItemAssociations`` built
from its exact sums (exactly the state the sketch would have: nothing evicted yet, errors
0) and the batch goes into the sketch the usual way, so evictions happen at the same batch,
in the same order, as on the object path. Reading an item (``CooccurrenceStore.items``)
builds the objects of everything still here.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import numpy as np
from numpy.typing import NDArray

from stream.engine.arrays import distinct_sorted, run_bounds, runs
from stream.engine.events import KINDS
from stream.engine.heavyhitters import SpaceSaving
from stream.engine.sessions import CHANNELS

__all__ = ["CodedCounts", "Taken", "collector_paused"]

_PARTNER_BITS = 32  # key = (item * channels + channel) << 32 | partner
_PARTNER_MASK = (1 << _PARTNER_BITS) - 1
Taken = tuple[str, dict[str, float], dict[str, SpaceSaving]]  # name, occurrences, sketches


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector for one batch.

    A batch creates tens of thousands of small containers (per-item states, sketches) that
    all stay alive, and each automatic collection walks every container already stored:
    measured on the Taobao replay, that tripled the cost of building them. Nothing the
    engine builds is cyclic garbage, so one pause per batch loses nothing; the collector
    resumes (if it was on) when the batch ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_RECENT_RUN = 1 << 16  # keys in the recent run before it may be merged into the large one


def _search(keys: NDArray[np.int64], wanted: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    at = np.searchsorted(keys, wanted)
    found = np.zeros(wanted.shape[0], dtype=bool)
    inside = at < keys.shape[0]
    found[inside] = keys[at[inside]] == wanted[inside]
    return at, found


def _merged(
    keys: NDArray[np.int64],
    sums: NDArray[np.float64],
    at: NDArray[np.int64],
    new_keys: NDArray[np.int64],
    new_sums: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Sorted ``keys`` with the sorted, absent ``new_keys`` inserted at ``at`` (searchsorted)."""
    slots = at + np.arange(at.shape[0])
    size = keys.shape[0] + slots.shape[0]
    old = np.ones(size, dtype=bool)
    old[slots] = False
    merged_keys, merged_sums = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.float64)
    merged_keys[slots], merged_sums[slots] = new_keys, new_sums
    merged_keys[old], merged_sums[old] = keys, sums
    return merged_keys, merged_sums


class CodedCounts:
    """Exact per-item counts by item code (see the module docstring); names come from ``names``."""

    __slots__ = (
        "capacity",
        "names",
        "occurrences",
        "seen",
        "holds",
        "objects",
        "keys",
        "sums",
        "recent_keys",
        "recent_sums",
        "sizes",
    )

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.names: list[str] = []
        self.occurrences = np.zeros((0, len(KINDS)), dtype=np.float64)
        self.seen = np.zeros((0, len(KINDS)), dtype=bool)  # a kind present, even at weight 0.0
        self.holds = np.zeros(0, dtype=bool)  # the item has counts here
        self.objects = np.zeros(0, dtype=bool)  # the item's state is an object in the store instead
        # pair counts: a large sorted run and a small one of recently added keys (disjoint), merged
        # when the small one grows, so that a batch does not copy every key ever counted
        self.keys = np.zeros(0, dtype=np.int64)
        self.sums = np.zeros(0, dtype=np.float64)
        self.recent_keys = np.zeros(0, dtype=np.int64)
        self.recent_sums = np.zeros(0, dtype=np.float64)
        self.sizes = np.zeros(0, dtype=np.int64)  # distinct partners per (item, channel) group

    def __len__(self) -> int:
        return int(self.holds.sum())

    def _grow(self, items: int) -> None:
        missing = items - self.holds.shape[0]
        if missing > 0:
            missing = max(missing, self.holds.shape[0])  # double, so growth is amortised
            self.occurrences = np.vstack([self.occurrences, np.zeros((missing, len(KINDS)))])
            self.seen = np.vstack([self.seen, np.zeros((missing, len(KINDS)), dtype=bool)])
            self.holds = np.r_[self.holds, np.zeros(missing, dtype=bool)]
            self.objects = np.r_[self.objects, np.zeros(missing, dtype=bool)]
            self.sizes = np.r_[self.sizes, np.zeros(missing * len(CHANNELS), dtype=np.int64)]

    @staticmethod
    def pair_keys(
        antecedents: NDArray[np.int64], channels: NDArray[np.int64], consequents: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        return ((antecedents * len(CHANNELS) + channels) << _PARTNER_BITS) | consequents

    @staticmethod
    def group_of(pair_keys: NDArray[np.int64]) -> NDArray[np.int64]:
        """``item * channels + channel`` of each key."""
        return pair_keys >> _PARTNER_BITS

    @staticmethod
    def item_of(pair_keys: NDArray[np.int64]) -> NDArray[np.int64]:
        return (pair_keys >> _PARTNER_BITS) // len(CHANNELS)

    @staticmethod
    def partner_of(pair_keys: NDArray[np.int64]) -> NDArray[np.int64]:
        return pair_keys & _PARTNER_MASK

    def use(self, names: list[str], objects: Collection[str] = ()) -> None:
        """The codebook's names (it only grows), and the names whose state is already an object."""
        self.names = names
        self._grow(len(names))
        if objects:
            self.objects[: len(names)] = np.fromiter((name in objects for name in names), bool, len(names))

    def locate(self, pair_keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Where each key is (or goes), and whether it is there: a position in the large run
        (>= 0), or ``-1 - position`` in the recent run."""
        at, in_large = _search(self.keys, pair_keys)
        recent_at, in_recent = _search(self.recent_keys, pair_keys)
        return np.where(in_large, at, -1 - recent_at), in_large | in_recent

    def overflowing(self, pair_keys: NDArray[np.int64], found: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Items (codes) of which some sketch would exceed its capacity by adding the distinct
        ``pair_keys`` (``found`` as ``locate`` says)."""
        if self.capacity is None or not pair_keys.shape[0]:
            return np.zeros(0, dtype=np.int64)
        groups, added = runs(self.group_of(pair_keys[~found]))
        over = groups[self.sizes[groups] + added > self.capacity]
        return distinct_sorted(over // len(CHANNELS))

    def add(
        self,
        occurrence_items: NDArray[np.int64],
        occurrence_kinds: NDArray[np.int64],
        occurrence_sums: NDArray[np.float64],
        pair_keys: NDArray[np.int64],
        pair_sums: NDArray[np.float64],
        at: NDArray[np.int64],
        found: NDArray[np.bool_],
    ) -> None:
        """Add aggregated counts: distinct (item, kind), and distinct sorted pair keys located."""
        self.occurrences[occurrence_items, occurrence_kinds] += occurrence_sums
        self.seen[occurrence_items, occurrence_kinds] = True
        self.holds[occurrence_items] = True
        if not pair_keys.shape[0]:
            return
        groups = self.group_of(pair_keys)
        self.holds[groups // len(CHANNELS)] = True
        large = found & (at >= 0)
        self.sums[at[large]] += pair_sums[large]
        recent = found & (at < 0)
        self.recent_sums[-1 - at[recent]] += pair_sums[recent]
        fresh = ~found
        grown, added = runs(groups[fresh])
        self.sizes[grown] += added
        self.recent_keys, self.recent_sums = _merged(
            self.recent_keys, self.recent_sums, -1 - at[fresh], pair_keys[fresh], pair_sums[fresh]
        )
        if self.recent_keys.shape[0] > max(_RECENT_RUN, self.keys.shape[0] // 4):
            self._compact()

    def _compact(self) -> None:
        """Merge the recent run into the large one."""
        at = np.searchsorted(self.keys, self.recent_keys)
        self.keys, self.sums = _merged(self.keys, self.sums, at, self.recent_keys, self.recent_sums)
        self.recent_keys = np.zeros(0, dtype=np.int64)
        self.recent_sums = np.zeros(0, dtype=np.float64)

    def take(self, codes: NDArray[np.int64] | None = None) -> list[Taken]:
        """Remove the given items (all when None) and return each held one as (name, occurrences,
        sketches); from now on they are objects."""
        if codes is None:
            codes = np.flatnonzero(self.holds)
        self.objects[codes] = True
        codes = distinct_sorted(codes)
        codes = codes[self.holds[codes]] if codes.shape[0] else codes
        if not codes.shape[0]:
            return []
        names = self.names
        self._compact()
        chosen = np.isin(self.item_of(self.keys), codes)
        keys, sums = self.keys[chosen], self.sums[chosen]
        self.keys, self.sums = self.keys[~chosen], self.sums[~chosen]
        groups = self.group_of(keys)
        partners = [names[code] for code in self.partner_of(keys).tolist()]
        bounds = run_bounds(groups)
        totals = np.add.reduceat(sums, bounds[:-1]).tolist() if keys.shape[0] else []
        sketches: dict[int, dict[str, SpaceSaving]] = {}
        values = sums.tolist()
        starts, ends = bounds[:-1].tolist(), bounds[1:].tolist()
        for start, end, group, total in zip(starts, ends, groups[bounds[:-1]].tolist(), totals, strict=True):
            item, channel = divmod(group, len(CHANNELS))
            sketch = SpaceSaving(self.capacity)
            sketch.counts = dict(zip(partners[start:end], values[start:end], strict=True))
            sketch.errors = dict.fromkeys(sketch.counts, 0.0)
            sketch.total = total
            sketches.setdefault(item, {})[CHANNELS[channel]] = sketch
        taken = []
        occurrences, seen = self.occurrences[codes].tolist(), self.seen[codes].tolist()
        for code, counts, present in zip(codes.tolist(), occurrences, seen, strict=True):
            kinds = {KINDS[kind]: counts[kind] for kind in range(len(KINDS)) if present[kind]}
            taken.append((names[code], kinds, sketches.get(code, {})))
        self.holds[codes] = False
        self.occurrences[codes] = 0.0
        self.seen[codes] = False
        for channel in range(len(CHANNELS)):
            self.sizes[codes * len(CHANNELS) + channel] = 0
        return taken
