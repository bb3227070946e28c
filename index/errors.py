"""The exceptions of the ``index`` library, in one tree::

    ItemIndexError                 anything the item index refuses or cannot do
    ├── InvalidInputError          bad vectors (shape, dimension, NaN, zero norm), ids or k
    ├── UnknownItemError           an id that is not in the index (also a ``KeyError``)
    └── SnapshotError              a snapshot cannot be written or read
        ├── SnapshotNotFoundError  no complete snapshot in the directory
        ├── SnapshotCorruptError   files missing, unreadable or inconsistent with the manifest
        └── SnapshotMismatchError  a complete snapshot of another dimension or model version

The CLI turns these into one-line usage errors; the stream catches ``SnapshotMismatchError``
to rebuild its replica from the ``item-embeddings`` topic instead of loading a stale snapshot.
"""

from __future__ import annotations

__all__ = [
    "InvalidInputError",
    "ItemIndexError",
    "SnapshotCorruptError",
    "SnapshotError",
    "SnapshotMismatchError",
    "SnapshotNotFoundError",
    "UnknownItemError",
]


class ItemIndexError(Exception):
    """Base of every error the item index raises."""


class InvalidInputError(ItemIndexError, ValueError):
    """Vectors, ids, metadata or ``k`` that the index cannot accept."""


class UnknownItemError(ItemIndexError, KeyError):
    """An item id that is not (or no longer) in the index."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else "unknown item"


class SnapshotError(ItemIndexError):
    """A snapshot cannot be written or read."""


class SnapshotNotFoundError(SnapshotError):
    """The directory holds no complete snapshot."""


class SnapshotCorruptError(SnapshotError):
    """The snapshot's files are missing, unreadable or disagree with its manifest."""


class SnapshotMismatchError(SnapshotError):
    """The snapshot is complete but was built for another dimension or model version."""
