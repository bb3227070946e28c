"""Exact search against an independent brute-force recount (full argsort)."""

from __future__ import annotations

import numpy as np
import pytest

from index import ExactIndex, InvalidInputError, exact_search, exact_top_k
from tests.unit.index.conftest import brute_force_neighbours


def test_exact_search_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((700, 24)).astype(np.float32) * rng.uniform(0.1, 5, (700, 1)).astype(np.float32)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    ids = [f"v{row}" for row in range(700)]

    found = exact_search(vectors, ids, queries, 7)

    assert [[item for item, _ in row] for row in found] == brute_force_neighbours(vectors, ids, queries, 7)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for query, row in zip(queries / np.linalg.norm(queries, axis=1, keepdims=True), found, strict=True):
        expected = [float(unit[int(item[1:])] @ query) for item, _ in row]
        np.testing.assert_allclose([score for _, score in row], expected, rtol=1e-5, atol=1e-6)


def test_exact_top_k_with_mask_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import index.exact as exact_module

    monkeypatch.setattr(exact_module, "CHUNK_SCORES", 1000)  # many small query chunks
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((300, 8)).astype(np.float32)
    queries = rng.standard_normal((25, 8)).astype(np.float32)
    for allowed_fraction in (0.05, 0.9):
        allowed = rng.random(300) < allowed_fraction
        rows, scores = exact_top_k(matrix, queries, 5, allowed=allowed)
        similarity = queries @ matrix.T
        similarity[:, ~allowed] = -np.inf
        expected = np.argsort(-similarity, axis=1, kind="stable")[:, : min(5, allowed.sum())]
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_allclose(scores, np.take_along_axis(similarity, expected, axis=1), rtol=1e-5)


def test_k_larger_than_items_and_ties_go_to_lower_row() -> None:
    matrix = np.array([[1, 0], [0, 1], [1, 0], [-1, 0]], dtype=np.float32)
    rows, scores = exact_top_k(matrix, np.array([[1, 0]], dtype=np.float32), 10)
    assert rows.tolist() == [[0, 2, 1, 3]]
    assert scores.tolist() == [[1.0, 1.0, 0.0, -1.0]]


def test_exact_index_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        ExactIndex(np.ones((3, 4)), ["a", "b"])
    with pytest.raises(InvalidInputError, match="no direction"):
        ExactIndex(np.zeros((1, 4)), ["a"])
    with pytest.raises(InvalidInputError, match="shape"):
        ExactIndex(np.ones((2, 4)), ["a", "b"]).query(np.ones((1, 5)), 1)
    with pytest.raises(InvalidInputError, match="k must be"):
        exact_top_k(np.ones((2, 4), dtype=np.float32), np.ones((1, 4), dtype=np.float32), 0)
