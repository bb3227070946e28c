"""The candidate sources shared by the stream and the evaluation, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from stream.engine.retrieval import best_lift_rules, blend_query_vector, trending_items


def test_best_lift_rules_keeps_the_best_channel_per_consequent() -> None:
    counts = {("B", "click"): 2.0, ("B", "cart"): 1.0, ("C", "click"): 4.0}
    rules = best_lift_rules(
        "A",
        occurrences={"click": 4.0},
        partners={"click->click": [("B", 2.0), ("C", 1.0)], "click->cart": [("B", 1.0)]},
        consequent_count=lambda item, kind: counts.get((item, kind), 0.0),
        transactions=10.0,
    )
    # lift = n_ab · N / (n_a · n_b): A→B click 2·10/(4·2) = 2.5, cart 1·10/(4·1) = 2.5 (tie; the
    # click rule has the higher confidence, 0.5 against 0.25), A→C 1·10/(4·4) = 0.625
    assert [(rule.consequent, rule.channel) for rule in rules] == [("B", "click->click"), ("C", "click->click")]
    assert [rule.lift for rule in rules] == pytest.approx([2.5, 0.625])
    assert rules[0].confidence == pytest.approx(0.5)
    only_cart = best_lift_rules(
        "A",
        occurrences={"click": 4.0},
        partners={"click->click": [("B", 2.0)], "click->cart": [("B", 1.0)]},
        consequent_count=lambda item, kind: counts.get((item, kind), 0.0),
        transactions=10.0,
        channels=("click->cart",),
    )
    assert [rule.channel for rule in only_cart] == ["click->cart"]


def test_trending_and_query_vector() -> None:
    assert trending_items([("a", {"click": 1.0}), ("b", {"click": 1.0, "cart": 2.0}), ("c", {"cart": 1.0})], 2) == [
        ("b", 3.0),
        ("a", 1.0),
    ]
    profile = np.array([1.0, 0.0], dtype=np.float32)
    assert np.array_equal(blend_query_vector(profile, np.full((1, 2), np.nan)), profile)
    blended = blend_query_vector(profile, np.array([[0.0, 2.0], [np.nan, np.nan]]))
    assert blended == pytest.approx(np.array([1.0, 1.0]) / np.sqrt(2.0))
