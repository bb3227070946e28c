"""The catalog filter of the ranking: the top ``k`` available items, looking up only what it needs.

The reference filters every candidate first and sorts afterwards (what ``recommend_many`` did
before it looked items up from the top down).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import DictCatalog, ExactSimilarity, ItemInfo, RankingConfig, RecommendationRequest
from stream.engine.ranking import recommend_many


class CountingCatalog(DictCatalog):
    def __init__(self, items: dict[str, ItemInfo]) -> None:
        super().__init__(items)
        self.looked_up: list[str] = []

    def lookup(self, item_ids: Sequence[str]) -> list[ItemInfo | None]:
        self.looked_up.extend(item_ids)
        return super().lookup(item_ids)


def _reference(scores: dict[str, float], catalog: DictCatalog, excluded: set[str], k: int) -> list[str]:
    def available(item: str) -> bool:
        info = catalog.items.get(item)
        return info is None or (info.in_stock and not info.deleted)

    candidates = [item for item in scores if item not in excluded and available(item)]
    return sorted(candidates, key=lambda item: (-scores[item], item))[:k]


@settings(max_examples=150, deadline=None)
@given(
    trends=st.lists(st.integers(min_value=1, max_value=20), min_size=0, max_size=40),
    states=st.lists(st.sampled_from(["in stock", "out of stock", "deleted", "unknown"]), min_size=40, max_size=40),
    k=st.integers(min_value=1, max_value=15),
    purchased=st.sets(st.integers(min_value=0, max_value=39), max_size=5),
)
def test_the_top_k_available_items_match_filtering_every_candidate_first(
    trends: list[int], states: list[str], k: int, purchased: set[int]
) -> None:
    # Trending scores tie often (small integers): the order then falls back to the item id.
    trending = [(f"item{i:02d}", float(trend)) for i, trend in enumerate(trends)]
    infos = {
        "out of stock": ItemInfo(in_stock=False),
        "deleted": ItemInfo(deleted=True),
        "in stock": ItemInfo(),
    }
    catalog = CountingCatalog(
        {f"item{i:02d}": infos[state] for i, state in enumerate(states) if state != "unknown"}
    )
    excluded = {f"item{i:02d}" for i in purchased}
    config = RankingConfig(top_k=k)
    [ranked] = recommend_many(
        [RecommendationRequest(user_id="u", purchased=frozenset(excluded))],
        catalog=catalog,
        trending=trending,
        config=config,
    )
    top = max((trend for _, trend in trending), default=1.0)
    scores = {item: config.trending_weight * trend / top for item, trend in trending}
    assert [entry["item_id"] for entry in ranked] == _reference(scores, catalog, excluded, k)


def test_only_the_items_near_the_top_are_looked_up() -> None:
    items = [f"item{i:03d}" for i in range(200)]
    vectors = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    catalog = CountingCatalog({items[0]: ItemInfo(in_stock=False)})
    [ranked] = recommend_many(
        [RecommendationRequest(user_id="u", query_vector=vectors[0])],
        similar=ExactSimilarity(items, vectors),
        catalog=catalog,
        config=RankingConfig(top_k=10, candidates_per_source=100),
    )
    assert len(ranked) == 10
    assert items[0] not in [entry["item_id"] for entry in ranked]
    # 100 candidates: the first 10 looked up, one of them ruled out, then one more round.
    assert 10 < len(catalog.looked_up) <= 10 + 8
    assert len(set(catalog.looked_up)) == len(catalog.looked_up)
