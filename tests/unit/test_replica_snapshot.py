"""The replica's index snapshot: written with the offsets it reflects, and a snapshot that
cannot be written leaves the replica running and the change still to write."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from index import ItemIndex
from stream.metrics import Metrics
from stream.replica import Replica
from stream.settings import Settings


def replica_with_items(data_dir: Path) -> Replica:
    replica = Replica(Settings.from_env({"XSELL_DATA_DIR": str(data_dir)}), Metrics(CollectorRegistry()))
    replica.index = replica._new_index(4)
    replica.index.upsert(["a", "b"], np.eye(2, 4))
    replica.offsets = {"item-embeddings[0]": 2}
    replica._dirty = True
    return replica


def test_a_snapshot_holds_the_items_and_offsets(tmp_path: Path) -> None:
    replica = replica_with_items(tmp_path)
    asyncio.run(replica.snapshot())
    loaded = ItemIndex.load(tmp_path / "replica" / "index")
    assert sorted(loaded.ids()) == ["a", "b"] and loaded.source_offsets == {"item-embeddings[0]": 2}
    assert not replica._dirty


def test_a_snapshot_that_cannot_be_written_is_logged_and_kept_for_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the data directory should be")
    replica = replica_with_items(blocked)

    with caplog.at_level(logging.ERROR, logger="stream.replica"):
        asyncio.run(replica.snapshot())  # does not raise: the worker goes on

    assert replica._dirty, "the change must be written at the next interval"
    assert "the index snapshot was not written" in caplog.text


def test_becoming_ready_snapshots_and_runs_the_hook_before_ready_is_set(tmp_path: Path) -> None:
    """The snapshot and the heap's collection pause the worker: both come before the first answer."""
    replica = replica_with_items(tmp_path)
    seen: list[tuple[bool, bool]] = []
    replica.before_ready = lambda: seen.append((replica.ready.is_set(), replica._dirty))

    assert asyncio.run(replica._become_ready()) is True

    assert seen == [(False, False)], "the hook ran after ready was set, or before the snapshot"
    assert replica.ready.is_set()
    assert (tmp_path / "replica" / "index" / "CURRENT").exists()


def test_the_workers_replica_settles_the_heap_before_it_is_ready() -> None:
    import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
    from stream import heap
    from stream.agents.replica import replica

    assert replica.before_ready is heap.settle
