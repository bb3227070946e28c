"""``xsell_table_keys`` per table: RocksDB's constant-time estimate for a RocksDB store, the
dict's length for the memory store. The reference is a walk over every key."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import Rdict

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents.health import table_keys


def test_a_rocksdb_store_reports_the_keys_of_its_active_partitions(tmp_path: Path) -> None:
    partitions = [Rdict(str(tmp_path / f"p{number}")) for number in range(3)]
    try:
        for number, db in enumerate(partitions):
            for user in range(1_000 * (number + 1)):
                db[f"user-{number}-{user}".encode()] = b"state" * 100
        walked = sum(sum(1 for _ in db.keys()) for db in partitions)
        store = RocksDBStore.__new__(RocksDBStore)  # Faust's store class; its active partitions are ours
        store._dbs_for_actives = lambda: iter(partitions)

        assert table_keys(SimpleNamespace(data=store)) == walked == 6_000
    finally:
        for db in partitions:
            db.close()


def test_the_memory_store_is_counted() -> None:
    class Table(dict):
        data: dict = {}

    table = Table(a=1, b=2)
    assert table_keys(table) == 2
