"""The deterministic mode: results depend only on the items, not on insertion order or restarts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index import DEFAULT_EXACT_BELOW, ItemIndex, QueryPath, clustered_vectors
from tests.unit.index.conftest import brute_force_neighbours


def test_deterministic_index_ignores_insertion_order_and_restarts(tmp_path: Path) -> None:
    n = DEFAULT_EXACT_BELOW * 2  # large enough that a default index would use HNSW
    vectors = clustered_vectors(n + 50, 32, seed=17)
    ids = [f"i{row}" for row in range(n)]
    forward = ItemIndex(32, deterministic=True)
    forward.upsert(ids, vectors[:n])
    backward = ItemIndex(32, deterministic=True)
    order = np.random.default_rng(0).permutation(n)
    for chunk in np.array_split(order, 7):
        backward.upsert([ids[row] for row in chunk], vectors[chunk])
    queries = vectors[n:]

    first = forward.query(queries, 10)
    second = backward.query(queries, 10)
    forward.save(tmp_path)
    restarted = ItemIndex.load(tmp_path, deterministic=True).query(queries, 10)

    assert first.report.path is QueryPath.EXACT and first.report.reason == "deterministic"
    assert [[item for item, _ in row] for row in first] == brute_force_neighbours(vectors[:n], ids, queries, 10)
    assert [[item for item, _ in row] for row in second] == [[item for item, _ in row] for row in first]
    np.testing.assert_allclose(
        [[score for _, score in row] for row in second],
        [[score for _, score in row] for row in first],
        atol=1e-6,
    )
    assert restarted == first


def test_small_indexes_are_searched_exactly() -> None:
    vectors = clustered_vectors(300, 16, seed=2)
    index = ItemIndex(16)
    index.upsert([f"i{row}" for row in range(300)], vectors)
    assert index.query(vectors[:3], 5).report.reason == "small index"
