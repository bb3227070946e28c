"""Per-item co-occurrence state (the co-occurrence side) and the replicated counts.

The co-occurrence agent is partitioned by antecedent item. For each item it keeps one
``ItemAssociations``: the item's own occurrence counts per kind (how many transactions hold
it as a click, cart or purchase; the antecedent counts) and, per channel, its partners in a
``SpaceSaving`` sketch (bounded top-N; exact when the capacity is None). ``apply_updates``
takes a batch of ``ItemUpdate`` messages, drops duplicates by ``event_id`` (bounded memory
per item), aggregates the batch into per-item, per-channel increments and only then touches
the sketches.

The metrics of A ⇒ B also need B's occurrence count, which lives on B's partition, and N,
which the interactions side counts. Both are small and replicated to every worker:
``ItemCounts`` (item → kind → count, fed from the occurrence part of every item's state)
and ``TransactionTally`` (a grow-only counter per source, merged by max, so a replayed
absolute value changes nothing). In the stream the sources are the items: each
``ItemAssociations`` also counts the transactions its item opened (``opened``, from
updates marked ``opens``, de-duplicated by ``event_id`` with the rest), so N is the sum of
the items' counts and is exactly as durable and replay-safe as the pair counts. Offline,
``AssociationEngine`` reads them directly.

Optional forward exponential decay (Cormode et al., 2009): an increment at event time t
weighs ``2 ** ((t - landmark) / half_life)``; reading divides by the weight of "now". The
result equals exponentially decayed counts, is independent of arrival order and merges by
addition. Float64 limits the span to about 1000 half-lives after the landmark.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson
from numpy.typing import NDArray

from stream.engine.arrays import run_bounds, runs
from stream.engine.columnar import CodedCounts, Taken, collector_paused
from stream.engine.errors import EngineConfigError, StateFormatError
from stream.engine.events import KINDS
from stream.engine.heavyhitters import SpaceSaving
from stream.engine.sessions import CHANNELS, ItemUpdate

__all__ = [
    "CooccurrenceConfig",
    "CooccurrenceStore",
    "ItemAssociations",
    "ItemCounts",
    "TransactionTally",
    "decay_weight",
]

DEFAULT_PARTNER_CAPACITY = 200
DEFAULT_ITEM_DEDUP_CAPACITY = 256
STATE_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CooccurrenceConfig:
    """Per-item memory bound, decay and duplicate memory of the co-occurrence side."""

    partner_capacity: int | None = DEFAULT_PARTNER_CAPACITY
    half_life_ms: float | None = None
    landmark_ms: int = 0
    dedup_capacity: int = DEFAULT_ITEM_DEDUP_CAPACITY

    def __post_init__(self) -> None:
        if self.half_life_ms is not None and not self.half_life_ms > 0:
            raise EngineConfigError(f"half_life_ms must be > 0 or None, got {self.half_life_ms}")
        if self.partner_capacity is not None and self.partner_capacity < 1:
            raise EngineConfigError(f"partner_capacity must be >= 1 or None, got {self.partner_capacity}")


def decay_weight(ts: int, config: CooccurrenceConfig) -> float:
    """The forward-decay weight of an increment at event time ``ts`` (1.0 without decay)."""
    if config.half_life_ms is None:
        return 1.0
    return math.exp2((ts - config.landmark_ms) / config.half_life_ms)


class ItemAssociations:
    """One antecedent item's occurrence counts, partner sketches and recent event ids."""

    __slots__ = ("item_id", "occurrences", "opened", "partners", "recent_ids", "recent_order")

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        self.occurrences: dict[str, float] = {}
        self.opened = 0.0  # transactions whose first event was this item (N is their sum)
        self.partners: dict[str, SpaceSaving] = {}
        self.recent_ids: set[str] = set()
        self.recent_order: deque[str] = deque()

    def apply(self, updates: Iterable[ItemUpdate], config: CooccurrenceConfig) -> int:
        """Apply this item's updates (aggregated first); returns how many were not duplicates."""
        occurrences: dict[str, float] = {}
        increments: dict[str, dict[str, float]] = {}
        applied = 0
        remember = config.dedup_capacity > 0
        for update in updates:
            if remember:
                if update.event_id in self.recent_ids:
                    continue
                self._remember(update.event_id, config.dedup_capacity)
            applied += 1
            weight = 1.0 if config.half_life_ms is None else decay_weight(update.ts, config)
            if update.occurrence is not None:
                occurrences[update.occurrence] = occurrences.get(update.occurrence, 0.0) + weight
            if update.opens:
                self.opened += weight
            for consequent, channel in update.partners:
                per_channel = increments.get(channel)
                if per_channel is None:
                    per_channel = increments[channel] = {}
                per_channel[consequent] = per_channel.get(consequent, 0.0) + weight
        for kind, weight in occurrences.items():
            self.occurrences[kind] = self.occurrences.get(kind, 0.0) + weight
        for channel, per_consequent in increments.items():
            sketch = self.partners.get(channel)
            if sketch is None:
                sketch = self.partners[channel] = SpaceSaving(config.partner_capacity)
            sketch.add_many(per_consequent)
        return applied

    def _remember(self, event_id: str, capacity: int) -> None:
        if capacity <= 0:
            return
        self.recent_ids.add(event_id)
        self.recent_order.append(event_id)
        if len(self.recent_order) > capacity:
            self.recent_ids.discard(self.recent_order.popleft())

    def merge(self, other: ItemAssociations) -> ItemAssociations:
        """Counts of both (two partitions' partial counts of the same item)."""
        merged = ItemAssociations(self.item_id)
        merged.opened = self.opened + other.opened
        for kind in self.occurrences.keys() | other.occurrences.keys():
            merged.occurrences[kind] = self.occurrences.get(kind, 0.0) + other.occurrences.get(kind, 0.0)
        for channel in self.partners.keys() | other.partners.keys():
            mine, theirs = self.partners.get(channel), other.partners.get(channel)
            if mine is None or theirs is None:
                source = mine or theirs
                assert source is not None
                merged.partners[channel] = source.merge(SpaceSaving(source.capacity))
            else:
                merged.partners[channel] = mine.merge(theirs)
        for event_id in list(self.recent_order) + list(other.recent_order):
            merged._remember(event_id, len(self.recent_order) + len(other.recent_order))
        return merged

    def evictions(self) -> int:
        return sum(sketch.evictions for sketch in self.partners.values())

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "item": self.item_id,
                "occ": self.occurrences,
                "opened": self.opened,
                "partners": {channel: sketch.to_state() for channel, sketch in self.partners.items()},
                "recent": list(self.recent_order),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ItemAssociations:
        try:
            state = orjson.loads(data)
            if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
                raise StateFormatError(f"item state version is not {STATE_VERSION}")
            item = cls(state["item"])
            item.occurrences = {kind: float(value) for kind, value in state["occ"].items()}
            item.opened = float(state.get("opened", 0.0))
            item.partners = {ch: SpaceSaving.from_state(s) for ch, s in state["partners"].items()}
            item.recent_order = deque(state["recent"])
            item.recent_ids = set(item.recent_order)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise StateFormatError(f"not an item associations state: {exc}") from exc
        return item


class ItemCounts:
    """Replicated item occurrence counts: item → kind → (decay-weighted) transaction count."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, float]] = {}

    def set_item(self, item_id: str, occurrences: Mapping[str, float]) -> None:
        """Absolute upsert (what a replica does with the latest value from the owner)."""
        self.counts[item_id] = dict(occurrences)

    def get(self, item_id: str, kind: str) -> float:
        per_kind = self.counts.get(item_id)
        return 0.0 if per_kind is None else per_kind.get(kind, 0.0)


class TransactionTally:
    """N, the number of transactions, as a grow-only counter per source.

    Each source (an item's state in the stream, one local source offline) publishes its
    absolute count; replicas keep the max per source and sum over sources, so replayed or
    reordered publications change nothing. The sum is kept incrementally: a replica sees
    one observation per published item record.
    """

    __slots__ = ("by_source", "_total")

    def __init__(self) -> None:
        self.by_source: dict[str, float] = {}
        self._total = 0.0

    def add(self, source: str, weight: float) -> None:
        self.by_source[source] = self.by_source.get(source, 0.0) + weight
        self._total += weight

    def observe(self, source: str, absolute: float) -> None:
        known = self.by_source.get(source, 0.0)
        if absolute > known:
            self.by_source[source] = absolute
            self._total += absolute - known

    def merge(self, other: TransactionTally) -> TransactionTally:
        merged = TransactionTally()
        for source in self.by_source.keys() | other.by_source.keys():
            merged.observe(source, max(self.by_source.get(source, 0.0), other.by_source.get(source, 0.0)))
        return merged

    @property
    def total(self) -> float:
        return self._total


def _summed(keys: NDArray[np.int64], weights: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Distinct keys (sorted) and the summed weights of each."""
    if weights.shape[0] and weights.min() == 1.0 == weights.max():  # no decay: sums are counts, exactly
        distinct, counts = runs(np.sort(keys))
        return distinct, counts.astype(np.float64)
    distinct, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=weights, minlength=distinct.shape[0])
    return distinct, np.asarray(sums, dtype=np.float64)


class CooccurrenceStore:
    """All ``ItemAssociations`` of one partition (or of everything, offline).

    Counts added by ``apply_coded`` (the batched engine path) wait in a ``CodedCounts``
    until an item's sketch would evict or someone reads ``items``; see
    ``stream.engine.columnar`` for why the result is the same.
    """

    __slots__ = ("config", "_items", "_coded")

    def __init__(self, config: CooccurrenceConfig | None = None) -> None:
        self.config = config or CooccurrenceConfig()
        self._items: dict[str, ItemAssociations] = {}
        self._coded: CodedCounts | None = None

    @property
    def items(self) -> dict[str, ItemAssociations]:
        """Every item's state (building the objects of counts still held as columns)."""
        if self._coded is not None:
            with collector_paused():
                self._adopt(self._coded.take())
            self._coded = None
        return self._items

    def _adopt(self, taken: list[Taken]) -> None:
        for name, occurrences, sketches in taken:
            state = self._items[name] = ItemAssociations(name)
            state.occurrences = occurrences
            state.partners = sketches

    def apply_updates(self, updates: Iterable[ItemUpdate]) -> int:
        """Group a batch by item, then apply each item's group once; returns non-duplicates."""
        grouped: dict[str, list[ItemUpdate]] = {}
        for update in updates:
            group = grouped.get(update.item_id)
            if group is None:
                grouped[update.item_id] = [update]
            else:
                group.append(update)
        applied = 0
        items = self.items
        for item_id, group in grouped.items():
            state = items.get(item_id)
            if state is None:
                state = items[item_id] = ItemAssociations(item_id)
            applied += state.apply(group, self.config)
        return applied

    def apply_counts(
        self,
        occurrences: Mapping[str, Mapping[str, float]],
        partners: Mapping[str, Mapping[str, Mapping[str, float]]],
    ) -> None:
        """Add already aggregated counts: item → kind → weight, and item → channel → partner → weight.

        The vectorised basket path uses this; it skips the per-event duplicate memory, so the
        caller must not replay a batch.
        """
        items = self.items
        for item_id in occurrences.keys() | partners.keys():
            state = items.get(item_id)
            if state is None:
                state = items[item_id] = ItemAssociations(item_id)
            for kind, weight in occurrences.get(item_id, {}).items():
                state.occurrences[kind] = state.occurrences.get(kind, 0.0) + weight
            for channel, increments in partners.get(item_id, {}).items():
                sketch = state.partners.get(channel)
                if sketch is None:
                    sketch = state.partners[channel] = SpaceSaving(self.config.partner_capacity)
                sketch.add_many(increments)

    def apply_coded(
        self,
        names: list[str],
        occurrence_items: NDArray[np.int64],
        occurrence_kinds: NDArray[np.int64],
        occurrence_weights: NDArray[np.float64],
        antecedents: NDArray[np.int64],
        channels: NDArray[np.int64],
        consequents: NDArray[np.int64],
        weights: NDArray[np.float64],
    ) -> None:
        """Add one batch given as coded arrays (the batched path): same effect as ``apply_updates``
        of that batch's ``ItemUpdate`` messages, aggregated with numpy first.

        Items are indices into ``names`` (a codebook that only grows), kinds into ``KINDS``,
        channels into ``CHANNELS``. Like ``apply_counts`` it skips the per-item id memory
        (the offline engine hands each message over exactly once). Items that already are
        objects, and items one of whose sketches this batch would make evict, take the object
        path; the rest stay columns (``CodedCounts``).
        """
        keys, occurrence_sums = _summed(occurrence_items * len(KINDS) + occurrence_kinds, occurrence_weights)
        occurrence_items, occurrence_kinds = keys // len(KINDS), keys % len(KINDS)
        pair_keys, pair_sums = _summed(CodedCounts.pair_keys(antecedents, channels, consequents), weights)
        pair_items = CodedCounts.item_of(pair_keys)
        coded = self._coded
        if coded is None:
            coded = self._coded = CodedCounts(self.config.partner_capacity)
            coded.use(names, self._items.keys())
        else:
            coded.use(names)
        to_objects = coded.objects[pair_items]
        at, found = coded.locate(pair_keys)
        overflowing = coded.overflowing(pair_keys[~to_objects], found[~to_objects])
        if overflowing.shape[0]:
            self._adopt(coded.take(overflowing))
            to_objects = coded.objects[pair_items]
            at, found = coded.locate(pair_keys)
        occurring_objects = coded.objects[occurrence_items]
        to_columns, occurring_columns = ~to_objects, ~occurring_objects
        coded.add(
            occurrence_items[occurring_columns],
            occurrence_kinds[occurring_columns],
            occurrence_sums[occurring_columns],
            pair_keys[to_columns],
            pair_sums[to_columns],
            at[to_columns],
            found[to_columns],
        )
        self._apply_to_objects(
            names,
            occurrence_items[occurring_objects],
            occurrence_kinds[occurring_objects],
            occurrence_sums[occurring_objects],
            pair_keys[to_objects],
            pair_sums[to_objects],
        )

    def _apply_to_objects(
        self,
        names: list[str],
        occurrence_items: NDArray[np.int64],
        occurrence_kinds: NDArray[np.int64],
        occurrence_sums: NDArray[np.float64],
        pair_keys: NDArray[np.int64],
        pair_sums: NDArray[np.float64],
    ) -> None:
        """The aggregated batch into ``ItemAssociations`` objects, one ``add_many`` per sketch."""
        items = self._items
        capacity = self.config.partner_capacity
        for code, kind, weight in zip(
            occurrence_items.tolist(), occurrence_kinds.tolist(), occurrence_sums.tolist(), strict=True
        ):
            name = names[code]
            state = items.get(name)
            if state is None:
                state = items[name] = ItemAssociations(name)
            kind_name = KINDS[kind]
            state.occurrences[kind_name] = state.occurrences.get(kind_name, 0.0) + weight
        if not pair_keys.shape[0]:
            return
        groups = CodedCounts.group_of(pair_keys)
        bounds = run_bounds(groups).tolist()
        consequent_names = [names[code] for code in CodedCounts.partner_of(pair_keys).tolist()]
        sums = pair_sums.tolist()
        group_keys = groups[bounds[:-1]]
        group_names = [names[item] for item in (group_keys // len(CHANNELS)).tolist()]
        group_channels = [CHANNELS[channel] for channel in (group_keys % len(CHANNELS)).tolist()]
        for start, end, name, channel_name in zip(bounds, bounds[1:], group_names, group_channels):  # noqa: B905
            state = items.get(name)
            if state is None:
                state = items[name] = ItemAssociations(name)
            sketch = state.partners.get(channel_name)
            if sketch is None:
                sketch = state.partners[channel_name] = SpaceSaving(capacity)
            sketch.add_many(dict(zip(consequent_names[start:end], sums[start:end])))  # noqa: B905

    def occurrence(self, item_id: str, kind: str) -> float:
        state = self.items.get(item_id)
        return 0.0 if state is None else state.occurrences.get(kind, 0.0)

    def merge(self, other: CooccurrenceStore) -> CooccurrenceStore:
        merged = CooccurrenceStore(self.config)
        for item_id in self.items.keys() | other.items.keys():
            mine, theirs = self.items.get(item_id), other.items.get(item_id)
            if mine is None or theirs is None:
                source = mine or theirs
                assert source is not None
                merged.items[item_id] = source.merge(ItemAssociations(item_id))
            else:
                merged.items[item_id] = mine.merge(theirs)
        return merged

    def evictions(self) -> int:
        return sum(state.evictions() for state in self.items.values())

    def channels(self) -> tuple[str, ...]:
        return CHANNELS
