"""``TrendingItems`` keeps the list ``trending_items`` gives, ranking every item from scratch
(the reference), through upserts that raise, lower, tie and add items, read at any depth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine.retrieval import TrendingItems, trending_items

# (item, clicks, carts) upserts with small counts, so totals tie and fall often, and reads of k.
upsert = st.tuples(st.integers(0, 40), st.integers(0, 6), st.integers(0, 3))
read = st.integers(1, 60)
steps = st.lists(st.one_of(upsert, read), min_size=1, max_size=120)


@settings(max_examples=300, deadline=None)
@given(steps=steps, depth=st.integers(1, 12))
def test_the_leaders_equal_ranking_every_item_after_any_upserts(steps: list, depth: int) -> None:
    trending = TrendingItems(depth=depth)
    counts: dict[str, dict[str, float]] = {}
    for step in steps:
        if isinstance(step, tuple):
            item, clicks, carts = step
            counts[f"item{item}"] = {"click": float(clicks), "cart": float(carts)}
            trending.set_item(f"item{item}", counts[f"item{item}"])
        else:
            assert trending.top(step) == trending_items(counts.items(), step)


def test_a_read_after_few_changes_ranks_only_the_leaders_and_the_changed_items() -> None:
    trending = TrendingItems(depth=3)
    for n in range(1000):
        trending.set_item(f"item{n}", {"click": float(n % 97)})
    assert trending.top(3) == [("item193", 96.0), ("item290", 96.0), ("item387", 96.0)]  # ties by id
    trending.set_item("item5", {"click": 500.0})  # a new leader
    trending.set_item("item96", {"click": 96.0})  # a leader, unchanged total
    assert trending._changed == {"item5", "item96"}
    assert trending.top(3) == trending_items(
        ((f"item{n}", {"click": 500.0 if n == 5 else float(n % 97)}) for n in range(1000)), 3
    )
    trending.set_item("item5", {"click": 1.0})  # a leader falls: everything is ranked again
    assert trending._rank_all
