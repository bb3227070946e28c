"""Queries from one thread while others add and delete: no crash, no deleted or half-added items."""

from __future__ import annotations

import threading

import numpy as np

from index import ItemIndex, clustered_vectors

DIM = 32
BATCH = 200


def test_concurrent_queries_while_adding_and_deleting() -> None:
    vectors = clustered_vectors(8_000, DIM, seed=13)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"i{row}" for row in range(8_000)]
    index = ItemIndex(DIM, exact_below=0, initial_capacity=64)
    index.upsert(ids[:1_000], vectors[:1_000])
    completed_deletes: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()
    checked = {"rows": 0}

    def writer() -> None:
        try:
            for start in range(1_000, 8_000, BATCH):
                index.upsert(ids[start : start + BATCH], vectors[start : start + BATCH])
                doomed = ids[start - 1_000 : start - 1_000 + BATCH // 4]
                index.delete(doomed)
                completed_deletes.update(doomed)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                deleted_before = set(completed_deletes)
                rows = rng.integers(0, 8_000, size=16)
                for query_row, result in zip(rows, index.query(vectors[rows], 10), strict=True):
                    for item, score in result:
                        assert item not in deleted_before, f"deleted {item} returned"
                        # A half-added item would not have its full vector: the score proves it has.
                        expected = float(unit[int(item[1:])] @ unit[query_row])
                        assert abs(score - expected) < 1e-4, (item, score, expected)
                    checked["rows"] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors[0]
    assert checked["rows"] > 0
    assert len(index) == 8_000 - len(completed_deletes)
    assert not {item for row in index.query(vectors, 10) for item, _ in row} & completed_deletes
