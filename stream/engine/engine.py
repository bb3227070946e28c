"""``AssociationEngine``: the interactions side and the co-occurrence side wired in one process.

The stream runs the same classes split across partitions (``UserActivity`` and
``UserProfile`` per user, ``ItemAssociations`` per item, ``TransactionTally`` and
``ItemCounts`` replicated). Offline (``xsell rules``, evaluation, benchmarks) this class
holds them all in dictionaries and passes the messages directly.

Two routes give the same counts. ``batched=True`` (the default) validates into integer
columns, orders all users of a batch in one table (``UserTable``), pairs whole sessions
with numpy (``batch_pairs``) and aggregates the batch per key before touching a sketch;
``batched=False`` runs one ``UserActivity`` per user and one ``ItemUpdate`` per (event,
item), exactly as the stream agents do. The tests compare both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.engine.arrays import run_bounds
from stream.engine.baskets import basket_counts
from stream.engine.batched import AppliedBatch, UserTable
from stream.engine.columnar import collector_paused
from stream.engine.columns import Codebook, EventColumns, columns_from_events, validate_columns
from stream.engine.cooccurrence import CooccurrenceConfig, CooccurrenceStore, TransactionTally, decay_weight
from stream.engine.events import KINDS, PURCHASE, Event, Rejection, ValidationConfig, validate_many
from stream.engine.profiles import ProfileConfig, UserProfile
from stream.engine.rules import AssociationRule, association_metrics, rank_rules
from stream.engine.sessions import CHANNELS, IngestResult, SessionConfig, UserActivity

__all__ = ["AssociationEngine", "BatchReport", "EngineConfig"]

LOCAL_SOURCE = "local"
DEFAULT_CHANNEL = "purchase->purchase"
BASKET_CHANNEL = "purchase->purchase"
DEFAULT_BASKET_BATCH = 10_000
DEFAULT_BATCHED = True
ItemVectors = Callable[[Sequence[str]], NDArray[np.floating]]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Everything the engine needs; ``profiles=None`` skips profile updates (the counting path)."""

    validation: ValidationConfig = field(default_factory=ValidationConfig)
    sessions: SessionConfig = field(default_factory=SessionConfig)
    cooccurrence: CooccurrenceConfig = field(default_factory=CooccurrenceConfig)
    profiles: ProfileConfig | None = field(default_factory=ProfileConfig)
    batched: bool = DEFAULT_BATCHED


@dataclass(slots=True)
class BatchReport:
    """What one ``process`` call did: counts, and every rejected input with its reason."""

    accepted: int = 0
    applied: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: int = 0

    def add(self, other: BatchReport) -> None:
        self.accepted += other.accepted
        self.applied += other.applied
        self.rejected.extend(other.rejected)
        self.duplicates += other.duplicates


class AssociationEngine:
    """Validate → order → sessions → pairs → counts (→ profiles), all in one process."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        item_vectors: ItemVectors | None = None,
        item_categories: Callable[[str], str | None] | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.item_vectors = item_vectors
        self.item_categories = item_categories
        self.users: dict[str, UserActivity] = {}
        self.profiles: dict[str, UserProfile] = {}
        self.store = CooccurrenceStore(self.config.cooccurrence)
        self.tally = TransactionTally()
        # the batched route's state: id codes and every user's ordering state in one table
        self.user_codes = Codebook()
        self.item_codes = Codebook()
        self.order_codes = Codebook()
        self.table = UserTable(self.config.sessions)

    # -- feeding ---------------------------------------------------------------------------

    def process(
        self,
        raws: Iterable[bytes | str | Mapping[str, Any]],
        *,
        kind: str | None = None,
        now_ms: int | None = None,
    ) -> BatchReport:
        """Validate raw inputs (bytes or dicts) and process the accepted ones as one batch."""
        if self.config.batched:
            with collector_paused():
                columns, rejected = validate_columns(
                    raws,
                    users=self.user_codes,
                    items=self.item_codes,
                    orders=self.order_codes,
                    kind=kind,
                    now_ms=now_ms,
                    config=self.config.validation,
                )
            report = self._process_columns(columns)
            report.rejected[:0] = rejected
            return report
        events, rejected = validate_many(raws, kind=kind, now_ms=now_ms, config=self.config.validation)
        report = self.process_events(events)
        report.rejected[:0] = rejected
        return report

    def process_events(self, events: Iterable[Event]) -> BatchReport:
        """Process validated events: per user in arrival order, then one batched count update."""
        if self.config.batched:
            codes = {"users": self.user_codes, "items": self.item_codes, "orders": self.order_codes}
            return self._process_columns(columns_from_events(list(events), **codes))
        by_user: dict[str, list[Event]] = {}
        for event in events:
            group = by_user.get(event.user_id)
            if group is None:
                by_user[event.user_id] = [event]
            else:
                group.append(event)
        report = BatchReport()
        results: list[tuple[str, IngestResult]] = []
        for user_id, group in by_user.items():
            activity = self.users.get(user_id)
            if activity is None:
                activity = self.users[user_id] = UserActivity(self.config.sessions)
            result = activity.ingest(group)
            report.accepted += len(group) - len(result.duplicates) - len(result.too_late)
            report.duplicates += len(result.duplicates)
            report.rejected.extend(Rejection("too_late", "", -1, event) for event in result.too_late)
            results.append((user_id, result))
        self._absorb(results, report)
        return report

    def flush(self) -> BatchReport:
        """Apply every buffered event (end of a replay)."""
        report = BatchReport()
        if self.config.batched:
            with collector_paused():
                self._absorb_batch(self.table.flush(), report)
            return report
        self._absorb([(user_id, activity.flush()) for user_id, activity in self.users.items()], report)
        return report

    def _absorb(self, results: list[tuple[str, IngestResult]], report: BatchReport) -> None:
        updates = []
        cooccurrence_config = self.config.cooccurrence
        for _, result in results:
            updates.extend(result.updates)
            report.applied += len(result.applied)
            for ts in result.opened:
                self.tally.add(LOCAL_SOURCE, decay_weight(ts, cooccurrence_config))
        self.store.apply_updates(updates)
        if self.config.profiles is not None:
            for user_id, result in results:
                if result.applied:
                    self._update_profile(user_id, result.applied)

    def _process_columns(self, columns: EventColumns) -> BatchReport:
        with collector_paused():
            batch = self.table.ingest(columns, len(self.user_codes))
            report = BatchReport(accepted=batch.admitted, duplicates=batch.duplicates)
            report.rejected.extend(Rejection("too_late", "", -1, columns.event(row)) for row in batch.too_late)
            self._absorb_batch(batch, report)
        return report

    def _weights(self, ts: NDArray[np.int64]) -> NDArray[np.float64]:
        """Decay weights of event times (computed per distinct time with ``decay_weight`` itself)."""
        config = self.config.cooccurrence
        if config.half_life_ms is None:
            return np.ones(ts.shape[0], dtype=np.float64)
        distinct, inverse = np.unique(ts, return_inverse=True)
        table = np.array([decay_weight(value, config) for value in distinct.tolist()], dtype=np.float64)
        return table[inverse.ravel()]

    def _absorb_batch(self, batch: AppliedBatch, report: BatchReport) -> None:
        pairs = batch.pairs
        report.applied += int(batch.fresh.sum())
        if pairs.opened_rows.shape[0]:  # one add per batch (a count without decay: exact)
            self.tally.add(LOCAL_SOURCE, float(self._weights(batch.ts[pairs.opened_rows]).sum()))
        self.store.apply_coded(
            self.item_codes.names,
            pairs.occurrence_items,
            pairs.occurrence_kinds,
            self._weights(batch.ts[pairs.occurrence_rows]),
            pairs.antecedents,
            pairs.channels,
            pairs.consequents,
            self._weights(batch.ts[pairs.pair_rows]),
        )
        if self.config.profiles is not None:
            self._update_profiles(batch)

    def _update_profiles(self, batch: AppliedBatch) -> None:
        config = self.config.profiles
        assert config is not None
        fresh = np.flatnonzero(batch.fresh)
        if not fresh.shape[0]:
            return
        users = batch.users[fresh]
        item_names = self.item_codes.names
        items = [item_names[code] for code in batch.items[fresh].tolist()]
        kinds = [KINDS[code] for code in batch.kinds[fresh].tolist()]
        stamps = batch.ts[fresh].tolist()
        vectors = None if self.item_vectors is None else self.item_vectors(items)
        categories = None if self.item_categories is None else [self.item_categories(item) for item in items]
        bounds = run_bounds(users).tolist()
        user_names = self.user_codes.names
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            user_id = user_names[int(users[start])]
            profile = self.profiles.get(user_id)
            if profile is None:
                profile = self.profiles[user_id] = UserProfile(config)
            profile.update_columns(
                items[start:end],
                kinds[start:end],
                stamps[start:end],
                None if vectors is None else vectors[start:end],
                None if categories is None else categories[start:end],
            )

    def _update_profile(self, user_id: str, applied: list[Event]) -> None:
        config = self.config.profiles
        assert config is not None
        profile = self.profiles.get(user_id)
        if profile is None:
            profile = self.profiles[user_id] = UserProfile(config)
        items = [event.item_id for event in applied]
        vectors = None if self.item_vectors is None else self.item_vectors(items)
        categories = None if self.item_categories is None else [self.item_categories(item) for item in items]
        profile.update_many(applied, vectors, categories)

    def add_baskets(
        self, baskets: Sequence[Sequence[str]], *, ts: int = 0, batch_size: int = DEFAULT_BASKET_BATCH
    ) -> int:
        """Count baskets (orders) in vectorised mini-batches of ``batch_size``; returns how many.

        Same counts as streaming ``baskets_to_events(baskets)`` through ``process_events``
        (each basket is one transaction; every ordered pair in ``purchase->purchase``), at a
        sparse product per batch instead of a Python step per pair. All baskets get event
        time ``ts`` (for decay).
        """
        weight = decay_weight(ts, self.config.cooccurrence)
        for start in range(0, len(baskets), batch_size):
            counts = basket_counts(baskets[start : start + batch_size])
            names = counts.items
            occurrences = {
                name: {PURCHASE: float(count) * weight}
                for name, count in zip(names, counts.occurrences, strict=True)
            }
            partners: dict[str, dict[str, dict[str, float]]] = {}
            pairs = counts.pairs
            for row in range(pairs.shape[0]):
                begin, end = pairs.indptr[row], pairs.indptr[row + 1]
                if begin == end:
                    continue
                partners[names[row]] = {
                    BASKET_CHANNEL: {
                        names[column]: value * weight
                        for column, value in zip(
                            pairs.indices[begin:end].tolist(), pairs.data[begin:end].tolist(), strict=True
                        )
                    }
                }
            self.store.apply_counts(occurrences, partners)
            self.tally.add(LOCAL_SOURCE, counts.baskets * weight)
        return len(baskets)

    # -- reading ---------------------------------------------------------------------------

    def _scale(self, at_ts: int | None) -> float:
        config = self.config.cooccurrence
        if config.half_life_ms is None or at_ts is None:
            return 1.0
        return 1.0 / decay_weight(at_ts, config)

    def transactions(self, at_ts: int | None = None) -> float:
        """N: the (decayed) number of transactions."""
        return self.tally.total * self._scale(at_ts)

    def evictions(self) -> int:
        """How many times a partner sketch replaced a key (0 when counting exactly)."""
        return self.store.evictions()

    def rules(
        self,
        channel: str = DEFAULT_CHANNEL,
        *,
        min_support: float = 0.0,
        min_confidence: float = 0.0,
        min_lift: float = 0.0,
        antecedents: Iterable[str] | None = None,
        at_ts: int | None = None,
    ) -> list[AssociationRule]:
        """Every 1⇒1 rule of ``channel`` passing the thresholds, by lift then confidence."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; channels are {', '.join(CHANNELS)}")
        antecedent_kind, consequent_kind = channel.split("->")
        names_a: list[str] = []
        names_b: list[str] = []
        pair_counts: list[float] = []
        counts_a: list[float] = []
        items = self.store.items
        chosen = items.keys() if antecedents is None else [item for item in antecedents if item in items]
        for item_id in chosen:
            state = items[item_id]
            sketch = state.partners.get(channel)
            if sketch is None or not sketch.counts:
                continue
            names_a.extend([item_id] * len(sketch.counts))
            names_b.extend(sketch.counts.keys())
            pair_counts.extend(sketch.counts.values())
            counts_a.extend([state.occurrences.get(antecedent_kind, 0.0)] * len(sketch.counts))
        if not names_a:
            return []
        counts_b = [self.store.occurrence(item, consequent_kind) for item in names_b]
        scale = self._scale(at_ts)
        total = self.tally.total * scale
        metrics = association_metrics(
            np.asarray(pair_counts) * scale, np.asarray(counts_a) * scale, np.asarray(counts_b) * scale, total
        )
        keep = (
            (metrics["support"] >= min_support)
            & (metrics["confidence"] >= min_confidence)
            & (metrics["lift"] >= min_lift)
        )
        rules = [
            AssociationRule(
                antecedent=names_a[i],
                consequent=names_b[i],
                channel=channel,
                support=float(metrics["support"][i]),
                confidence=float(metrics["confidence"][i]),
                lift=float(metrics["lift"][i]),
                llr=float(metrics["llr"][i]),
                pair_count=pair_counts[i] * scale,
                antecedent_count=counts_a[i] * scale,
                consequent_count=counts_b[i] * scale,
                transactions=total,
            )
            for i in np.flatnonzero(keep)
        ]
        return rank_rules(rules)

    def associations(
        self, item_id: str, channel: str = DEFAULT_CHANNEL, *, top_k: int = 20, at_ts: int | None = None
    ) -> list[AssociationRule]:
        """The ``top_k`` partners of one item by pair count (the heavy hitters), with metrics."""
        state = self.store.items.get(item_id)
        sketch = None if state is None else state.partners.get(channel)
        if sketch is None:
            return []
        top = {key for key, _, _ in sketch.top(top_k)}
        rules = [
            rule for rule in self.rules(channel, antecedents=[item_id], at_ts=at_ts) if rule.consequent in top
        ]
        return sorted(rules, key=lambda rule: (-rule.pair_count, rule.consequent))
