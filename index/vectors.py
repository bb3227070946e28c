"""Checking and normalising the vectors handed to the index.

Cosine similarity is a dot product of unit vectors, so everything the index stores or is
asked about is L2-normalised once, here, at the boundary. A zero, NaN or infinite vector has
no direction: it is refused with the row that was wrong rather than silently matching nothing.
"""

from __future__ import annotations

import math

import numpy as np

from index.errors import InvalidInputError

__all__ = ["as_checked_rows", "as_unit_rows"]


def as_checked_rows(vectors: object, dim: int, *, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(n, dim)`` array (1-d means one row), each row
    with a direction (finite and non-zero), not yet normalised."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidInputError(f"{what} must have shape (n, {dim}), got {array.shape}")
    if array.shape[0] == 1:
        # The per-call overhead of numpy reductions dominates a one-row query: one dot product.
        flat = array[0]
        if math.isfinite(squared_norm := float(flat @ flat)) and squared_norm > 0.0:
            return array
    squared = np.einsum("ij,ij->i", array, array)
    if not (np.isfinite(squared).all() and squared.all()):
        row = int(np.flatnonzero(~np.isfinite(squared) | (squared == 0.0))[0])
        raise InvalidInputError(f"{what} row {row} is zero, NaN or infinite: it has no direction")
    return array


def as_unit_rows(vectors: object, dim: int, *, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(n, dim)`` array of unit rows (1-d means one row)."""
    array = as_checked_rows(vectors, dim, what=what)
    return array / np.sqrt(np.einsum("ij,ij->i", array, array))[:, np.newaxis]
