"""Clustered synthetic embeddings, generated deterministically from a seed.

Why not i.i.d. random vectors: in 384 dimensions they are all nearly equidistant, so "nearest
neighbours" carry no structure and an ANN index's recall on them says nothing about real
item embeddings. Real embeddings sit near a low-dimensional, clustered manifold; this
generator mimics that: each cluster has a centre and its own small random subspace, and a
point is its centre, plus a spread within the subspace, plus a little isotropic noise. The
tests and the benchmark use it so their figures are reproducible without any data files.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_CLUSTER_SIZE",
    "DEFAULT_INTRINSIC_DIMENSION",
    "DEFAULT_NOISE",
    "clustered_vectors",
]

DEFAULT_CLUSTER_SIZE = 100
DEFAULT_INTRINSIC_DIMENSION = 12
DEFAULT_SPREAD = 0.6
DEFAULT_NOISE = 0.15


def clustered_vectors(
    n: int,
    dim: int,
    *,
    seed: int = 0,
    cluster_size: int = DEFAULT_CLUSTER_SIZE,
    intrinsic_dimension: int = DEFAULT_INTRINSIC_DIMENSION,
    spread: float = DEFAULT_SPREAD,
    noise: float = DEFAULT_NOISE,
) -> np.ndarray:
    """``n`` L2-normalised float32 vectors of ``dim`` dimensions in clusters of about ``cluster_size``.

    The same arguments always give the same array (numpy's PCG64 generator, seeded).
    """
    if n < 1 or dim < 1:
        raise ValueError(f"n and dim must be positive, got n={n}, dim={dim}")
    rng = np.random.default_rng(seed)
    clusters = max(1, n // cluster_size)
    intrinsic = min(intrinsic_dimension, dim)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Each cluster spans its own random subspace (scaled so a unit of spread is a unit of length).
    bases = rng.standard_normal((clusters, intrinsic, dim)).astype(np.float32) / np.sqrt(dim)
    assignment = rng.integers(0, clusters, size=n)
    coordinates = rng.standard_normal((n, intrinsic)).astype(np.float32) * (spread / np.sqrt(intrinsic))
    vectors = centres[assignment]
    # One small matrix product per cluster (gathering a basis per point would need n x k x d memory).
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(clusters + 1))
    for cluster in range(clusters):
        members = order[bounds[cluster] : bounds[cluster + 1]]
        vectors[members] += coordinates[members] @ bases[cluster]
    vectors += rng.standard_normal((n, dim)).astype(np.float32) * (noise / np.sqrt(dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32, copy=False)
