"""``ItemIndex``: a thread-safe HNSW index of item embeddings with string ids, metadata,
filtered queries and atomic snapshots.

hnswlib (0.8) is fast but sharp; this wrapper absorbs each edge so the stream never meets one:

- **Labels.** hnswlib labels are integers; here a label is the item's *row* in our own
  arrays (vectors, ids, liveness), so exact search and id lookup are one numpy indexing.
- **Upsert.** Re-adding a live label updates its vector in place (hnswlib repairs its links).
  ``replace_deleted=True`` is never used: on a live label it leaves the label twice.
- **Delete.** ``mark_deleted`` hides the row from every search; the row goes on a free list
  (a heap, smallest first, so the reuse order survives a restart). A new item takes a free
  row by re-adding that row's own label, which hnswlib unmarks and updates in place; the
  index is built with ``allow_replace_deleted=False`` because with it that re-add raises.
- **Capacity.** Resized (doubling) before an upsert that would not fit; hnswlib never sees a
  full index.
- **k.** hnswlib raises when it finds fewer than k items; k is capped at the live count, and
  the rare failure (a graph cut apart by deletes) is answered by exact search instead.
- **ef.** Not saved by hnswlib (a loaded index searches with ef=10); re-applied on load.
- **Threads.** One lock around every hnswlib call and our arrays, so adds, deletes and
  queries from different threads are safe and a query never sees a half-added item. Batch
  adds and batch queries use hnswlib's own threads (``num_threads``) inside the lock. A
  snapshot only reads, so it holds a second lock that keeps writers out and lets queries
  run; it copies the graph out of hnswlib (``__getstate__``, the one step that holds the GIL)
  and writes the copy with numpy, which releases the GIL. hnswlib's own ``save_index`` holds
  the GIL for the whole write: at 50,000 items it stopped a worker's event loop for 140 ms,
  and for 400 ms under the query lock (docs/DECISIONS.md).
- **Filters.** ``exclude`` ids and a metadata ``predicate`` are applied to what HNSW returns;
  rows that have too few allowed neighbours are asked again deeper (sized by the allowed
  fraction seen so far), and once that depth passes ``max_filtered_fetch_fraction`` of the
  index they are answered by exact search over the allowed set. Recall is not lost to filters.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import orjson

from index.config import (
    DEFAULT_EF,
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EXACT_BELOW,
    DEFAULT_INITIAL_CAPACITY,
    DEFAULT_M,
    DEFAULT_MAX_FILTERED_FETCH_FRACTION,
    DEFAULT_RANDOM_SEED,
    GROWTH_FACTOR,
    IndexConfig,
)
from index.errors import InvalidInputError, SnapshotCorruptError, SnapshotError, UnknownItemError
from index.exact import exact_top_k
from index.results import Neighbour, NeighbourArrays, QueryPath, QueryReport, QueryResult, neighbour_rows
from index.snapshot import SnapshotManifest, check_offsets, open_snapshot, publish_snapshot, verify_files
from index.vectors import as_checked_rows, as_unit_rows

__all__ = ["ItemIndex", "Predicate"]

Predicate = Callable[[str, Mapping[str, Any]], bool]
"""``predicate(item_id, metadata) -> bool``: True keeps the item in a query's results."""

GRAPH_FILE = "hnsw.bin"  # hnswlib's own format: read from older snapshots, no longer written
GRAPH_STATE_FILE = "hnsw.state"  # hnswlib's pickled state (``_write_graph_state``)
GRAPH_STATE_MAGIC = b"XHNSW1\n"
GRAPH_STATE_HEADER_MAX = 1 << 20
GRAPH_STATE_ARRAYS = {  # what hnswlib 0.8 pickles, and the types it pickles them with
    "label_lookup_external": np.dtype(np.uint64),
    "label_lookup_internal": np.dtype(np.uint32),
    "element_levels": np.dtype(np.int32),
    "data_level0": np.dtype(np.int8),
    "link_lists": np.dtype(np.int8),
}
VECTORS_FILE = "vectors.npy"
ITEMS_FILE = "items.json"
# A filtered query first fetches this many times k when a predicate may remove items.
FILTER_FIRST_OVERSAMPLE = 4
# When rows still lack k allowed items, the next fetch aims this much past the estimate.
FILTER_DEPTH_MARGIN = 1.5
EMPTY_METADATA: Mapping[str, Any] = {}


class ItemIndex:
    """Items (string id, embedding, metadata) searchable by cosine similarity.

    >>> index = ItemIndex(384, model_version="all-MiniLM-L6-v2@abc")   # doctest: +SKIP
    >>> index.upsert(["sku-1", "sku-2"], vectors, [{"category": "Phones"}, {}])
    >>> index.query(user_vectors, k=10, exclude=[{"sku-1"}, set()],
    ...             predicate=lambda item, meta: meta.get("in_stock", True))
    """

    def __init__(
        self,
        dim: int,
        *,
        space: str = "cosine",
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef: int = DEFAULT_EF,
        initial_capacity: int = DEFAULT_INITIAL_CAPACITY,
        model_version: str | None = None,
        exact_below: int = DEFAULT_EXACT_BELOW,
        deterministic: bool = False,
        num_threads: int = -1,
        random_seed: int = DEFAULT_RANDOM_SEED,
        max_filtered_fetch_fraction: float = DEFAULT_MAX_FILTERED_FETCH_FRACTION,
    ) -> None:
        """Settings are those of :class:`~index.config.IndexConfig` (see there for each)."""
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        self.config = IndexConfig(
            space=space,
            m=m,
            ef_construction=ef_construction,
            ef=ef,
            initial_capacity=initial_capacity,
            exact_below=exact_below,
            deterministic=deterministic,
            num_threads=num_threads,
            random_seed=random_seed,
            max_filtered_fetch_fraction=max_filtered_fetch_fraction,
        )
        self.dim = dim
        self.model_version = model_version
        self.source_offsets: dict[str, int] = {}
        self.last_query_report: QueryReport | None = None
        self._lock = threading.RLock()
        # Writers take this, then ``_lock``; a snapshot takes only this (it reads, as queries do).
        self._writing = threading.Lock()
        capacity = self.config.initial_capacity
        self._graph = hnswlib.Index(space=self.config.space, dim=dim)
        self._graph.init_index(
            max_elements=capacity,
            M=self.config.m,
            ef_construction=self.config.ef_construction,
            random_seed=self.config.random_seed,
            allow_replace_deleted=False,
        )
        self._graph.set_ef(self.config.ef)
        self._vectors = np.zeros((capacity, dim), dtype=np.float32)
        self._row_ids = np.full(capacity, None, dtype=object)
        self._live = np.zeros(capacity, dtype=bool)
        self._row_of: dict[str, int] = {}
        self._metadata: dict[str, Mapping[str, Any]] = {}
        self._free_rows: list[int] = []
        self._rows_used = 0

    # ----------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row_of

    def ids(self) -> list[str]:
        """The live item ids, in row order."""
        with self._lock:
            return [str(item) for item in self._row_ids[: self._rows_used][self._live[: self._rows_used]]]

    @property
    def capacity(self) -> int:
        """Rows allocated (in hnswlib and here); grows by itself."""
        return int(self._vectors.shape[0])

    @property
    def ef(self) -> int:
        """Current search depth (at least k is always used)."""
        return int(self._graph.ef)

    def set_ef(self, ef: int) -> None:
        """Change the search depth for later queries (not saved in the graph; kept in the manifest)."""
        if not isinstance(ef, int) or ef < 1:
            raise InvalidInputError(f"ef must be a positive integer, got {ef!r}")
        with self._lock:
            self._graph.set_ef(ef)

    def vector(self, item_id: str) -> np.ndarray:
        """A copy of the item's stored (unit-length) vector."""
        with self._lock:
            return self._vectors[self._row(item_id)].copy()

    def metadata(self, item_id: str) -> Mapping[str, Any]:
        """The item's metadata (an empty mapping when none was given)."""
        with self._lock:
            self._row(item_id)
            return self._metadata.get(item_id, EMPTY_METADATA)

    def lookup(self, item_ids: Sequence[str]) -> tuple[np.ndarray, list[Mapping[str, Any] | None]]:
        """Vectors and metadata of many ids under one lock: a ``(len(ids), dim)`` float32 array
        with NaN rows for ids not in the index, and their metadata (None when not in it)."""
        with self._lock:
            row_of, stored = self._row_of, self._metadata
            rows = np.fromiter((row_of.get(item_id, -1) for item_id in item_ids), dtype=np.int64, count=len(item_ids))
            found = rows >= 0
            if found.all():  # the usual case: one copy, no NaN fill
                vectors = self._vectors[rows]
            else:
                vectors = np.full((len(item_ids), self.dim), np.nan, dtype=np.float32)
                vectors[found] = self._vectors[rows[found]]
            metadata: list[Mapping[str, Any] | None] = [
                stored.get(item_id, EMPTY_METADATA) if known else None
                for item_id, known in zip(item_ids, found.tolist(), strict=True)
            ]
        return vectors, metadata

    def metadata_many(self, item_ids: Sequence[str]) -> list[Mapping[str, Any] | None]:
        """Metadata of many ids under one lock (None for ids not in the index): ``lookup``
        without the vectors, for callers that only filter (the ranking's catalog)."""
        row_of, metadata = self._row_of, self._metadata
        with self._lock:
            return [
                None if item_id not in row_of else metadata.get(item_id, EMPTY_METADATA) for item_id in item_ids
            ]

    def _row(self, item_id: str) -> int:
        row = self._row_of.get(item_id)
        if row is None:
            raise UnknownItemError(f"item {item_id!r} is not in the index")
        return row

    # ----------------------------------------------------------------- writes
    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add items, or replace the vector (and metadata) of ids already present.

        Vectors are L2-normalised. Within one call a repeated id keeps its last occurrence.
        ``metadata=None`` keeps an existing item's metadata; a ``None`` entry clears it.
        """
        ids = list(ids)
        for position, item_id in enumerate(ids):
            if not isinstance(item_id, str):
                raise InvalidInputError(f"ids[{position}] must be a str, got {type(item_id).__name__}")
        unit = as_unit_rows(vectors, self.dim)
        if unit.shape[0] != len(ids):
            raise InvalidInputError(f"{len(ids)} ids for {unit.shape[0]} vectors")
        if metadata is not None and len(metadata) != len(ids):
            raise InvalidInputError(f"{len(metadata)} metadata entries for {len(ids)} ids")
        if not ids:
            return
        last_position = {item_id: position for position, item_id in enumerate(ids)}
        positions = np.fromiter(last_position.values(), dtype=np.int64, count=len(last_position))
        unique_ids = list(last_position)
        if len(unique_ids) != len(ids):
            unit = unit[positions]
        with self._writing, self._lock:
            rows = np.fromiter(
                (self._row_for_upsert(item_id) for item_id in unique_ids),
                dtype=np.int64,
                count=len(unique_ids),
            )
            self._graph.add_items(unit, rows, num_threads=self._add_threads(len(rows)))
            self._vectors[rows] = unit
            self._row_ids[rows] = unique_ids
            self._live[rows] = True
            for item_id, row in zip(unique_ids, rows.tolist(), strict=True):
                self._row_of[item_id] = row
            if metadata is not None:
                for item_id, position in zip(unique_ids, positions.tolist(), strict=True):
                    entry = metadata[position]
                    if entry is None:
                        self._metadata.pop(item_id, None)
                    else:
                        self._metadata[item_id] = dict(entry)

    def upsert_one(self, item_id: str, vector: np.ndarray, metadata: Mapping[str, Any] | None = None) -> None:
        """``upsert`` for one item."""
        self.upsert([item_id], np.asarray(vector).reshape(1, -1), None if metadata is None else [metadata])

    def _row_for_upsert(self, item_id: str) -> int:
        row = self._row_of.get(item_id)
        if row is not None:
            return row
        if self._free_rows:
            return heapq.heappop(self._free_rows)
        row = self._rows_used
        self._rows_used += 1
        if self._rows_used > self.capacity:
            self._grow(self._rows_used)
        return row

    def _grow(self, needed: int) -> None:
        capacity = max(needed, math.ceil(self.capacity * GROWTH_FACTOR))
        self._graph.resize_index(capacity)
        old = self.capacity
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[:old] = self._vectors
        row_ids = np.full(capacity, None, dtype=object)
        row_ids[:old] = self._row_ids
        live = np.zeros(capacity, dtype=bool)
        live[:old] = self._live
        self._vectors, self._row_ids, self._live = vectors, row_ids, live

    def _add_threads(self, rows: int) -> int:
        # Several threads build in a nondeterministic order; a deterministic index adds in one.
        return 1 if self.config.deterministic or rows < 64 else self.config.num_threads

    def delete(self, ids: Iterable[str]) -> int:
        """Remove items (unknown ids are ignored, so tombstones are idempotent); returns how many went."""
        removed = 0
        with self._writing, self._lock:
            for item_id in ids:
                row = self._row_of.pop(item_id, None)
                if row is None:
                    continue
                self._graph.mark_deleted(row)
                self._live[row] = False
                self._row_ids[row] = None
                self._metadata.pop(item_id, None)
                heapq.heappush(self._free_rows, row)
                removed += 1
        return removed

    # ----------------------------------------------------------------- queries
    def query(
        self,
        vectors: np.ndarray,
        k: int,
        *,
        exclude: Collection[str] | Sequence[Collection[str]] | None = None,
        predicate: Predicate | None = None,
    ) -> QueryResult:
        """The ``k`` most cosine-similar live items for each query row, best first.

        ``exclude``: ids never to return, either one collection for every row or a list with
        one collection per query row. ``predicate(item_id, metadata)``: False drops an item.
        Rows have fewer than ``k`` entries only when fewer items are allowed. The result's
        ``report`` (also ``last_query_report``) says whether HNSW or exact search answered.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        # Not normalised here: hnswlib normalises for cosine itself; exact search does it below.
        queries = as_checked_rows(vectors, self.dim, what="queries")
        exclusions = None if exclude is None else self._exclusions(exclude, queries.shape[0])
        with self._lock:
            result = self._query_locked(queries, k, exclusions, predicate)
            self.last_query_report = result.report
        return result

    def query_one(
        self,
        vector: np.ndarray,
        k: int,
        *,
        exclude: Collection[str] | None = None,
        predicate: Predicate | None = None,
    ) -> list[Neighbour]:
        """``query`` for one vector: its row of ``(item_id, similarity)``."""
        return self.query(np.asarray(vector).reshape(1, -1), k, exclude=exclude, predicate=predicate)[0]

    def query_arrays(self, vectors: np.ndarray, k: int) -> NeighbourArrays:
        """``query`` without filters, answered as arrays: ``ids`` (object) and ``scores``
        (float32), both ``(queries, min(k, live items))``, best first.

        The same search as ``query`` (HNSW, or exact search where ``query`` would use it);
        it skips building a tuple per neighbour, which is most of the wrapper's own cost.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        queries = as_checked_rows(vectors, self.dim, what="queries")
        with self._lock:
            rows, scores, report = self._nearest(queries, k)
            self.last_query_report = report
            return NeighbourArrays(self._row_ids[rows], scores, report)

    @staticmethod
    def _exclusions(
        exclude: Collection[str] | Sequence[Collection[str]] | None, rows: int
    ) -> list[Collection[str]] | None:
        """One collection of excluded ids per query row, or None when nothing is excluded."""
        if exclude is None:
            return None
        if isinstance(exclude, str):
            raise InvalidInputError("exclude must be a collection of ids, not a single str")
        items = list(exclude)
        per_row = bool(items) and all(isinstance(entry, Collection) and not isinstance(entry, str) for entry in items)
        if per_row:
            if len(items) != rows:
                raise InvalidInputError(f"exclude has {len(items)} collections for {rows} query rows")
            return items  # type: ignore[return-value]
        if not items:
            return None
        shared: Collection[str] = frozenset(items)  # type: ignore[arg-type]
        return [shared] * rows

    def _query_locked(
        self,
        queries: np.ndarray,
        k: int,
        exclusions: list[Collection[str]] | None,
        predicate: Predicate | None,
    ) -> QueryResult:
        if exclusions is None and predicate is None:
            rows, scores, report = self._nearest(queries, k)
            return QueryResult(self._rows_as_neighbours(rows, scores), report)
        count = queries.shape[0]
        live = len(self._row_of)
        if count == 0 or live == 0:
            return self._result([[] for _ in range(count)], QueryPath.EXACT, 0, count, 0, "empty")
        if self.config.deterministic:
            return self._exact(queries, k, exclusions, predicate, "deterministic")
        if live < self.config.exact_below:
            return self._exact(queries, k, exclusions, predicate, "small index")
        return self._hnsw_filtered(queries, k, exclusions, predicate, live)

    def _nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, QueryReport]:
        """Unfiltered search, under the lock: rows and scores ``(queries, min(k, live))``."""
        count, live = queries.shape[0], len(self._row_of)
        fetch = min(k, live)
        if count == 0 or live == 0:
            empty = QueryReport(QueryPath.EXACT, 0, count, 0, "empty")
            return np.empty((count, 0), dtype=np.int64), np.empty((count, 0), dtype=np.float32), empty
        reason = ""
        if self.config.deterministic:
            reason = "deterministic"
        elif live < self.config.exact_below:
            reason = "small index"
        if not reason:
            try:
                rows, scores = self._knn(queries, fetch)
                return rows, scores, QueryReport(QueryPath.HNSW, count, 0, fetch)
            except RuntimeError:
                reason = "hnswlib found fewer than k"
        used = self._rows_used
        unit = as_unit_rows(queries, self.dim, what="queries")
        rows, scores = exact_top_k(self._vectors[:used], unit, k, allowed=self._live[:used])
        return rows, scores, QueryReport(QueryPath.EXACT, 0, count, 0, reason)

    def _result(
        self,
        rows: list[list[Neighbour]],
        path: QueryPath,
        hnsw_rows: int,
        exact_rows: int,
        deepest_fetch: int,
        reason: str = "",
    ) -> QueryResult:
        return QueryResult(rows, QueryReport(path, hnsw_rows, exact_rows, deepest_fetch, reason))

    def _knn(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        labels, distances = self._graph.knn_query(queries, k=fetch, num_threads=self.config.num_threads)
        return labels.view(np.int64), 1.0 - distances  # labels are rows, far below 2**63

    def _rows_as_neighbours(self, rows: np.ndarray, scores: np.ndarray) -> list[list[Neighbour]]:
        return neighbour_rows(self._row_ids[rows], scores)

    def _allowed_rows(self, rows: np.ndarray, predicate: Predicate | None, verdicts: dict[int, bool]) -> np.ndarray:
        """Whether each of ``rows`` passes ``predicate`` (each row's verdict is asked once per call)."""
        if predicate is None:
            return np.ones(rows.shape, dtype=bool)
        unique, inverse = np.unique(rows, return_inverse=True)
        for row in unique.tolist():
            if row not in verdicts:
                item_id = self._row_ids[row]
                verdicts[row] = bool(predicate(item_id, self._metadata.get(item_id, EMPTY_METADATA)))
        return np.fromiter((verdicts[row] for row in unique.tolist()), dtype=bool, count=unique.size)[
            inverse.reshape(rows.shape)
        ]

    def _excluded_rows(self, excluded: Collection[str]) -> np.ndarray:
        found = [self._row_of[item_id] for item_id in excluded if item_id in self._row_of]
        return np.asarray(found, dtype=np.int64)

    def _hnsw_filtered(
        self,
        queries: np.ndarray,
        k: int,
        exclusions: list[Collection[str]] | None,
        predicate: Predicate | None,
        live: int,
    ) -> QueryResult:
        count = queries.shape[0]
        excluded_rows = [self._excluded_rows(entry) for entry in exclusions] if exclusions else None
        most_excluded = max((rows.size for rows in excluded_rows), default=0) if excluded_rows else 0
        first = k + most_excluded
        if predicate is not None:
            first = max(first, k * FILTER_FIRST_OVERSAMPLE)
        fetch = min(live, first)
        deepest_allowed = max(k, int(live * self.config.max_filtered_fetch_fraction))
        verdicts: dict[int, bool] = {}
        answers: list[list[Neighbour] | None] = [None] * count
        pending = np.arange(count)
        deepest = 0
        while pending.size and fetch <= deepest_allowed:
            try:
                rows, scores = self._knn(queries[pending], fetch)
            except RuntimeError:
                break
            deepest = fetch
            allowed = self._allowed_rows(rows, predicate, verdicts)
            if excluded_rows is not None:
                for position, query_row in enumerate(pending.tolist()):
                    if excluded_rows[query_row].size:
                        allowed[position] &= ~np.isin(rows[position], excluded_rows[query_row])
            found = allowed.sum(axis=1)
            complete = (found >= k) | (fetch >= live)
            for position in np.flatnonzero(complete).tolist():
                keep = np.flatnonzero(allowed[position])[:k]
                answers[int(pending[position])] = self._rows_as_neighbours(
                    rows[position, keep][np.newaxis], scores[position, keep][np.newaxis]
                )[0]
            if complete.all():
                pending = pending[:0]
                break
            # The allowed fraction seen so far, over all rows of this round, sizes the next depth.
            allowed_fraction = max(float(found.sum()) / found.size / fetch, 1.0 / fetch)
            estimate = math.ceil(k / allowed_fraction * FILTER_DEPTH_MARGIN)
            pending = pending[~complete]
            fetch = min(live, max(2 * fetch, estimate))
        exact_rows = int(pending.size)
        if exact_rows:
            sub_exclusions = [exclusions[row] for row in pending.tolist()] if exclusions else None
            fallback = self._exact(queries[pending], k, sub_exclusions, predicate, "", verdicts=verdicts)
            for query_row, answer in zip(pending.tolist(), fallback, strict=True):
                answers[query_row] = answer
        hnsw_rows = count - exact_rows
        path = QueryPath.HNSW if exact_rows == 0 else QueryPath.EXACT if hnsw_rows == 0 else QueryPath.MIXED
        reason = "filter too selective" if exact_rows else ""
        return self._result([answer or [] for answer in answers], path, hnsw_rows, exact_rows, deepest, reason)

    def _exact(
        self,
        queries: np.ndarray,
        k: int,
        exclusions: list[Collection[str]] | None,
        predicate: Predicate | None,
        reason: str,
        *,
        verdicts: dict[int, bool] | None = None,
    ) -> QueryResult:
        queries = as_unit_rows(queries, self.dim, what="queries")
        used = self._rows_used
        allowed = self._live[:used].copy()
        if predicate is not None:
            live_rows = np.flatnonzero(allowed)
            allowed[live_rows] = self._allowed_rows(live_rows, predicate, {} if verdicts is None else verdicts)
        matrix = self._vectors[:used]
        if exclusions is None:
            rows, scores = exact_top_k(matrix, queries, k, allowed=allowed)
            answers = self._rows_as_neighbours(rows, scores)
        else:
            # Ask for k plus as many as each row excludes, then drop the excluded ones: exact still.
            excluded = [self._excluded_rows(entry) for entry in exclusions]
            depth = k + max((rows.size for rows in excluded), default=0)
            rows, scores = exact_top_k(matrix, queries, depth, allowed=allowed)
            answers = []
            for position, row_excluded in enumerate(excluded):
                keep = np.flatnonzero(~np.isin(rows[position], row_excluded))[:k]
                answers.append(
                    self._rows_as_neighbours(rows[position, keep][np.newaxis], scores[position, keep][np.newaxis])[0]
                )
        return self._result(answers, QueryPath.EXACT, 0, len(queries), 0, reason)

    # ----------------------------------------------------------------- snapshots
    def save(self, directory: str | Path, *, source_offsets: Mapping[str, int] | None = None) -> Path:
        """Write an atomic snapshot into ``directory``; returns the new generation's folder.

        ``source_offsets`` (e.g. ``{"item-embeddings[0]": 1234}``) records up to where the
        source topic is reflected, so a restart resumes reading from there. Keeps writers
        out while it runs, not queries: they wait only while the graph is copied (about 50 ms
        per 50,000 items of 384 dimensions, holding the GIL).
        """
        offsets = check_offsets(source_offsets)
        with self._writing:
            used = self._rows_used
            manifest = SnapshotManifest(
                dim=self.dim,
                space=self.config.space,
                m=self.config.m,
                ef_construction=self.config.ef_construction,
                ef=self.ef,
                count=len(self),
                rows=used,
                capacity=self.capacity,
                model_version=self.model_version,
                source_offsets=offsets,
                created_at_ms=int(time.time() * 1000),
            )
            row_ids = self._row_ids[:used].tolist()
            items = {
                "ids": row_ids,
                "metadata": [None if item is None else self._metadata.get(item) for item in row_ids],
            }
            try:
                items_json = orjson.dumps(items)
            except TypeError as exc:
                raise SnapshotError(f"item metadata must be JSON-serialisable to be saved: {exc}") from exc

            def write_payload(folder: Path) -> None:
                _write_graph_state(folder / GRAPH_STATE_FILE, self._graph)
                np.save(folder / VECTORS_FILE, self._vectors[:used])
                (folder / ITEMS_FILE).write_bytes(items_json)

            generation = publish_snapshot(Path(directory), manifest, write_payload)
            self.source_offsets = offsets
            return generation

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        expected_dim: int | None = None,
        expected_model_version: str | None = None,
        **settings: Any,
    ) -> ItemIndex:
        """The index saved in ``directory``, refused (``SnapshotMismatchError``) if its dimension
        or model version is not the expected one.

        ``settings`` override search-time settings (``ef``, ``exact_below``, ``deterministic``,
        ``num_threads``, ``max_filtered_fetch_fraction``); the graph's own come from the manifest.
        """
        manifest, folder = open_snapshot(
            Path(directory), expected_dim=expected_dim, expected_model_version=expected_model_version
        )
        fixed = {"space", "m", "ef_construction", "initial_capacity", "random_seed"} & set(settings)
        if fixed:
            raise InvalidInputError(f"{sorted(fixed)} are fixed by the snapshot and cannot be overridden")
        settings.setdefault("ef", manifest.ef)
        index = cls(
            manifest.dim,
            model_version=manifest.model_version,
            space=manifest.space,
            m=manifest.m,
            ef_construction=manifest.ef_construction,
            initial_capacity=max(1, manifest.capacity),
            **settings,
        )
        index._restore(folder, manifest)
        return index

    def _restore(self, folder: Path, manifest: SnapshotManifest) -> None:
        verify_files(manifest, folder)
        try:
            vectors = np.load(folder / VECTORS_FILE)
            items = orjson.loads((folder / ITEMS_FILE).read_bytes())
            row_ids, metadata = items["ids"], items["metadata"]
            if (folder / GRAPH_STATE_FILE).exists():
                graph = _read_graph_state(folder / GRAPH_STATE_FILE, manifest)
            else:
                graph = hnswlib.Index(space=manifest.space, dim=manifest.dim)
                graph.load_index(str(folder / GRAPH_FILE), max_elements=max(1, manifest.capacity))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, orjson.JSONDecodeError) as exc:
            raise SnapshotCorruptError(f"{folder}: cannot read the snapshot ({exc})") from exc
        live_ids = [item for item in row_ids if item is not None]
        problems = []
        if vectors.shape != (manifest.rows, manifest.dim):
            problems.append(f"vectors have shape {vectors.shape}, manifest says ({manifest.rows}, {manifest.dim})")
        if len(row_ids) != manifest.rows or len(metadata) != manifest.rows:
            problems.append(f"{len(row_ids)} ids and {len(metadata)} metadata rows, manifest says {manifest.rows}")
        if graph.get_current_count() != manifest.rows or graph.dim != manifest.dim or graph.space != manifest.space:
            problems.append(
                f"graph holds {graph.get_current_count()} rows of dimension {graph.dim} in space {graph.space!r}"
            )
        if len(live_ids) != manifest.count or len(set(live_ids)) != len(live_ids):
            problems.append(f"{len(live_ids)} live ids (some repeated?), manifest says {manifest.count}")
        if problems:
            raise SnapshotCorruptError(f"{folder}: " + "; ".join(problems))
        graph.set_ef(self.config.ef)  # hnswlib does not save ef: a loaded graph would search with 10
        self._graph = graph
        self._rows_used = manifest.rows
        self._vectors[: manifest.rows] = vectors
        for row, (item_id, entry) in enumerate(zip(row_ids, metadata, strict=True)):
            if item_id is None:
                self._free_rows.append(row)
                continue
            self._row_ids[row] = item_id
            self._live[row] = True
            self._row_of[item_id] = row
            if entry is not None:
                self._metadata[item_id] = entry
        heapq.heapify(self._free_rows)
        self.source_offsets = dict(manifest.source_offsets)


def _write_graph_state(path: Path, graph: hnswlib.Index) -> None:
    """The graph as hnswlib pickles it: a JSON header (its settings, and each array's dtype
    and shape), then the arrays' bytes in the header's order. Copying the state out of
    hnswlib holds the GIL (it is a memory copy); ``tofile`` releases it while writing."""
    (state,) = graph.__getstate__()
    arrays = {name: np.ascontiguousarray(value) for name, value in state.items() if isinstance(value, np.ndarray)}
    layout = [{"name": name, "dtype": array.dtype.str, "shape": list(array.shape)} for name, array in arrays.items()]
    settings = {name: value for name, value in state.items() if name not in arrays}
    header = orjson.dumps({"settings": settings, "arrays": layout})
    with open(path, "wb") as file:
        file.write(GRAPH_STATE_MAGIC + len(header).to_bytes(8, "little") + header)
        for array in arrays.values():
            array.tofile(file)


def _read_graph_state(path: Path, manifest: SnapshotManifest) -> hnswlib.Index:
    """The graph ``_write_graph_state`` wrote, checked against the manifest before hnswlib sees
    it (``ValueError`` when it does not fit): hnswlib trusts the arrays' sizes, and a damaged
    file could make it read or write past them."""
    left = path.stat().st_size
    with open(path, "rb") as file:
        if file.read(len(GRAPH_STATE_MAGIC)) != GRAPH_STATE_MAGIC:
            raise ValueError(f"{path.name} is not an hnswlib state file")
        length = int.from_bytes(file.read(8), "little")
        left -= len(GRAPH_STATE_MAGIC) + 8 + length
        if length > GRAPH_STATE_HEADER_MAX or left < 0:
            raise ValueError(f"{path.name} has a header of {length} bytes")
        header = orjson.loads(file.read(length))
        state = dict(header["settings"])
        if sorted(entry["name"] for entry in header["arrays"]) != sorted(GRAPH_STATE_ARRAYS):
            raise ValueError(f"{path.name} holds the arrays {[entry['name'] for entry in header['arrays']]}")
        for entry in header["arrays"]:
            name, dtype, shape = entry["name"], np.dtype(entry["dtype"]), entry["shape"]
            if dtype != GRAPH_STATE_ARRAYS[name] or len(shape) != 1 or not 0 <= shape[0] <= left // dtype.itemsize:
                raise ValueError(f"{path.name} ends inside its {name!r} array, or it has another type")
            state[name] = np.fromfile(file, dtype=dtype, count=shape[0])
            left -= state[name].nbytes
        if left or file.read(1):
            raise ValueError(f"{path.name} has bytes after its last array")
    _check_graph_state(state, manifest)
    # The saving machine's thread count would be restored with the graph; use this machine's.
    state["num_threads"] = hnswlib.Index(space=manifest.space, dim=manifest.dim).num_threads
    graph: hnswlib.Index = hnswlib.Index.__new__(hnswlib.Index)
    graph.__setstate__((state,))
    return graph


def _check_graph_state(state: dict[str, Any], manifest: SnapshotManifest) -> None:
    """The sizes hnswlib 0.8 derives from its settings must be those of the arrays, and the
    settings the manifest's (``ValueError`` otherwise)."""
    count, levels = state["cur_element_count"], state["element_levels"]
    expected = {
        "dim": manifest.dim,
        "space": manifest.space,
        "M": manifest.m,
        "max_M": manifest.m,
        "max_M0": 2 * manifest.m,
        "max_elements": manifest.capacity,
        "cur_element_count": manifest.rows,
        "size_links_per_element": manifest.m * 4 + 4,
        "size_data_per_element": (2 * manifest.m * 4 + 4) + manifest.dim * 4 + 8,
        "allow_replace_deleted": False,
    }
    wrong = [name for name, value in expected.items() if state.get(name) != value]
    if levels.size != state["max_elements"] or (count and not 0 <= int(levels[:count].min())):
        wrong.append("element_levels")
    elif state["link_lists"].size != int(levels[:count].sum()) * state["size_links_per_element"]:
        wrong.append("link_lists")
    if state["data_level0"].size != count * state["size_data_per_element"]:
        wrong.append("data_level0")
    for name in ("label_lookup_external", "label_lookup_internal"):
        if state[name].size > count:
            wrong.append(name)
    if state["label_lookup_internal"].size and int(state["label_lookup_internal"].max()) >= count:
        wrong.append("label_lookup_internal")
    if count and not 0 <= state["enterpoint_node"] < count:
        wrong.append("enterpoint_node")
    elif count and "element_levels" not in wrong and state["max_level"] != int(levels[state["enterpoint_node"]]):
        wrong.append("max_level")  # a search starts at the entry point's top level
    if wrong:
        raise ValueError(f"hnsw.state does not fit its manifest: {', '.join(wrong)}")
