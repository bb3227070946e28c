"""Filtered queries: exclusions and metadata predicates keep recall among the allowed items."""

from __future__ import annotations

import numpy as np
import pytest

from index import ItemIndex, QueryPath, clustered_vectors
from tests.unit.index.conftest import ProductEmbeddings, brute_force_neighbours, recall_at_k

K = 10


def _allowed_recall(index: ItemIndex, vectors, ids, queries, allowed: np.ndarray, **filters) -> tuple:
    found = index.query(queries, K, **filters)
    allowed_ids = [item for item, keep in zip(ids, allowed, strict=True) if keep]
    truth = brute_force_neighbours(vectors[allowed], allowed_ids, queries, K)
    returned = {item for row in found for item, _ in row}
    assert returned <= set(allowed_ids), "a filtered-out item was returned"
    return recall_at_k(found, truth, K), found.report


@pytest.mark.slow
def test_predicate_removing_90_percent_keeps_recall_on_real_embeddings(
    product_embeddings: ProductEmbeddings,
) -> None:
    data = product_embeddings
    rng = np.random.default_rng(11)
    in_stock = rng.random(len(data.ids)) < 0.10
    index = ItemIndex(data.vectors.shape[1])
    index.upsert(data.ids, data.vectors, [{"in_stock": bool(flag)} for flag in in_stock])

    recall, report = _allowed_recall(
        index, data.vectors, data.ids, data.queries, in_stock, predicate=lambda item, meta: meta["in_stock"]
    )

    assert recall >= 0.95, f"recall@10 among allowed items {recall:.3f} ({report})"


def test_predicate_removing_90_percent_keeps_recall_on_clustered_vectors() -> None:
    n, dim = 20_000, 64
    vectors = clustered_vectors(n + 100, dim, seed=5)
    ids = [f"i{row}" for row in range(n)]
    category = np.arange(n) % 10
    index = ItemIndex(dim)
    index.upsert(ids, vectors[:n], [{"category": f"c{value}"} for value in category])
    allowed = category == 4

    recall, report = _allowed_recall(
        index, vectors[:n], ids, vectors[n:], allowed, predicate=lambda item, meta: meta["category"] == "c4"
    )

    assert recall >= 0.95, f"recall@10 among allowed items {recall:.3f}"
    assert report.hnsw_rows > 0, "at this size most rows should be answered by the deeper HNSW query"


def test_too_selective_filter_falls_back_to_exact_and_stays_exact() -> None:
    n, dim = 5_000, 32
    vectors = clustered_vectors(n + 20, dim, seed=9)
    ids = [f"i{row}" for row in range(n)]
    index = ItemIndex(dim, exact_below=0)
    index.upsert(ids, vectors[:n])
    allowed = np.zeros(n, dtype=bool)
    allowed[::500] = True  # 10 items out of 5,000
    keep = {ids[row] for row in np.flatnonzero(allowed)}

    recall, report = _allowed_recall(
        index, vectors[:n], ids, vectors[n:], allowed, predicate=lambda item, meta: item in keep
    )

    assert report.path is QueryPath.EXACT
    assert report.reason == "filter too selective"
    assert recall == 1.0


def test_exclude_shared_and_per_row() -> None:
    n, dim = 3_000, 32
    vectors = clustered_vectors(n + 5, dim, seed=2)
    ids = [f"i{row}" for row in range(n)]
    index = ItemIndex(dim, exact_below=0)
    index.upsert(ids, vectors[:n])
    queries = vectors[n:]
    unfiltered = index.query(queries, K)
    shared = {item for item, _ in unfiltered[0][:5]}

    excluded_everywhere = index.query(queries, K, exclude=shared)
    per_row = [{item for item, _ in row[:3]} for row in unfiltered]
    excluded_per_row = index.query(queries, K, exclude=per_row)

    for row in excluded_everywhere:
        assert len(row) == K and not {item for item, _ in row} & shared
    for row, banned, before in zip(excluded_per_row, per_row, unfiltered, strict=True):
        assert len(row) == K and not {item for item, _ in row} & banned
        # Removing the first three leaves the rest of the ranking in front.
        assert [item for item, _ in row[:7]] == [item for item, _ in before[3:]]
    assert excluded_per_row.report.path is QueryPath.HNSW


def test_filters_on_exact_path_match_brute_force() -> None:
    n, dim = 500, 16
    vectors = clustered_vectors(n + 10, dim, seed=4)
    ids = [f"i{row}" for row in range(n)]
    index = ItemIndex(dim, deterministic=True)
    index.upsert(ids, vectors[:n], [{"even": row % 2 == 0} for row in range(n)])
    excluded = {"i0", "i2", "i4"}
    allowed = np.array([row % 2 == 0 and ids[row] not in excluded for row in range(n)])

    recall, report = _allowed_recall(
        index,
        vectors[:n],
        ids,
        vectors[n:],
        allowed,
        exclude=excluded,
        predicate=lambda item, meta: meta["even"],
    )

    assert report.path is QueryPath.EXACT
    assert recall == 1.0


def test_fewer_allowed_items_than_k_returns_all_of_them() -> None:
    vectors = clustered_vectors(3_000, 16, seed=1)
    ids = [f"i{row}" for row in range(3_000)]
    index = ItemIndex(16, exact_below=0)
    index.upsert(ids, vectors)

    rows = index.query(vectors[:2], K, predicate=lambda item, meta: item in {"i1", "i2", "i3"})

    assert [sorted(item for item, _ in row) for row in rows] == [["i1", "i2", "i3"]] * 2
