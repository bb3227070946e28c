"""The offline protocol: split by time, then score-then-apply every later event.

Exactly as ``docs/EVALUATION.md`` states it:

1. Events are sorted by time (stable). The cut is the timestamp of the event at index
   ``floor(split · (n − 1))``; events before the cut warm every model, events at or after it
   are the test part.
2. In order, each test event is first scored, then applied to every model. For a user with
   at least one earlier event it is a **discovery** target when its item is new to the user
   (the list excludes the user's earlier items) and a **conversion** target when it is a
   cart or purchase of an item the user has not carted or bought before (the list excludes
   only those items).
3. HR@k, NDCG@k (one relevant item: ``1 / log2(rank + 1)``) and MRR@k over discovery
   targets; HR@k over conversion targets.

Models come in two roles: a ``Ranker`` ranks items for a user at a time (best first, at
least ``depth`` when it can), and an ``Observer`` is warmed on the first part and told about
each later event after it was scored. One object may be both; several rankers may share one
observer (the stream's state serves three rankers), so observers are listed separately.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from stream.evaluation.errors import EvaluationError

__all__ = [
    "CONVERTING_KINDS",
    "DEFAULT_K",
    "DEFAULT_SPLIT",
    "EvaluationConfig",
    "EvaluationResult",
    "LoggedEvent",
    "ModelScores",
    "Observer",
    "Ranker",
    "evaluate",
    "logged_events",
    "split_point",
]

DEFAULT_SPLIT = 0.8
DEFAULT_K = 10
CONVERTING_KINDS = frozenset({"cart", "purchase"})


class LoggedEvent(NamedTuple):
    """One event of a log: who, what, which kind, when (epoch milliseconds)."""

    user: str
    item: str
    kind: str
    ts: int


class Ranker(Protocol):
    def rank(self, user: str, ts: int, depth: int) -> Sequence[str]: ...


class Observer(Protocol):
    def warm(self, events: Sequence[LoggedEvent]) -> None: ...

    def apply(self, event: LoggedEvent) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationConfig:
    split: float = DEFAULT_SPLIT
    k: int = DEFAULT_K

    def __post_init__(self) -> None:
        if not 0.0 < self.split < 1.0:
            raise EvaluationError(f"split must be between 0 and 1 (exclusive), got {self.split}")
        if self.k < 1:
            raise EvaluationError(f"k must be at least 1, got {self.k}")


@dataclass(slots=True)
class ModelScores:
    """Sums over targets; ``rates`` divides them by the target counts."""

    hits: int = 0
    ndcg: float = 0.0
    reciprocal_rank: float = 0.0
    conversion_hits: int = 0
    discovery_ranks: list[int | None] = field(default_factory=list)

    def rates(self, k: int, targets: int, conversion_targets: int) -> dict[str, float]:
        def share(value: float, count: int) -> float:
            return value / count if count else 0.0

        return {
            f"hr@{k}": share(self.hits, targets),
            f"ndcg@{k}": share(self.ndcg, targets),
            f"mrr@{k}": share(self.reciprocal_rank, targets),
            f"conversion_hr@{k}": share(self.conversion_hits, conversion_targets),
        }


@dataclass(slots=True, kw_only=True)
class EvaluationResult:
    events: int
    warm_events: int
    cut_ts: int
    targets: int
    conversion_targets: int
    config: EvaluationConfig
    scores: dict[str, ModelScores]
    # The user of each discovery target, in the order of every model's ``discovery_ranks``.
    target_users: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The documented JSON: events, targets, conversion_targets, k, split, models."""
        k = self.config.k
        return {
            "events": self.events,
            "targets": self.targets,
            "conversion_targets": self.conversion_targets,
            "k": k,
            "split": self.config.split,
            "models": {
                name: score.rates(k, self.targets, self.conversion_targets) for name, score in self.scores.items()
            },
        }


def logged_events(raw: Sequence[Mapping[str, object]]) -> list[LoggedEvent]:
    """Reader dicts (``user_id``, ``item_id``, ``kind``, ``ts``) as events sorted by time (stable)."""
    events = [
        LoggedEvent(str(row["user_id"]), str(row["item_id"]), str(row["kind"]), int(row["ts"]))  # type: ignore[call-overload]
        for row in raw
    ]
    events.sort(key=lambda event: event.ts)
    return events


def split_point(events: Sequence[LoggedEvent], split: float) -> tuple[int, int]:
    """``(cut_ts, warm_count)``: the cut timestamp and how many events lie before it."""
    if len(events) < 2:
        raise EvaluationError(f"need at least 2 events to split, got {len(events)}")
    cut_ts = events[math.floor(split * (len(events) - 1))].ts
    warm_count = next(index for index, event in enumerate(events) if event.ts >= cut_ts)
    return cut_ts, warm_count


def _rank_of(target: str, ranked: Sequence[str], excluded: set[str] | frozenset[str], k: int) -> int | None:
    """1-based rank of ``target`` in the list after exclusions, or None past ``k``."""
    position = 0
    for item in ranked:
        if item in excluded:
            continue
        position += 1
        if item == target:
            return position
        if position >= k:
            return None
    return None


def evaluate(
    events: Sequence[LoggedEvent],
    rankers: Mapping[str, Ranker],
    observers: Sequence[Observer],
    *,
    config: EvaluationConfig | None = None,
    on_event: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Run the protocol over time-sorted ``events``; ``on_event(1)`` after each test event."""
    config = config or EvaluationConfig()
    if any(later.ts < earlier.ts for earlier, later in zip(events, events[1:], strict=False)):
        raise EvaluationError("events must be sorted by time (use logged_events)")
    cut_ts, warm_count = split_point(events, config.split)
    warm = events[:warm_count]
    for observer in observers:
        observer.warm(warm)
    seen: dict[str, set[str]] = {}
    converted: dict[str, set[str]] = {}
    for event in warm:
        seen.setdefault(event.user, set()).add(event.item)
        if event.kind in CONVERTING_KINDS:
            converted.setdefault(event.user, set()).add(event.item)
    scores = {name: ModelScores() for name in rankers}
    target_users: list[str] = []
    targets = conversion_targets = 0
    k = config.k
    for event in events[warm_count:]:
        earlier = seen.get(event.user)
        if earlier:
            bought = converted.get(event.user, set())
            discovery = event.item not in earlier
            conversion = event.kind in CONVERTING_KINDS and event.item not in bought
            targets += discovery
            conversion_targets += conversion
            if discovery:
                target_users.append(event.user)
            if discovery or conversion:
                depth = k + len(earlier)  # the discovery exclusions contain the conversion ones
                for name, ranker in rankers.items():
                    ranked = ranker.rank(event.user, event.ts, depth)
                    score = scores[name]
                    if discovery:
                        rank = _rank_of(event.item, ranked, earlier, k)
                        score.discovery_ranks.append(rank)
                        if rank is not None:
                            score.hits += 1
                            score.ndcg += 1.0 / math.log2(rank + 1)
                            score.reciprocal_rank += 1.0 / rank
                    if conversion and _rank_of(event.item, ranked, bought, k) is not None:
                        score.conversion_hits += 1
        for observer in observers:
            observer.apply(event)
        seen.setdefault(event.user, set()).add(event.item)
        if event.kind in CONVERTING_KINDS:
            converted.setdefault(event.user, set()).add(event.item)
        if on_event is not None:
            on_event(1)
    return EvaluationResult(
        events=len(events),
        warm_events=warm_count,
        cut_ts=cut_ts,
        targets=targets,
        conversion_targets=conversion_targets,
        config=config,
        scores=scores,
        target_users=target_users,
    )
