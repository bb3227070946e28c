"""Recall@10 of the HNSW path against brute force, at the default parameters.

Each test asserts that HNSW answered (not the exact fallback), otherwise a recall of 1.0
would prove nothing about the graph.
"""

from __future__ import annotations

import numpy as np
import pytest

from index import DEFAULT_EXACT_BELOW, ItemIndex, QueryPath, clustered_vectors
from tests.unit.index.conftest import ProductEmbeddings, brute_force_neighbours, recall_at_k

K = 10
TARGET_RECALL = 0.95


@pytest.mark.slow
def test_recall_on_real_product_embeddings(product_embeddings: ProductEmbeddings) -> None:
    data = product_embeddings
    assert len(data.ids) > DEFAULT_EXACT_BELOW, "the index must be big enough for the HNSW path"
    index = ItemIndex(data.vectors.shape[1], model_version=data.model_version)
    index.upsert(data.ids, data.vectors)

    found = index.query(data.queries, K)

    assert found.report.path is QueryPath.HNSW
    assert found.report.exact_rows == 0
    recall = recall_at_k(found, brute_force_neighbours(data.vectors, data.ids, data.queries, K), K)
    assert recall >= TARGET_RECALL, f"recall@10 {recall:.3f}"


@pytest.mark.slow
def test_recall_on_100k_clustered_vectors() -> None:
    n, queries, dim = 100_000, 200, 384
    # Queries are held-out draws from the same clusters, never indexed themselves.
    vectors = clustered_vectors(n + queries, dim, seed=7)
    ids = [f"item-{row}" for row in range(n)]
    index = ItemIndex(dim, initial_capacity=n)
    index.upsert(ids, vectors[:n])
    query_vectors = vectors[n:]

    found = index.query(query_vectors, K)

    assert found.report.path is QueryPath.HNSW
    recall = recall_at_k(found, brute_force_neighbours(vectors[:n], ids, query_vectors, K), K)
    assert recall >= TARGET_RECALL, f"recall@10 {recall:.3f}"


def test_clustered_vectors_are_not_a_trivial_case() -> None:
    """The synthetic data has structure (near neighbours much closer than random pairs)."""
    vectors = clustered_vectors(5_000, 64, seed=3)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors[:100] @ vectors.T
    np.fill_diagonal(similarity[:, :100], -1.0)
    nearest = similarity.max(axis=1).mean()
    typical = np.median(similarity)
    assert nearest > typical + 0.5
    assert not np.array_equal(nearest, 1.0)  # neighbours are close, not duplicates
    np.testing.assert_array_equal(vectors, clustered_vectors(5_000, 64, seed=3))
