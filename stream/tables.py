"""The worker's Faust tables: compact bytes values, changelog topics for recovery.

| table                | key       | partitioned with        | value                               |
|----------------------|-----------|-------------------------|-------------------------------------|
| user-state           | user id   | clicks/carts/purchases  | the engine's user state (profile, sessions, recent ids) |
| user-recommendations | user id   | clicks/carts/purchases  | the user's latest cross-recommendation (JSON)           |
| cooccurrence         | item id   | item-pairs              | the engine's per-item partner counts                    |

Values are the engine's own versioned serialisations (bytes), so a table holds what the
offline code would hold, and a changelog record is one key's whole state.

A worker defines only the tables of its role (``XSELL_ROLE``): a table's changelog is part
of the worker's subscription, and Faust's assignor gives a changelog's partitions with the
source partitions of the workers that subscribe to both, so a co-occurrence worker must not
subscribe to the user tables' changelogs, nor an interactions worker to ``cooccurrence``'s.
Importing a table the role does not define fails with an ImportError.

Hot paths write through ``TableWrites``: the store at once, the changelog records of a batch
as one record batch per table and partition (``table[key] = value`` sends each record on its
own through Faust's producer buffer).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from faust.types import TP

from stream.app import ROLE_TABLES, app, settings
from stream.partitions import acting_for, send_to_partitions

__all__ = ["TableWrites", "cooccurrence_table", "user_recommendations_table", "user_state_table"]

log = logging.getLogger(__name__)


def _table(name: str):  # type: ignore[no-untyped-def]
    # Keys and values are raw bytes: the app's key_serializer and value_serializer.
    return app.Table(
        name,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
    )


if settings.runs_interactions:
    user_state_table, user_recommendations_table = (_table(name) for name in ROLE_TABLES["interactions"])
if settings.runs_cooccurrence:
    (cooccurrence_table,) = (_table(name) for name in ROLE_TABLES["cooccurrence"])


@dataclass
class _Changelog:
    """One table partition's changelog records of a batch, and their deliveries."""

    table: Any
    partition: int
    rows: list[tuple[bytes, bytes]]
    futures: list[asyncio.Future]


class TableWrites:
    """A batch's table writes: each value in its store at once, the changelog records sent
    together by ``send`` as one record batch per table and partition.

    ``table[key] = value`` sends each changelog record on its own (a ``FutureMessage``, the
    sensors, Faust's producer buffer and one ``send`` each), which was a sixth of the
    answering worker's event loop (docs/benchmarks/pipeline.md, ninth set). The records are
    the ones Faust would write: same topic, partition, key and value; and as Faust does, a
    delivered record moves the store's persisted changelog offset (under exactly-once, at
    the next commit). Under exactly-once a record must be in the transaction of its
    partition: each goes through Faust's transaction manager, as Faust's own write does,
    only without the per-record wrapping (aiokafka's ``send_batch`` does not add a
    partition to a transaction).

    A failed delivery is sent again by the next ``delivered`` (duplicates of a changelog
    record are harmless: the last value of a key wins), so a caller that waits for
    ``delivered`` knows the changelog holds every write.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], _Changelog] = {}
        self._sent: list[_Changelog] = []

    def set(self, table: Any, key: bytes, value: bytes, source: Any) -> None:
        """``table[key] = value`` for ``source``'s partition (an event, or what stands for one)."""
        with acting_for(source):
            table.data[key] = value
        partition = source.message.partition
        changelog = self._pending.get((table.name, partition))
        if changelog is None:
            changelog = self._pending[table.name, partition] = _Changelog(table, partition, [], [])
        changelog.rows.append((key, value))

    async def send(self) -> None:
        """Hand the changelog records written since the last call to the producer."""
        pending, self._pending = list(self._pending.values()), {}
        for changelog in pending:
            await self._send(changelog)
            self._sent.append(changelog)

    async def delivered(self) -> None:
        """Wait until Kafka has every record sent; send again those whose delivery failed."""
        for changelog in self._sent:
            if any(future.done() and (future.cancelled() or future.exception()) for future in changelog.futures):
                log.warning(
                    "changelog records of %s[%d] were not delivered; sending them again",
                    changelog.table.name,
                    changelog.partition,
                )
                await self._send(changelog)
        await asyncio.gather(*(future for changelog in self._sent for future in changelog.futures))

    @staticmethod
    async def _send(changelog: _Changelog) -> None:
        table = changelog.table
        topic = table.changelog_topic.get_topic_name()
        changelog.futures = []
        if app.in_transaction:
            transactions = app.consumer.transactions
            for key, value in changelog.rows:
                future = await transactions.send(topic, key, value, changelog.partition, None, None)
                changelog.futures.append(cast(asyncio.Future, future))
            if changelog.futures:  # a partition's records are delivered in order: the last one tells
                tp = TP(topic, changelog.partition)
                changelog.futures[-1].add_done_callback(partial(_persist_offset_on_commit, table, tp))
            return
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka's, as publish_many
        for partition, count, future in await send_to_partitions(
            producer, topic, {changelog.partition: changelog.rows}
        ):
            future.add_done_callback(partial(_persist_offset, table, TP(topic, partition), count))
            changelog.futures.append(future)


def _persist_offset_on_commit(table: Any, tp: TP, done: asyncio.Future) -> None:
    """Under exactly-once Faust writes a changelog offset to the store at the next commit."""
    if not done.cancelled() and done.exception() is None:
        app.tables.persist_offset_on_commit(table.data, tp, done.result().offset)


def _persist_offset(table: Any, tp: TP, count: int, done: asyncio.Future) -> None:
    """What Faust's ``_on_changelog_sent`` does for a record: the store knows what it holds
    up to which changelog offset, so a restart reads only the changelog beyond it."""
    if done.cancelled() or done.exception() is not None:
        return
    try:
        table.data.set_persisted_offset(tp, done.result().offset + count - 1)
    except Exception:  # the partition's store may have been closed by a rebalance meanwhile
        log.debug("could not persist the changelog offset of %s", tp, exc_info=True)
