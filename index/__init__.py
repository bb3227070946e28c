"""``index``: the item index every worker queries, an HNSW graph with exact-search fallbacks.

Public API (everything else is private to the package)::

    ItemIndex(dim, *, space="cosine", m=16, ef_construction=100, ef=64, initial_capacity=1024,
              model_version=None, exact_below=2048, deterministic=False, num_threads=-1, ...)
        .upsert(ids, vectors, metadata=None)   .upsert_one(id, vector, metadata=None)
        .delete(ids) -> int
        .query(vectors, k, *, exclude=None, predicate=None) -> QueryResult (rows of (id, score))
        .query_one(vector, k, ...) -> list[(id, score)]
        .query_arrays(vectors, k) -> NeighbourArrays (.ids, .scores arrays; no filters)
        .save(dir, *, source_offsets=None)     ItemIndex.load(dir, *, expected_dim, expected_model_version)
        len(), in, .ids(), .vector(id), .metadata(id), .last_query_report, .source_offsets
    ExactIndex(vectors, ids).query(queries, k); exact_search(vectors, ids, queries, k)
    clustered_vectors(n, dim, *, seed) for reproducible test and benchmark data

Imports nothing from ``stream`` or ``encoders``.
"""

from __future__ import annotations

from index.config import (
    DEFAULT_EF,
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EXACT_BELOW,
    DEFAULT_INITIAL_CAPACITY,
    DEFAULT_M,
    IndexConfig,
)
from index.errors import (
    InvalidInputError,
    ItemIndexError,
    SnapshotCorruptError,
    SnapshotError,
    SnapshotMismatchError,
    SnapshotNotFoundError,
    UnknownItemError,
)
from index.exact import ExactIndex, exact_search, exact_top_k
from index.hnsw import ItemIndex, Predicate
from index.results import Neighbour, NeighbourArrays, QueryPath, QueryReport, QueryResult
from index.snapshot import SnapshotManifest, read_manifest
from index.synthetic import clustered_vectors

__all__ = [
    "DEFAULT_EF",
    "DEFAULT_EF_CONSTRUCTION",
    "DEFAULT_EXACT_BELOW",
    "DEFAULT_INITIAL_CAPACITY",
    "DEFAULT_M",
    "ExactIndex",
    "IndexConfig",
    "InvalidInputError",
    "ItemIndex",
    "ItemIndexError",
    "Neighbour",
    "NeighbourArrays",
    "Predicate",
    "QueryPath",
    "QueryReport",
    "QueryResult",
    "SnapshotCorruptError",
    "SnapshotError",
    "SnapshotManifest",
    "SnapshotMismatchError",
    "SnapshotNotFoundError",
    "UnknownItemError",
    "clustered_vectors",
    "exact_search",
    "exact_top_k",
    "read_manifest",
]
