"""Retrieval and ranking: candidates from associations, vector similarity and trending items.

``recommend_many`` takes its sources as plain callables so the stream can plug in the HNSW
index and the replicated associations later:

* ``similar(vectors (n, d), k) -> [(item_ids, scores)] * n``: any nearest-neighbour search
  (``ExactSimilarity`` is the brute-force one);
* ``associations(item_id) -> [AssociationRule]``: the related items of a recent item;
* ``catalog.lookup(item_ids) -> [ItemInfo | None]``: stock, deletion and category. An item the
  catalog does not know is kept (unknown is not evidence that it is unavailable).

Score = ``association_weight · sum over recent items r of recency(r) · (1 − 1/lift)``
(each recent item's best rule for the candidate; lift 1 adds nothing, lift 4 adds 0.75), +
``similarity_weight · max(cosine, 0)``, + ``trending_weight · trend / max trend``. Recency of
the i-th most recent item is ``1 / (1 + i)``. An item related to several recent items ranks
above one related to a single one, as in item-based collaborative filtering (until
2026-12-07 only the best recent item counted; docs/DECISIONS.md). Filters: already bought,
the trigger item, out of stock, deleted. Each item carries the reasons of every source that
proposed it, strongest first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from stream.engine.rules import AssociationRule

__all__ = [
    "DictCatalog",
    "ExactSimilarity",
    "ItemCatalog",
    "ItemInfo",
    "RankingConfig",
    "RecommendationRequest",
    "recommend",
    "recommend_many",
]

SimilaritySearch = Callable[[NDArray[np.float32], int], list[tuple[Sequence[str], NDArray[np.floating]]]]
# The rules of each of some items, in their order (one call per ranking batch).
AssociationLookup = Callable[[Sequence[str]], Sequence[Sequence[AssociationRule]]]
BOUGHT_CHANNELS = ("cart->purchase", "purchase->purchase", "click->purchase")
# Candidates looked up at a time once some near the top were ruled out (out of stock, deleted).
_MIN_LOOKUP = 8
SIMILAR_REASON = "similar to your recent views"
TRENDING_REASON = "trending now"


@dataclass(frozen=True, slots=True)
class ItemInfo:
    in_stock: bool = True
    deleted: bool = False
    category: str | None = None


class ItemCatalog(Protocol):
    def lookup(self, item_ids: Sequence[str]) -> list[ItemInfo | None]: ...


class DictCatalog:
    """An ``ItemCatalog`` over a dict (tests, offline evaluation)."""

    def __init__(self, items: dict[str, ItemInfo] | None = None) -> None:
        self.items = items or {}

    def lookup(self, item_ids: Sequence[str]) -> list[ItemInfo | None]:
        return [self.items.get(item_id) for item_id in item_ids]


class ExactSimilarity:
    """Brute-force cosine search over a matrix of item vectors (the reference for any index)."""

    def __init__(self, item_ids: Sequence[str], vectors: NDArray[np.floating]) -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.item_ids = list(item_ids)
        self.matrix = matrix / np.where(norms > 0, norms, 1.0)

    def __call__(self, vectors: NDArray[np.floating], k: int) -> list[tuple[Sequence[str], NDArray[np.floating]]]:
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        scores = queries @ self.matrix.T
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out: list[tuple[Sequence[str], NDArray[np.floating]]] = []
        for row, candidates in enumerate(top):
            order = candidates[np.argsort(-scores[row, candidates], kind="stable")]
            out.append(([self.item_ids[i] for i in order], scores[row, order]))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RankingConfig:
    top_k: int = 10
    candidates_per_source: int = 50
    recent_items_used: int = 5
    association_weight: float = 1.0
    similarity_weight: float = 0.6
    trending_weight: float = 0.2
    min_lift: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RecommendationRequest:
    user_id: str
    query_vector: NDArray[np.floating] | None = None
    recent_items: Sequence[str] = ()  # oldest first, most recent last
    purchased: Collection[str] = field(default_factory=frozenset)
    trigger_item: str | None = None


def _association_reason(rule: AssociationRule) -> str:
    verb = "bought together with" if rule.channel in BOUGHT_CHANNELS else "viewed together with"
    return f"{verb} {rule.antecedent} (lift {rule.lift:.1f})"


def recommend_many(
    requests: Sequence[RecommendationRequest],
    *,
    similar: SimilaritySearch | None = None,
    associations: AssociationLookup | None = None,
    catalog: ItemCatalog | None = None,
    trending: Sequence[tuple[str, float]] = (),
    config: RankingConfig | None = None,
) -> list[list[dict[str, Any]]]:
    """Ranked ``{"item_id", "score", "reasons"}`` lists, one per request (one batched ANN call)."""
    config = config or RankingConfig()
    with_vectors = [i for i, r in enumerate(requests) if r.query_vector is not None and np.any(r.query_vector)]
    neighbours: dict[int, tuple[Sequence[str], NDArray[np.floating]]] = {}
    if similar is not None and with_vectors:
        stacked = np.stack([np.asarray(requests[i].query_vector, dtype=np.float32) for i in with_vectors])
        for i, found in zip(with_vectors, similar(stacked, config.candidates_per_source), strict=True):
            neighbours[i] = found
    top_trend = max((score for _, score in trending), default=0.0)
    recents = [list(dict.fromkeys(reversed(r.recent_items)))[: config.recent_items_used] for r in requests]
    rules_of: dict[str, Sequence[AssociationRule]] = {}
    if associations is not None:
        sources = list(dict.fromkeys(source for recent in recents for source in recent))
        rules_of = dict(zip(sources, associations(sources), strict=True))
    # Each source proposes an item at most once (one best rule per consequent, distinct
    # neighbours, distinct trending items): scores add up per item, and the reasons are worded
    # only for the items that make the list (most proposals do not).
    trend_scores: dict[str, float] = (
        {item: config.trending_weight * trend / top_trend for item, trend in trending[: config.candidates_per_source]}
        if top_trend > 0
        else {}
    )
    trend_positive = [(item, score) for item, score in trend_scores.items() if score > 0]
    results = []
    for index, request in enumerate(requests):
        scores: dict[str, float] = {}
        best: dict[str, tuple[float, AssociationRule]] = {}  # the strongest rule names the reason
        association: dict[str, float] = {}  # summed over the recent items
        if associations is not None:
            for position, source in enumerate(recents[index]):
                recency = 1.0 / (1 + position)
                from_source: dict[str, tuple[float, AssociationRule]] = {}
                for rule in list(rules_of[source])[: config.candidates_per_source]:
                    if rule.lift < config.min_lift:
                        continue
                    strength = recency * (1.0 - 1.0 / rule.lift) if rule.lift > 0 else 0.0
                    current = from_source.get(rule.consequent)
                    if strength > (0.0 if current is None else current[0]):
                        from_source[rule.consequent] = (strength, rule)
                for item, proposal in from_source.items():
                    association[item] = association.get(item, 0.0) + proposal[0]
                    current = best.get(item)
                    if current is None or proposal[0] > current[0]:
                        best[item] = proposal
            weight = config.association_weight
            for item, strength in association.items():
                if weight * strength > 0:
                    scores[item] = weight * strength
        similar_scores: dict[str, float] = {}
        if index in neighbours:
            item_ids, similarities = neighbours[index]
            weight = config.similarity_weight
            for item, similarity in zip(item_ids, np.asarray(similarities).tolist(), strict=True):
                score = weight * similarity
                if score > 0:
                    similar_scores[item] = score
                    scores[item] = scores.get(item, 0.0) + score
        for item, score in trend_positive:
            scores[item] = scores.get(item, 0.0) + score
        excluded = set(request.purchased)
        if request.trigger_item is not None:
            excluded.add(request.trigger_item)
        ordered = sorted((-score, item) for item, score in scores.items() if item not in excluded)
        candidates = [item for _, item in ordered]
        ranked = candidates[: config.top_k] if catalog is None else _available(candidates, catalog, config.top_k)
        results.append(
            [
                {
                    "item_id": item,
                    "score": round(scores[item], 6),
                    "reasons": _reasons(
                        item, best, association, config.association_weight, similar_scores, trend_scores
                    ),
                }
                for item in ranked
            ]
        )
    return results


def _reasons(
    item: str,
    best: dict[str, tuple[float, AssociationRule]],
    association: dict[str, float],
    association_weight: float,
    similar_scores: dict[str, float],
    trend_scores: dict[str, float],
) -> list[str]:
    """The reasons of every source that proposed a ranked item, strongest first (ties in the
    sources' order: associations, similarity, trending); the associations' reason is their
    strongest rule, weighed by their summed score."""
    reasons: list[tuple[float, str | AssociationRule]] = []
    if item in best:
        strength = association[item]
        if association_weight * strength > 0:
            reasons.append((association_weight * strength, best[item][1]))
    if item in similar_scores:
        reasons.append((similar_scores[item], SIMILAR_REASON))
    if trend_scores.get(item, 0.0) > 0:
        reasons.append((trend_scores[item], TRENDING_REASON))
    return [
        reason if isinstance(reason, str) else _association_reason(reason)
        for _, reason in sorted(reasons, key=lambda pair: -pair[0])
    ]


def _available(ranked: list[str], catalog: ItemCatalog, k: int) -> list[str]:
    """The first ``k`` items of ``ranked`` that the catalog does not rule out.

    Items are looked up from the top down, only as many as it takes: most candidates rank
    below the cut, and looking each one up was most of the ranking thread's time.
    """
    chosen: list[str] = []
    start = 0
    while len(chosen) < k and start < len(ranked):
        chunk = ranked[start : start + max(k - len(chosen), _MIN_LOOKUP)]
        start += len(chunk)
        for item, info in zip(chunk, catalog.lookup(chunk), strict=True):
            if info is None or (info.in_stock and not info.deleted):
                chosen.append(item)
    return chosen[:k]


def recommend(request: RecommendationRequest, **sources: Any) -> list[dict[str, Any]]:
    """One request; the one-item form of ``recommend_many`` (same keyword sources)."""
    return recommend_many([request], **sources)[0]
