"""``query_arrays``: the unfiltered search answered as arrays, checked against a brute-force
sort of every similarity and against ``query`` on the same index."""

from __future__ import annotations

import numpy as np
import pytest

from index import InvalidInputError, ItemIndex, QueryPath, clustered_vectors
from tests.unit.index.conftest import brute_force_neighbours

DIM = 32
K = 10


def cosine(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    vectors = clustered_vectors(5_100, DIM, seed=5)
    return vectors[:5_000], vectors[5_000:], [f"p{row}" for row in range(5_000)]


def test_graph_answers_match_brute_force_and_query(data) -> None:
    vectors, queries, ids = data
    index = ItemIndex(DIM, initial_capacity=len(ids))
    index.upsert(ids, vectors)

    found = index.query_arrays(queries, K)

    assert found.report.path is QueryPath.HNSW and index.last_query_report is found.report
    assert found.ids.shape == found.scores.shape == (len(queries), K)
    truth = brute_force_neighbours(vectors, ids, queries, K)
    hits = sum(len(set(row) & set(expected)) for row, expected in zip(found.ids.tolist(), truth, strict=True))
    assert hits / (K * len(queries)) >= 0.95
    # Each score is the cosine similarity of its own item, best first.
    similarity = cosine(vectors, queries)
    columns = np.vectorize(lambda item: int(item[1:]))(found.ids)
    np.testing.assert_allclose(found.scores, np.take_along_axis(similarity, columns, axis=1), atol=1e-5)
    assert (np.diff(found.scores, axis=1) <= 1e-6).all()
    # The same search as query: the same rows, as (id, score) tuples.
    assert found.rows() == index.query(queries, K)


def test_small_index_is_answered_exactly(data) -> None:
    vectors, queries, ids = data
    index = ItemIndex(DIM)  # 300 items: below exact_below
    index.upsert(ids[:300], vectors[:300])
    index.delete(ids[:300:2])
    kept = ids[1:300:2]

    found = index.query_arrays(queries, K)

    assert found.report.path is QueryPath.EXACT and found.report.reason == "small index"
    assert found.ids.tolist() == brute_force_neighbours(vectors[1:300:2], kept, queries, K)


def test_k_beyond_the_live_items_and_an_empty_index() -> None:
    index = ItemIndex(DIM, exact_below=0)
    assert index.query_arrays(np.ones((3, DIM)), K).ids.shape == (3, 0)
    index.upsert(["a", "b", "c"], np.eye(3, DIM))

    found = index.query_arrays(np.eye(2, DIM), K)

    assert found.ids.shape == (2, 3)
    assert found.ids[:, 0].tolist() == ["a", "b"]
    assert found.rows()[0][0] == ("a", pytest.approx(1.0))


@pytest.mark.parametrize(
    ("vectors", "k", "message"),
    [
        (np.ones((2, DIM)), 0, "k must be a positive integer"),
        (np.ones((2, DIM + 1)), K, "queries must have shape"),
        (np.zeros((2, DIM)), K, "row 0 is zero, NaN or infinite"),
    ],
)
def test_bad_queries_are_refused(vectors, k, message) -> None:
    index = ItemIndex(DIM)
    index.upsert(["a"], np.ones((1, DIM)))
    with pytest.raises(InvalidInputError, match=message):
        index.query_arrays(vectors, k)
