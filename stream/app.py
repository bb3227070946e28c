"""The one Faust app of an xsell worker: topics, tables, agents and views.

``faust -A stream.app worker`` and ``xsell worker`` both run it. Settings come from
``XSELL_*`` environment variables (``stream.settings``); Faust's own ~80 environment
settings are read only under the ``XSELL_FAUST_`` prefix, so an unrelated ``BROKER_URL``
or ``WEB_PORT`` in a worker's environment cannot reconfigure it by accident.

Every topic is raw bytes: a message Faust cannot decode would only be logged by Faust
and lost, so agents parse inside their loop and dead-letter what they cannot read.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Coroutine, Generator, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import faust
from faust.assignor import PartitionAssignor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT
from faust.types.tables import TableManagerT
from faust.types.transports import TransportT
from mode import Service
from mode.services import WaitArgT, WaitResults
from mode.utils.objects import cached_property  # noqa: F401  (re-exported for agents)

from stream import heap, partitions
from stream.metrics import Metrics
from stream.partitions import send_in_batches, send_to_partitions
from stream.settings import Settings
from stream.topics import ensure_topics

__all__ = [
    "ROLE_TABLES",
    "app",
    "committed_offset",
    "metrics",
    "publish_many",
    "publish_to_partitions",
    "recovery_completed",
    "send_now",
    "settings",
]

log = logging.getLogger("xsell")

# The tables of each role (``stream.tables`` defines those of this worker's XSELL_ROLE).
ROLE_TABLES = {"interactions": ("user-state", "user-recommendations"), "cooccurrence": ("cooccurrence",)}


def _changelogs(app_id: str, *roles: str) -> set[str]:
    """The changelog topics of the roles' tables, named as Faust names them."""
    return {f"{app_id}-{name}-changelog" for role in roles for name in ROLE_TABLES[role]}

settings = Settings.from_env()
metrics = Metrics()
heap.tune()  # the worker settles its heap as its replica becomes ready (stream.agents.replica)
heap.watch_pauses(metrics)
Path(settings.data_dir).mkdir(parents=True, exist_ok=True)


def _broker_credentials(current: Settings) -> object | None:
    if current.security_protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if current.security_protocol in {"SSL", "SASL_SSL"}:
        from aiokafka.helpers import create_ssl_context

        ssl_context = create_ssl_context(cafile=current.ssl_cafile or None)
    if current.security_protocol == "SSL":
        return faust.SSLCredentials(ssl_context)
    return faust.SASLCredentials(
        username=current.sasl_username,
        password=current.sasl_password,
        mechanism=current.sasl_mechanism,
        ssl_context=ssl_context,
    )


class XsellWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At log level WARN and above the spinner sets the *root* logger to DEBUG so that every
    message spins it: each library debug call then builds a record only to drop it (4.3 %
    of a busy worker's samples in a py-spy profile, docs/benchmarks/pipeline.md).
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


class _Resumed:
    """Awaits a coroutine from where its first step stopped (it yielded ``yielded``).

    What ``await`` itself does with a coroutine: every value it yields (a future, or None
    for a bare yield) goes up to the task running this, and what the task sends or throws
    back goes down to the coroutine.
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # the task's cancellation included: it belongs to coro
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as done:
                    return done.value


class DirectDelivery(Service):
    """A service whose ``wait_first`` runs its first awaitable directly until it has to wait.

    Faust's fetcher hands every record to the conductor as
    ``wait_first(callback(message), suspend_flow.wait())``, so that a delivery waiting for
    room in a full stream queue is abandoned when a rebalance suspends the flow. That wraps
    the callback, the flow event and the service's stopped and crashed events in four tasks
    and an ``asyncio.wait`` per record. Here the callback runs to its first suspension; one
    that completes without one (the record went into the queue) is done exactly as inside
    Faust's race, which would have let it finish too, and one that has to wait joins that
    race from where it stopped. One worker answered 41 % more events per second with it
    (docs/benchmarks/pipeline.md, tenth set).
    """

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        """``Service.wait_first``, with the first awaitable run up to its first suspension."""
        callback = coros[0] if coros else None
        if (
            timeout is None
            and isinstance(callback, types.CoroutineType)
            and not self._stopped.is_set()
            and not self._crashed.is_set()
        ):
            try:
                yielded = callback.send(None)
            except StopIteration as done:
                return WaitResults([callback], [done.value], False)
            resumed = _Resumed(callback, yielded)
            results = await super().wait_first(resumed, *coros[1:])
            results.done[:] = [callback if winner is resumed else winner for winner in results.done]
            return results
        return await super().wait_first(*coros, timeout=timeout)


class XsellConsumer(DirectDelivery, faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering records directly (``DirectDelivery``), except
    that a stream partition without a committed offset is read from its beginning after
    every rebalance, and that the commit before a rebalance or a stop is never skipped nor
    empty.

    While a rebalance or recovery suspends the flow, Faust drops the records its fetcher
    delivers but still advances its read position, counting on the seek to the committed
    offsets that follows recovery to fetch them again. aiokafka seeks only partitions that
    have a committed offset, so a partition whose first records the previous owner read
    but never committed (it was killed first) kept the new owner's position past records
    nobody processed (measured in the kill -9 test: the first ``item-pairs`` message of two
    partitions lost, N 4,399 instead of 5,000). With ``auto_offset_reset`` earliest such a
    partition belongs at its beginning, so it is sought there explicitly.
    """

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit what the streams have acked, then let Faust revoke.

        Faust drops the acks of the revoked partitions *before* its revocation handler waits
        for the streams and commits, so offsets acked since the last periodic commit (up to
        ``broker_commit_interval``) were never committed: after the rebalance the
        partitions' owner, even this same worker, answered those events again (docs/DECISIONS.md).
        """
        if not self.app.client_only:
            await self._wait_for_commit_in_flight()
            await self.commit()
        await super().on_partitions_revoked(revoked)

    async def commit_and_end_transactions(self) -> None:
        """The last commit of ``wait_empty``: before a rebalance hands partitions over, and at stop.

        Faust's ``commit`` returns without committing when another commit is in flight (the
        periodic one started before the last acks), so the offsets of the last batch could
        stay uncommitted and the partitions' next owner answered those events again. Wait
        for the commit in flight, then commit what is acked.
        """
        await self._wait_for_commit_in_flight()
        await super().commit_and_end_transactions()

    async def _wait_for_commit_in_flight(self) -> None:
        """Faust's ``commit`` returns without committing while another one is in flight."""
        while self._commit_fut is not None:
            await self.maybe_wait_for_commit_to_finish()

    async def perform_seek(self) -> None:
        """Seek to the committed offsets with the flow stopped; Faust resumes it afterwards.

        At the end of a table recovery Faust resumes the stream partitions, seeks them, and
        then resumes the flow with a clear of the agents' queues, while the flow has been
        running since the changelogs were read. Records fetched after the seek and queued
        before that clear were dropped with the read position already past them: events never
        answered, and a commit stuck at the gap (28 events in a stress run that rotates
        workers, docs/DECISIONS.md). With the flow stopped from the start of the seek nothing
        is delivered until Faust resumes it, after the clear; what the client fetches
        meanwhile waits in its buffer. Every caller resumes the flow after the seek (the end
        of a recovery, streams resumed without tables, ``getmany`` while the flow is stopped).
        Records delivered before the seek come again after it (``_first_delivery`` skips
        them in the interactions agent).
        """
        self.stop_flow()
        await super().perform_seek()

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check, skipping a partition that has no read position yet.

        A partition sought to its beginning (``seek_to_committed``) has no position until the
        client has looked its first offset up, and aiokafka asserts when the position is read
        then: the check crashed the consumer, and with it the worker (a stress run, cycle 22
        of 30, a seek from ``getmany`` just after "Worker ready"). The check only logs, so
        such a partition is looked at again on its next round.
        """
        try:
            super().verify_event_path(now, tp)
        except AssertionError:  # aiokafka's TopicPartitionState.position without a position
            return

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        fresh = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        if fresh:
            log.info("no committed offset for %s: reading from the beginning", sorted(fresh))
            await self._thread.seek_to_beginning(*fresh)
        return committed


class _EveryRolesTables:
    """This worker's table manager as the assignor sees it: with every role's changelogs.

    Faust's assignor reads ``changelog_topics`` of the *leader's* table manager to choose the
    standby partitions it sends each member and the tables of the routing metadata, and each
    member checks its assignment against its own tables. A co-occurrence worker leading the
    group knew no user tables: it dropped the interactions workers' standby partitions (their
    check failed, and they hung before ready) and the routes of the users' table (the users
    route answered 503).
    """

    def __init__(self, tables: TableManagerT, app_id: str) -> None:
        self._tables = tables
        self._every_role = _changelogs(app_id, *ROLE_TABLES)

    @property
    def changelog_topics(self) -> set[str]:
        return set(self._tables.changelog_topics) | self._every_role

    def __getattr__(self, name: str) -> object:
        return getattr(self._tables, name)


class XsellAssignor(PartitionAssignor):
    """Faust's assignor, aware of the tables of every role (``_EveryRolesTables``), with the
    co-occurrence role's topics in a topic group of their own.

    Under exactly-once Faust names a transactional producer ``<app id>-<group>-<partition>``,
    and its group is one per partition *count*, so ``item-pairs`` shared its group with the
    event topics: an interactions worker and a co-occurrence worker each opened the
    transaction of partition 0 under one id, and fenced each other (the co-occurrence worker
    crashed, "ProducerFenced"). Every use of the group (producers, changelog sends, offset
    commits) goes through ``group_for_topic``.
    """

    COUNTING_GROUP_OFFSET = 100

    def __init__(self, app: AppT, replicas: int = 0) -> None:
        super().__init__(app, replicas=replicas)
        self._table_manager = _EveryRolesTables(app.tables, app.conf.id)  # type: ignore[assignment]
        self._counting_topics = {settings.topic("item-pairs"), *_changelogs(app.conf.id, "cooccurrence")}

    def group_for_topic(self, topic: str) -> int:
        group = super().group_for_topic(topic)
        return group + self.COUNTING_GROUP_OFFSET if topic in self._counting_topics else group


class XsellTransport(faust_aiokafka.Transport):
    Consumer = XsellConsumer


class XsellApp(faust.App):
    """Faust's App, which first makes sure xsell's topics and its tables' changelogs exist
    (with the right partitions and compaction) so the consumer subscribes to topics that are
    there, and which consumes through ``XsellConsumer``."""

    async def on_first_start(self) -> None:
        await super().on_first_start()
        changelogs = [table.changelog_topic.get_topic_name() for table in self.tables.values()]
        await ensure_topics(settings, changelogs=changelogs)

    def _new_transport(self) -> TransportT:
        return XsellTransport(self.conf.broker_consumer, self)


app = XsellApp(
    settings.app_id,
    broker=settings.broker,
    broker_credentials=_broker_credentials(settings),
    env_prefix="XSELL_FAUST_",
    autodiscover=False,
    datadir=str(settings.data_dir / "faust"),
    store="rocksdb://" if settings.store == "rocksdb" else "memory://",
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    processing_guarantee=settings.processing_guarantee,
    key_serializer="raw",
    value_serializer="raw",
    web_port=settings.web_port,
    web_bind=settings.web_host,
    web_enabled=True,
    web_in_thread=False,
    consumer_auto_offset_reset="earliest",
    broker_commit_every=settings.batch_size,
    broker_commit_interval=settings.commit_interval_s,
    stream_buffer_maxsize=max(4096, 4 * settings.batch_size),
    stream_wait_empty=True,  # stop and rebalance only once taken events are processed
    stream_ack_exceptions=False,
    producer_linger_ms=5,
    # A batch writes hundreds of user states (~7 KB each) and answers at once: with the
    # default 16 KiB per partition batch, sends waited for room in the accumulator (answers
    # took 4.1 of 33 s in a pipeline run, 1.1 s with this). Half the broker's default
    # message.max.bytes, so one record batch always fits.
    producer_max_batch_size=512 * 1024,
    producer_max_request_size=4 * 1024 * 1024,
    table_cleanup_interval=30.0,
    Worker=XsellWorker,
    PartitionAssignor=XsellAssignor,
)


def topic(name: str, **options: object) -> faust.TopicT:
    """One of xsell's topics (raw bytes, with the configured prefix)."""
    return app.topic(
        settings.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        **options,  # type: ignore[arg-type]
    )


async def publish_to_partitions(
    topic: faust.TopicT, by_partition: Mapping[int, Iterable[tuple[bytes, bytes]]]
) -> list[asyncio.Future]:
    """Hand keyed records of a hot path to the producer, in the partitions given, one record
    batch per partition (``stream.partitions.send_to_partitions``); return the delivery futures.

    ``Topic.send`` wraps every record in a ``FutureMessage``, calls the sensors and chains a
    callback, which costs about as much as building an answer; faust-streaming's
    ``Topic.send`` hands the record to this same producer in the end (also under
    exactly-once), so delivery and ordering are the same.
    """
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer (faust's driver)
    return [future for _, _, future in await send_to_partitions(producer, topic.get_topic_name(), by_partition)]


async def publish_many(topic: faust.TopicT, records: Iterable[tuple[bytes, bytes]]) -> list[asyncio.Future]:
    """Hand many keyed records of a hot path to the producer, one record batch per partition,
    each record where the default partitioner puts it (``stream.partitions.send_in_batches``);
    return the delivery futures.

    ``producer.send`` costs one metadata check, one partitioner call, one accumulator entry and
    one future per record; here those are paid once per partition (answers and association
    records: +5 % events/s in paired pipeline runs, docs/benchmarks/pipeline.md). Same producer
    as ``publish_to_partitions``; faust's wrapper has no batch API.
    """
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer (faust's driver)
    return await send_in_batches(producer, topic.get_topic_name(), records)


def send_now() -> None:
    """What was published so far leaves with the producer's next request, without waiting
    for its linger (``stream.partitions.send_now``)."""
    partitions.send_now(app.producer._ensure_producer())  # type: ignore[attr-defined]  # as publish_many


def recovery_completed() -> bool:
    """Whether Faust has recovered the tables of the current assignment (``TableManager.recovery``,
    which faust's ``TableManagerT`` type does not declare)."""
    return bool(cast(Any, app.tables).recovery.completed.is_set())


def committed_offset(tp: TP) -> int | None:
    """The offset Faust last committed for ``tp`` (Faust keeps no public accessor)."""
    return cast(Any, app.consumer)._committed_offset.get(tp)


# One agent reads the three event topics (co-partitioned by user).
events_topic = app.topic(
    *(settings.topic(name) for name in ("clicks", "carts", "purchases")),
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
catalog_topic = topic("catalog", compacting=True)
campaigns_topic = topic("ad-campaigns", compacting=True)
item_embeddings_topic = topic("item-embeddings", compacting=True, internal=True)
item_pairs_topic = topic("item-pairs", internal=True)
item_associations_topic = topic("item-associations", compacting=True)
recommendations_topic = topic("cross-recommendations")
ad_targets_topic = topic("ad-targets")
dead_letter_topic = topic("dead-letter")

# Importing the agents and views registers them on `app` (they import this module); a worker
# registers only its role's agents (XSELL_ROLE), so it subscribes only to their topics.
from stream import views  # noqa: E402,F401
from stream.agents import health, replica  # noqa: E402,F401

if settings.runs_interactions:
    from stream.agents import catalog, interactions  # noqa: E402,F401
if settings.runs_cooccurrence:
    from stream.agents import cooccurrence  # noqa: E402,F401
