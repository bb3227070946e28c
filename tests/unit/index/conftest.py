"""Fixtures of the index tests: real product-name embeddings (embedded once per session), and
an independent brute-force reference for nearest neighbours.

The reference is written here, deliberately not ``index.exact``: recall is measured against
a full sort of every similarity, the most obvious correct answer there is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

PRODUCT_ITEMS = 3000
PRODUCT_QUERIES = 200


@dataclass(frozen=True)
class ProductEmbeddings:
    """Real Instacart product names embedded by the default encoder."""

    ids: list[str]
    vectors: np.ndarray  # (PRODUCT_ITEMS, 384), unit rows
    queries: np.ndarray  # (PRODUCT_QUERIES, 384): other products' names, never indexed
    departments: list[str]
    model_version: str


def product_names(shared_data: Path, count: int) -> list[tuple[str, str, str]]:
    """``(product_id, name, department_id)`` of the first ``count`` products, stray backslashes removed."""
    rows = []
    with (shared_data / "instacart" / "products.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append((row["product_id"], row["product_name"].replace("\\", "").strip(), row["department_id"]))
            if len(rows) == count:
                break
    return rows


@pytest.fixture(scope="session")
def product_embeddings(shared_data: Path, encoder) -> ProductEmbeddings:
    products = product_names(shared_data, PRODUCT_ITEMS + PRODUCT_QUERIES)
    vectors = encoder.encode([name for _, name, _ in products], batch_size=128, normalize=True)
    return ProductEmbeddings(
        ids=[product_id for product_id, _, _ in products[:PRODUCT_ITEMS]],
        vectors=np.ascontiguousarray(vectors[:PRODUCT_ITEMS]),
        queries=np.ascontiguousarray(vectors[PRODUCT_ITEMS:]),
        departments=[department for _, _, department in products[:PRODUCT_ITEMS]],
        model_version=encoder.model_version,
    )


def brute_force_neighbours(vectors: np.ndarray, ids: list[str], queries: np.ndarray, k: int) -> list[list[str]]:
    """The ``k`` ids of highest cosine similarity per query, by sorting every similarity."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    answers = []
    for start in range(0, len(queries), 256):
        similarity = unit_queries[start : start + 256] @ unit.T
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        answers.extend([[ids[column] for column in row] for row in order.tolist()])
    return answers


def recall_at_k(found: list[list[tuple[str, float]]], truth: list[list[str]], k: int) -> float:
    """Mean fraction of the true top k that was found."""
    hits = [len({item for item, _ in row[:k]} & set(expected[:k])) for row, expected in zip(found, truth, strict=True)]
    return sum(hits) / (k * len(truth))
