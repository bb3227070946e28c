"""``compare_with_peers``: the hybrid against the best batch peer, with a bootstrap interval.

The interval is checked against scipy's own bootstrap of the same statistic (users resampled,
paired across models), the counts against a hand-made result.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stream.evaluation import EvaluationConfig, EvaluationResult, ModelScores, compare_with_peers
from stream.evaluation.uncertainty import hit_ratios


def _result(target_users: list[str], ranks: dict[str, list[int | None]]) -> EvaluationResult:
    return EvaluationResult(
        events=100,
        warm_events=80,
        cut_ts=0,
        targets=len(target_users),
        conversion_targets=0,
        config=EvaluationConfig(),
        scores={
            name: ModelScores(hits=sum(rank is not None for rank in column), discovery_ranks=column)
            for name, column in ranks.items()
        },
        target_users=target_users,
    )


def test_hand_made_counts_best_peer_and_discordant_targets() -> None:
    # targets:        t1    t2    t3    t4    t5
    # users:          a     a     b     c     c
    # hybrid:         hit   -     hit   hit   -      -> 3
    # bm25:           hit   hit   -     -     -      -> 2 (best peer; ties would go to bm25's order)
    # als:            -     -     hit   -     -      -> 1
    result = _result(
        ["a", "a", "b", "c", "c"],
        {
            "hybrid": [1, None, 4, 2, None],
            "bm25": [3, 1, None, None, None],
            "als": [None, None, 1, None, None],
            "popularity": [1, 1, 1, 1, 1],  # not a peer: ignored
        },
    )
    comparison = compare_with_peers(result, resamples=500)
    assert comparison is not None
    assert (comparison.best_peer, comparison.model_hits, comparison.peer_hits) == ("bm25", 3, 2)
    assert comparison.ratio == pytest.approx(1.5)
    assert (comparison.only_model, comparison.only_peer) == (2, 1)  # t3, t4 against t2
    assert (comparison.users, comparison.resamples) == (3, 500)
    assert comparison.low <= comparison.ratio <= comparison.high
    summary = comparison.to_dict()
    assert summary["hr_ratio"] == 1.5 and summary["best_peer"] == "bm25"
    assert "1.50×" in comparison.describe(10) and "only bm25 hit: 1" in comparison.describe(10)


def test_identical_hits_give_a_point_interval_at_one() -> None:
    rng = np.random.default_rng(1)
    users = [f"u{index % 40}" for index in range(200)]
    column: list[int | None] = [1 if hit else None for hit in rng.random(200) < 0.3]
    comparison = compare_with_peers(_result(users, {"hybrid": column, "als": list(column)}))
    assert comparison is not None
    assert (comparison.ratio, comparison.low, comparison.high) == (1.0, 1.0, 1.0)
    assert (comparison.only_model, comparison.only_peer) == (0, 0)


def test_ratios_against_nothing() -> None:
    assert hit_ratios(np.array([2, 0, 3]), np.array([[1, 0], [0, 0], [0, 0]])).tolist() == [2.0, 1.0, math.inf]
    comparison = compare_with_peers(_result(["a", "b"], {"hybrid": [1, None], "bm25": [None, None]}), resamples=200)
    assert comparison is not None
    assert math.isinf(comparison.ratio) and math.isinf(comparison.high)
    assert comparison.to_dict()["hr_ratio"] is None and comparison.to_dict()["interval"][1] is None  # type: ignore[index]
    assert "∞" in comparison.describe(10)


def test_nothing_to_compare_is_none() -> None:
    assert compare_with_peers(_result([], {"hybrid": [], "als": []})) is None
    assert compare_with_peers(_result(["a"], {"hybrid": [1]})) is None
    assert compare_with_peers(_result(["a"], {"als": [1]})) is None


def test_interval_matches_scipys_paired_bootstrap_over_users() -> None:
    """Clustered synthetic targets: each user (1–10 targets) suits a model or not, and a model
    hits most of a suited user's targets and few of the others. The percentile interval of
    hybrid / max(peers) matches scipy.stats.bootstrap resampling the same users, within
    Monte-Carlo error; resampling single targets instead would give a much narrower one."""
    rng = np.random.default_rng(7)
    users: list[str] = []
    ranks: dict[str, list[int | None]] = {"hybrid": [], "bm25": [], "als": []}
    rates = {"hybrid": 0.12, "bm25": 0.07, "als": 0.08}
    for user in range(600):
        suited = {name: rng.random() < rate for name, rate in rates.items()}
        for _ in range(int(rng.integers(1, 11))):
            users.append(f"u{user}")
            for name in rates:
                ranks[name].append(1 if rng.random() < (0.8 if suited[name] else 0.02) else None)
    comparison = compare_with_peers(_result(users, ranks), resamples=20_000, seed=3)
    assert comparison is not None

    order = list(dict.fromkeys(users))
    per_user = {name: np.zeros(len(order)) for name in ranks}
    for index, user in enumerate(users):
        for name, column in ranks.items():
            per_user[name][order.index(user)] += column[index] is not None

    def statistic(hybrid: np.ndarray, bm25: np.ndarray, als: np.ndarray, axis: int = -1) -> np.ndarray:
        return hybrid.sum(axis=axis) / np.maximum(bm25.sum(axis=axis), als.sum(axis=axis))

    reference = stats.bootstrap(
        (per_user["hybrid"], per_user["bm25"], per_user["als"]),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=20_000,
        method="percentile",
        confidence_level=0.95,
        random_state=np.random.default_rng(11),
    ).confidence_interval
    total = {name: sum(rank is not None for rank in column) for name, column in ranks.items()}
    assert comparison.ratio == pytest.approx(total["hybrid"] / max(total["bm25"], total["als"]))
    assert comparison.low < comparison.ratio < comparison.high
    assert comparison.low == pytest.approx(reference.low, rel=0.03)
    assert comparison.high == pytest.approx(reference.high, rel=0.03)
    per_target = compare_with_peers(_result([str(index) for index in range(len(users))], ranks), resamples=20_000)
    assert per_target is not None
    assert per_target.high - per_target.low < 0.75 * (comparison.high - comparison.low)
