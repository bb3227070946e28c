"""A failed interactions batch forgets the partition records it may have changed but not written."""

from __future__ import annotations

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents import interactions
from stream.agents.interactions import PartitionState


def test_a_failed_batch_forgets_partition_records() -> None:
    interactions._partitions[0] = PartitionState(seq=7, pending={"u": 1})
    try:
        interactions._forget_unwritten()
        assert 0 not in interactions._partitions
    finally:
        interactions._partitions.clear()
