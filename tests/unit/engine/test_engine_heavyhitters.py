"""Bounded partner memory (Space-Saving) against exact counts: on Taobao and against brute force."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import AssociationEngine, CooccurrenceConfig, EngineConfig, SpaceSaving, read_taobao

CHANNEL = "click->click"
CAPACITY = 40


def _replay(events, capacity):
    engine = AssociationEngine(
        EngineConfig(cooccurrence=CooccurrenceConfig(partner_capacity=capacity), profiles=None)
    )
    now = events[-1]["ts"] + 1
    for start in range(0, len(events), 5000):
        engine.process(events[start : start + 5000], now_ms=now)
    engine.flush()
    return engine


@pytest.mark.slow
def test_bounded_top20_agrees_with_unbounded_on_taobao(shared_data):
    events, _ = read_taobao(shared_data / "taobao_userbehavior" / "UserBehavior_head84475.csv")
    exact, bounded = _replay(events, None), _replay(events, CAPACITY)
    assert exact.evictions() == 0
    assert bounded.evictions() > 1000  # the bound really bites
    frequent = sorted(exact.store.items, key=lambda i: -exact.store.occurrence(i, "click"))[:50]
    overlaps = []
    for item in frequent:
        truth = exact.store.items[item].partners[CHANNEL]
        sketch = bounded.store.items[item].partners[CHANNEL]
        true_top = truth.top(20)
        # ties at the 20th count make "the" top-20 ambiguous: accept any key tied with the 20th
        cutoff = true_top[-1][1]
        acceptable = {key for key, count in truth.counts.items() if count >= cutoff}
        found = [key for key, _, _ in sketch.top(len(true_top))]
        overlaps.append(sum(key in acceptable for key in found) / len(true_top))
    agreement = sum(overlaps) / len(overlaps)
    print(f"top-20 agreement over the 50 most clicked items: {agreement:.4f} (min {min(overlaps):.2f})")
    assert agreement >= 0.95


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcdefghijklmnop"), st.integers(1, 5)), max_size=300),
    st.integers(1, 8),
)
def test_space_saving_error_bound_against_brute_force(stream, capacity):
    sketch = SpaceSaving(capacity)
    truth: Counter[str] = Counter()
    for key, weight in stream:
        sketch.add(key, weight)
        truth[key] += weight
    bound = sketch.error_bound()
    for key, count in sketch.counts.items():
        assert truth[key] <= count <= truth[key] + sketch.errors[key] + 1e-9
        assert sketch.errors[key] <= bound + 1e-9
    for key, count in truth.items():
        if count > bound:
            assert key in sketch.counts
