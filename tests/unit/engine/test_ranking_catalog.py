"""The catalog filter of the ranking: the top ``k`` available items, looking up only what it needs.

The reference filters every candidate first and sorts afterwards (what ``recommend_many`` did
before it looked items up from the top down).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import (
    AssociationRule,
    DictCatalog,
    ExactSimilarity,
    ItemInfo,
    RankingConfig,
    RecommendationRequest,
)
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
    catalog = CountingCatalog({f"item{i:02d}": infos[state] for i, state in enumerate(states) if state != "unknown"})
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


ITEMS = [f"i{n}" for n in range(12)]


def _recount(
    recent: list[str],
    rules: dict[str, list[AssociationRule]],
    similar: list[tuple[str, float]],
    trending: list[tuple[str, float]],
    config: RankingConfig,
) -> list[tuple[str, float, list[str]]]:
    """The ranking worked out from the module's formula, item by item: association
    ``sum over recent r of recency(r) · (1 − 1/lift)`` with each recent item's best rule for
    the item (the strongest of those, the most recent on a tie, names the reason),
    plus similarity ``max(cos, 0)``, plus ``trend / max trend``, each weighted; reasons of the
    sources that added something, strongest first; ties in score by item id."""
    recents = list(dict.fromkeys(reversed(recent)))[: config.recent_items_used]
    top_trend = max((trend for _, trend in trending), default=0.0)
    ranked = []
    for item in ITEMS:
        association, strongest, best_rule = 0.0, 0.0, None
        for position, source in enumerate(recents):
            source_best, source_rule = 0.0, None
            for rule in rules.get(source, [])[: config.candidates_per_source]:
                if rule.consequent == item and rule.lift >= config.min_lift and rule.lift > 0:
                    strength = (1.0 / (1 + position)) * (1.0 - 1.0 / rule.lift)
                    if strength > source_best:
                        source_best, source_rule = strength, rule
            association += source_best
            if source_best > strongest:
                strongest, best_rule = source_best, source_rule
        parts = [
            (config.association_weight * association, best_rule),
            (config.similarity_weight * dict(similar).get(item, 0.0), "similar to your recent views"),
            (
                config.trending_weight * dict(trending[: config.candidates_per_source]).get(item, 0.0) / top_trend
                if top_trend > 0
                else 0.0,
                "trending now",
            ),
        ]
        total, reasons = 0.0, []
        for score, reason in parts:
            if score > 0:
                total += score
                reasons.append((score, reason))
        if reasons:
            words = [
                r
                if isinstance(r, str)
                else f"{'bought' if r.channel.endswith('purchase') else 'viewed'} together with "
                f"{r.antecedent} (lift {r.lift:.1f})"
                for _, r in sorted(reasons, key=lambda pair: -pair[0])
            ]
            ranked.append((item, total, words))
    ranked.sort(key=lambda entry: (-entry[1], entry[0]))  # by the exact score: rounded ones may tie
    return [(item, round(total, 6), words) for item, total, words in ranked[: config.top_k]]


@settings(max_examples=200, deadline=None)
@given(
    recent=st.lists(st.sampled_from(ITEMS), max_size=8),
    rule_rows=st.lists(
        st.tuples(
            st.sampled_from(ITEMS),
            st.sampled_from(ITEMS),
            st.sampled_from(["click->click", "cart->purchase"]),
            st.sampled_from([0.5, 1.0, 1.5, 2.0, 4.0, 8.0]),
        ),
        max_size=30,
    ),
    similar=st.dictionaries(st.sampled_from(ITEMS), st.sampled_from([-0.5, 0.0, 0.25, 0.5, 0.9]), max_size=8),
    trending=st.dictionaries(st.sampled_from(ITEMS), st.sampled_from([0.0, 1.0, 2.0, 5.0]), max_size=8),
    per_source=st.sampled_from([2, 50]),
)
def test_scores_and_reasons_match_a_recount_from_the_formula(
    recent: list[str],
    rule_rows: list[tuple[str, str, str, float]],
    similar: dict[str, float],
    trending: dict[str, float],
    per_source: int,
) -> None:
    """Ties are frequent here (few distinct lifts and similarities): the order, scores and
    reasons must still be those of the recount."""
    rules: dict[str, list[AssociationRule]] = {}
    for antecedent, consequent, channel, lift in rule_rows:
        if antecedent != consequent:
            rule = AssociationRule(antecedent, consequent, channel, 0.1, 0.5, lift, 1.0, 1, 1, 1, 1)
            rules.setdefault(antecedent, []).append(rule)
    found = list(similar.items())
    trend_list = sorted(trending.items(), key=lambda pair: (-pair[1], pair[0]))
    config = RankingConfig(top_k=6, candidates_per_source=per_source)
    [ranked] = recommend_many(
        [RecommendationRequest(user_id="u", query_vector=np.ones(2), recent_items=recent)],
        similar=lambda vectors, k: [([item for item, _ in found[:k]], np.array([s for _, s in found[:k]]))],
        associations=lambda items: [rules.get(item, []) for item in items],
        trending=trend_list,
        config=config,
    )
    expected = _recount(recent, rules, found[:per_source], trend_list, config)
    assert [(entry["item_id"], entry["score"], entry["reasons"]) for entry in ranked] == expected
