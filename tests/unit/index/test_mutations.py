"""Upserts, deletes, capacity and k: the hnswlib sharp edges the wrapper absorbs."""

from __future__ import annotations

import numpy as np
import pytest

from index import InvalidInputError, ItemIndex, QueryPath, UnknownItemError, clustered_vectors

DIM = 16


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture
def filled() -> tuple[ItemIndex, np.ndarray, list[str]]:
    vectors = clustered_vectors(3_000, DIM, seed=21)
    ids = [f"i{row}" for row in range(3_000)]
    index = ItemIndex(DIM, exact_below=0, initial_capacity=8)  # exercises growth too
    index.upsert(ids, vectors)
    return index, vectors, ids


def test_deleted_ids_never_come_back(filled) -> None:
    index, vectors, ids = filled
    deleted = set(ids[::3])
    assert index.delete(deleted) == len(deleted)
    assert index.delete(deleted | {"never-there"}) == 0  # idempotent

    found = index.query(vectors, 10)  # each deleted item's own vector is its best match

    assert found.report.path is QueryPath.HNSW
    assert not {item for row in found for item, _ in row} & deleted
    assert all(len(row) == 10 for row in found)
    assert len(index) == len(ids) - len(deleted)
    assert all(item not in index for item in deleted)
    with pytest.raises(UnknownItemError):
        index.vector(ids[0])


def test_deleted_slots_are_reused_and_new_items_found(filled) -> None:
    index, vectors, ids = filled
    capacity = index.capacity
    index.delete(ids[:500])
    fresh = clustered_vectors(500, DIM, seed=99)
    index.upsert([f"new{row}" for row in range(500)], fresh)

    assert index.capacity == capacity, "reused slots, no growth"
    assert len(index) == len(ids)
    found = index.query(fresh, 1)
    assert [row[0][0] for row in found] == [f"new{row}" for row in range(500)]
    assert not {item for row in index.query(vectors[:500], 10) for item, _ in row} & set(ids[:500])


def test_upsert_moves_an_item(filled) -> None:
    index, vectors, ids = filled
    target = vectors[2_000]
    assert index.query_one(target, 1)[0][0] == "i2000"

    index.upsert(["i5"], target[np.newaxis] * 3.0)  # now i5 sits exactly where i2000 is

    top_two = {item for item, _ in index.query_one(target, 2)}
    assert top_two == {"i5", "i2000"}
    near_old_place = [item for item, _ in index.query_one(vectors[5], 10)]
    assert "i5" not in near_old_place
    np.testing.assert_allclose(index.vector("i5"), target, rtol=1e-6)
    assert len(index) == len(ids)


def test_upsert_of_live_ids_while_deleted_slots_exist_keeps_each_id_once(filled) -> None:
    # hnswlib's replace_deleted=True on a live label would leave that label twice.
    index, vectors, ids = filled
    index.delete(ids[:100])
    index.upsert(ids[100:300], vectors[100:300][::-1].copy())

    rows = index.query(vectors[100:300], 50)

    for row in rows:
        returned = [item for item, _ in row]
        assert len(returned) == len(set(returned))
    assert len(index) == len(ids) - 100
    assert sorted(index.ids()) == sorted(ids[100:])


def test_capacity_grows_before_full() -> None:
    index = ItemIndex(DIM, initial_capacity=1, exact_below=0)
    vectors = clustered_vectors(2_500, DIM, seed=3)
    for start in range(0, 2_500, 250):
        index.upsert([f"i{row}" for row in range(start, start + 250)], vectors[start : start + 250])
        assert index.capacity >= len(index)
    assert len(index) == 2_500
    assert [row[0][0] for row in index.query(vectors[:50], 1)] == [f"i{row}" for row in range(50)]


def test_k_larger_than_live_count() -> None:
    index = ItemIndex(DIM, exact_below=0)
    vectors = clustered_vectors(5, DIM, seed=1)
    index.upsert(["a", "b", "c", "d", "e"], vectors)
    index.delete(["e"])

    rows = index.query(vectors, 10)

    assert [sorted(item for item, _ in row) for row in rows] == [["a", "b", "c", "d"]] * 5
    for row in rows:
        scores = [score for _, score in row]
        assert scores == sorted(scores, reverse=True)


def test_empty_index_and_empty_query() -> None:
    index = ItemIndex(DIM)
    assert index.query(np.ones((3, DIM)), 5) == [[], [], []]
    index.upsert(["a"], np.ones((1, DIM)))
    assert index.query(np.ones((0, DIM)), 5) == []


def test_scores_are_cosine_similarity(filled) -> None:
    index, vectors, ids = filled
    query = clustered_vectors(3_010, DIM, seed=21)[3_000:] * 7.0
    unit_vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for query_vector, row in zip(query, index.query(query, 5), strict=True):
        for item, score in row:
            expected = float(unit_vectors[ids.index(item)] @ unit(query_vector))
            assert score == pytest.approx(expected, abs=1e-5)


def test_duplicate_ids_in_one_batch_keep_the_last() -> None:
    index = ItemIndex(3)
    index.upsert(["a", "b", "a"], np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), [{"v": 1}, {}, {"v": 3}])
    assert len(index) == 2
    np.testing.assert_allclose(index.vector("a"), [0, 0, 1])
    assert index.metadata("a") == {"v": 3}


def test_metadata_kept_replaced_and_cleared() -> None:
    index = ItemIndex(3)
    index.upsert(["a"], np.ones((1, 3)), [{"category": "Phones", "in_stock": True}])
    index.upsert(["a"], np.ones((1, 3)))  # metadata=None keeps it
    assert index.metadata("a") == {"category": "Phones", "in_stock": True}
    index.upsert(["a"], np.ones((1, 3)), [None])
    assert index.metadata("a") == {}
    with pytest.raises(UnknownItemError, match="'zz'"):
        index.metadata("zz")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda index: index.upsert(["a"], np.ones((1, DIM + 1))), "shape"),
        (lambda index: index.upsert(["a", "b"], np.ones((1, DIM))), "2 ids for 1 vectors"),
        (lambda index: index.upsert(["a"], np.zeros((1, DIM))), "no direction"),
        (lambda index: index.upsert(["a"], np.full((1, DIM), np.nan)), "no direction"),
        (lambda index: index.upsert([7], np.ones((1, DIM))), "must be a str"),
        (lambda index: index.upsert(["a"], np.ones((1, DIM)), [{}, {}]), "metadata"),
        (lambda index: index.query(np.ones((1, DIM)), 0), "k must be"),
        (lambda index: index.query(np.ones((2, DIM)), 1, exclude=[{"a"}]), "1 collections for 2"),
        (lambda index: index.query(np.ones((1, DIM)), 1, exclude="a"), "not a single str"),
    ],
)
def test_bad_input_is_refused_clearly(call, message) -> None:
    index = ItemIndex(DIM)
    with pytest.raises(InvalidInputError, match=message):
        call(index)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="space"):
        ItemIndex(DIM, space="l2")
    with pytest.raises(InvalidInputError, match="ef must be"):
        ItemIndex(DIM, ef=0)
    with pytest.raises(InvalidInputError, match="dim"):
        ItemIndex(0)


def test_lookup_of_many_ids_matches_the_single_id_accessors(filled) -> None:
    index, vectors, ids = filled
    index.upsert(["i1"], unit(np.ones(DIM)).reshape(1, -1), [{"category": "moved"}])
    index.delete(["i2"])
    wanted = ["i1", "i2", "nope", "i3", "i1"]

    found, metadata = index.lookup(wanted)

    assert found.shape == (5, DIM) and found.dtype == np.float32
    for row, item in enumerate(wanted):
        if item in index:
            assert np.array_equal(found[row], index.vector(item))
            assert metadata[row] == index.metadata(item)
        else:
            assert np.isnan(found[row]).all() and metadata[row] is None
    assert metadata[0] == {"category": "moved"} and np.allclose(found[0], unit(np.ones(DIM)), atol=1e-6)
    assert np.allclose(found[3], unit(vectors[3]), atol=1e-6)
    assert index.metadata_many(wanted) == metadata  # the same, without the vectors
    known, known_metadata = index.lookup(["i3", "i1"])  # all present: no NaN row, still a copy
    assert np.array_equal(known, found[[3, 0]]) and known_metadata == [metadata[3], metadata[0]]
    known[:] = 0.0
    assert np.allclose(index.vector("i3"), unit(vectors[3]), atol=1e-6)
    empty, none = index.lookup([])
    assert empty.shape == (0, DIM) and none == [] and index.metadata_many([]) == []
