"""Exact cosine search with numpy: the answer for small indexes and filtered fallbacks, and
the reference that HNSW recall is measured against.

Its best form is batched: one matrix product for a chunk of queries against all items,
``argpartition`` for the top k (linear), and a sort of only those k. Query chunks are sized
so a chunk's score matrix stays near ``CHUNK_SCORES`` floats, however many items there are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.errors import InvalidInputError
from index.vectors import as_unit_rows

__all__ = ["CHUNK_SCORES", "ExactIndex", "exact_search", "exact_top_k"]

CHUNK_SCORES = 1 << 24  # 16M float32 scores = 64 MiB per chunk
# With fewer than this fraction of rows allowed, search a copy of those rows instead of masking.
SUBSET_BELOW = 0.5


def exact_top_k(
    matrix: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``matrix`` with the ``k`` highest dot products per query, best first.

    ``matrix`` (n, d) and ``queries`` (q, d) should be unit rows for cosine similarity.
    ``allowed``: a boolean mask (n,) of the rows that may be returned. Returns ``(rows,
    scores)``, both (q, min(k, allowed rows)). Ties go to the lower row.
    """
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}")
    if allowed is not None:
        subset = np.flatnonzero(allowed)
        if subset.size < SUBSET_BELOW * matrix.shape[0]:
            # Few rows allowed: multiply by just those (cheaper than masking all scores).
            rows, scores = exact_top_k(matrix[subset], queries, k)
            return subset[rows], scores
    n = matrix.shape[0]
    available = n if allowed is None else int(np.count_nonzero(allowed))
    width = min(k, available)
    q = queries.shape[0]
    rows = np.empty((q, width), dtype=np.int64)
    scores = np.empty((q, width), dtype=np.float32)
    if width == 0 or q == 0:
        return rows, scores
    refused = None if allowed is None else ~allowed
    chunk = max(1, CHUNK_SCORES // max(n, 1))
    for start in range(0, q, chunk):
        stop = min(q, start + chunk)
        similarity = queries[start:stop] @ matrix.T
        if refused is not None:
            similarity[:, refused] = -np.inf
        if width < n:
            top = np.argpartition(-similarity, width - 1, axis=1)[:, :width]
        else:
            top = np.broadcast_to(np.arange(n), (stop - start, n))
        top_scores = np.take_along_axis(similarity, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        rows[start:stop] = np.take_along_axis(top, order, axis=1)
        scores[start:stop] = np.take_along_axis(top_scores, order, axis=1)
    return rows, scores


def exact_search(vectors: np.ndarray, ids: Sequence[str], queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` ids most cosine-similar to each query, best first, as ``(id, similarity)``."""
    return ExactIndex(vectors, ids).query(queries, k)


class ExactIndex:
    """A fixed set of items searched exactly; the reference implementation of ``query``."""

    def __init__(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        array = np.asarray(vectors)
        if array.ndim != 2:
            raise InvalidInputError(f"vectors must be 2-d (n, dim), got shape {array.shape}")
        if len(ids) != array.shape[0]:
            raise InvalidInputError(f"{len(ids)} ids for {array.shape[0]} vectors")
        self.dim = int(array.shape[1])
        self._matrix = as_unit_rows(array, self.dim)
        self._ids = np.asarray(list(ids), dtype=object)

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def query(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Top ``k`` per query row, best first, scores as cosine similarity."""
        rows, scores = exact_top_k(self._matrix, as_unit_rows(queries, self.dim, what="queries"), k)
        return [
            list(zip(self._ids[row].tolist(), score.tolist(), strict=True))
            for row, score in zip(rows, scores, strict=True)
        ]
