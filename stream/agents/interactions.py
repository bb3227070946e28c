"""The interactions agent: clicks, carts and purchases, partitioned by user.

Per batch (``stream.batches.take_batches``: the records that arrived while the last batch was
processed, or a lone one; every record is handled inside the loop, nothing escapes):

1. validate each record (raw bytes; the topic gives the kind); rejects → ``dead-letter``;
2. per user, one table read (none when the state is in the ``UserCache``) and one table
   write: order, de-duplicate, sessionise and generate pairs (``UserActivity``), update the
   rolling vectors (``UserProfile``); the writes' changelog records leave together
   (``TableWrites``);
3. push the partition's watermark (newest event time − lateness) to users whose buffered
   events it has passed, and, when a partition has been idle for ``idle_flush_s``, apply
   every buffered event (so a quiet pipeline has counted everything);
4. rank once per user (one batched index query, in a worker thread) and answer **every**
   input event, duplicates included, on ``cross-recommendations`` with its
   ``trigger_event_id``; ad targets go to ``ad-targets``;
5. write the states, each user's carrying the item updates this batch produced for it (its
   *outbox*); then, in the background while the next batch is read and ranked, wait until
   they are durable and only then send the updates, aggregated into **one** message per
   co-occurrence partition, to ``item-pairs``. The next batch writes nothing before this
   batch's pairs have left (``_in_flight``).

Why this order (an outbox): pairs leave only once the state that produced them is durable,
so a crash can never count pairs whose state is lost and then count a differently batched
replay of the same events again. Each partition's batch number and the users it wrote (the
*registry*) are written before the users, so a worker that takes a partition over re-sends
the outboxes of its last batch (dropped downstream by ``event_id`` if they had arrived);
events past the committed offset are replayed as duplicates of the durable states. Offsets
are committed only after the producer is flushed (Faust does so before every commit), so a
committed batch's states are durable even while its pairs are still being sent.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
from faust.types import TP
from numpy.typing import NDArray

from stream import records
from stream.agents.deadletters import dead_letter
from stream.agents.replica import replica
from stream.app import (
    ad_targets_topic,
    app,
    committed_offset,
    events_topic,
    item_pairs_topic,
    metrics,
    publish_many,
    publish_to_partitions,
    recommendations_topic,
    recovery_completed,
    send_now,
    settings,
)
from stream.batches import take_batches
from stream.engine import (
    Event,
    IngestResult,
    InvalidEvent,
    ItemInfo,
    ItemUpdate,
    ProfileConfig,
    RecommendationRequest,
    UserActivity,
    UserProfile,
    ValidationConfig,
    recommend_many,
    validate_event,
)
from stream.engine.profiles import encode_profiles, query_vectors
from stream.engine.retrieval import ASSOCIATION_DEPTH, TRENDING_DEPTH, blend_query_vectors
from stream.partitions import cached_partition_for, partition_state_key
from stream.tables import TableWrites, user_recommendations_table, user_state_table
from stream.topics import EVENT_TOPICS

__all__ = ["PartitionState", "UserCache", "UserState", "encode_states"]

log = logging.getLogger(__name__)

STATE_MAGIC = b"XU2"
OLD_STATE_MAGIC = b"XU1"  # before outboxes: the tail held only the ad caps
VALIDATION = ValidationConfig(
    max_message_bytes=settings.max_message_bytes, max_future_ms=int(settings.max_future_s * 1000)
)
SESSIONS = settings.session_config()
KIND_OF_TOPIC = {settings.topic(name): kind for name, kind in EVENT_TOPICS.items()}
RANKING = settings.ranking_config()  # the XSELL_RANK_* weights; each call sets its list length
_ranking_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xsell-ranking")
# A batch of this many events or more means a backlog: more follow at once, so the next batch
# waits to fill (``take_batches``) and the producer's batches may linger (``Work.send_now``).
BACKLOG_BATCH = max(1, settings.batch_size // 4)
# Fewer users than this are ranked on the event loop: the thread lets the loop send and fetch
# while a large batch is ranked, but for a few users its GIL hand-offs cost more than it
# overlaps (at 1,000 events/s, ~20 users: 12 instead of 19-30 ms a batch, docs/DECISIONS.md).
RANK_IN_THREAD_FROM = 64
SENDER_TURNS = 3  # event loop turns for the producer's sender to put a batch's answers on the wire
# The batch loop and the idle flusher both read-modify-write user state.
_state_lock = asyncio.Lock()


@dataclass
class UserState:
    """What the ``user-state`` table holds per user: activity, profile, ad caps and outbox.

    The outbox is the item updates (``item-pairs`` form) of the user's last change, tagged
    with that change's partition batch number (``outbox_seq``).
    """

    activity: UserActivity
    profile: UserProfile
    ad_caps: dict[str, list[int]] = field(default_factory=dict)
    outbox: list[list[Any]] = field(default_factory=list)
    outbox_seq: int = 0

    def to_bytes(self, *, stored: bool = False) -> bytes:
        """The table's value; ``stored``: this state is kept in memory after it is written, so
        its profile becomes what the table holds (``UserProfile.stored_bytes``)."""
        return encode_states([self], stored=stored)[0]

    @classmethod
    def from_bytes(cls, data: bytes | None, profile_config: ProfileConfig) -> UserState:
        if not data:
            return cls(UserActivity(SESSIONS), UserProfile(profile_config))
        magic = data[:3]
        if magic not in (STATE_MAGIC, OLD_STATE_MAGIC):
            raise ValueError("user state has an unknown format")
        activity_size, profile_size = struct.unpack_from("<II", data, 3)
        start = 3 + 8
        activity = UserActivity.from_bytes(data[start : start + activity_size], SESSIONS)
        start += activity_size
        profile = UserProfile.from_bytes(data[start : start + profile_size], profile_config)
        tail = orjson.loads(data[start + profile_size :] or b"{}")
        if magic == OLD_STATE_MAGIC:
            return cls(activity, profile, tail)
        return cls(activity, profile, tail["ad_caps"], tail["outbox"], int(tail["seq"]))


def encode_states(states: Sequence[UserState], *, stored: bool = False) -> list[bytes]:
    """Each state's ``to_bytes``, the profiles' vectors rounded together (``encode_profiles``)."""
    profiles = encode_profiles([state.profile for state in states], stored=stored)
    encoded = []
    for state, profile in zip(states, profiles, strict=True):
        activity = state.activity.to_bytes()
        header = struct.pack("<II", len(activity), len(profile))
        tail = orjson.dumps({"ad_caps": state.ad_caps, "outbox": state.outbox, "seq": state.outbox_seq})
        encoded.append(b"".join((STATE_MAGIC, header, activity, profile, tail)))
    return encoded


@dataclass
class PartitionState:
    """Per input partition: the event-time high mark, users with buffered events, and the
    registry of the last batch (its number and the users whose outbox it filled)."""

    max_ts: int | None = None
    pending: dict[str, int] = field(default_factory=dict)  # user → earliest buffered event time
    seq: int = 0
    senders: list[str] = field(default_factory=list)
    last_input: float = 0.0  # wall clock (monotonic), for idle flushing only
    resend_due: bool = False  # just taken over: re-send the last batch's outboxes first

    def to_bytes(self) -> bytes:
        return orjson.dumps({"max_ts": self.max_ts, "pending": self.pending})

    def registry_bytes(self) -> bytes:
        return orjson.dumps({"seq": self.seq, "senders": self.senders})

    @classmethod
    def from_bytes(cls, data: bytes | None, registry: bytes | None) -> PartitionState:
        raw = orjson.loads(data) if data else {}
        batch = orjson.loads(registry) if registry else {}
        senders = list(batch.get("senders", []))
        return cls(
            max_ts=raw.get("max_ts"),
            pending=dict(raw.get("pending", {})),
            seq=int(batch.get("seq", 0)),
            senders=senders,
            resend_due=bool(senders),
        )


_partitions: dict[int, PartitionState] = {}
# Per event-topic partition: the offset after the last record processed (idle flush checks it).
_next_offset: dict[TP, int] = {}
# An idle partition flushes once caught up; after this many idle periods, regardless (a
# transactional producer's commit marker is an offset no record fills).
IDLE_PERIODS_WITHOUT_CATCH_UP = 10


class _Anchor:
    """Stands for "an event of input partition N" where table writes need one (``TableWrites.set``)."""

    def __init__(self, partition: int) -> None:
        self.message = type("Message", (), {"topic": settings.topic("clicks"), "partition": partition})()


_anchors: dict[int, _Anchor] = {}


def _anchor(partition: int) -> _Anchor:
    anchor = _anchors.get(partition)
    if anchor is None:
        anchor = _anchors[partition] = _Anchor(partition)
    return anchor


def _partition(number: int) -> PartitionState:
    state = _partitions.get(number)
    if state is None:
        state = _partitions[number] = PartitionState.from_bytes(
            user_state_table.get(partition_state_key("partition", number, settings.partitions)),
            user_state_table.get(partition_state_key("outbox", number, settings.partitions)),
        )
        # Taking a partition over counts as input: its buffered events wait another idle period.
        state.last_input = time.monotonic()
    return state


@app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's type wants a `signal` keyword: in kwargs
async def _forget_partitions(sender: Any, revoked: Any, **kwargs: Any) -> None:
    """A revoked partition's state moves with it; re-read it from the table if it comes back.

    Taking the state lock first lets a batch or an idle flush finish its table writes
    before the partitions are handed over, so no late write from this worker can land in a
    changelog that another worker already owns.
    """
    async with _state_lock:
        try:
            await _in_flight.settle()
        except Exception:  # the next owner re-sends the last batch's outboxes
            log.exception("the last batch's pairs were not sent before its partitions were revoked")
        _partitions.clear()
        _next_offset.clear()
        _user_cache.clear()
    metrics.rebalances.inc()


@dataclass
class Answer:
    """One input event to answer, and the Faust event it came in."""

    event: Event
    source: Any


def _destination(item_id: str) -> int:
    """The co-occurrence partition of an item."""
    return cached_partition_for(item_id.encode(), settings.partitions)


def _encoded(update: ItemUpdate) -> list[Any]:
    """An item update as ``item-pairs`` carries it (and a user's outbox keeps it).

    The partners stay tuples: orjson writes them as the same arrays lists would be.
    """
    return [update.item_id, update.event_id, update.ts, update.occurrence, update.partners, int(update.opens)]


@dataclass
class Work:
    """What one batch (or one idle flush) accumulates before it writes, then sends."""

    states: dict[bytes, tuple[UserState, Any]] = field(default_factory=dict)
    pairs: dict[int, list[list[Any]]] = field(default_factory=lambda: defaultdict(list))
    touched: set[int] = field(default_factory=set)
    senders: dict[int, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    writes: TableWrites = field(default_factory=TableWrites)
    recommendations: dict[bytes, tuple[Any, bytes]] = field(default_factory=dict)  # user → (source, latest answer)
    backlog: bool = False  # a large batch: more records follow at once, so the producer's batches may linger

    def absorb_all(self, results: Sequence[tuple[bytes, UserState, IngestResult, int]]) -> None:
        """Apply each user's ingest or flush result (user key, state, result, partition) to
        the profile, outbox and pairs; the items' vectors come from one index lookup."""
        if not results:
            return
        items = [event.item_id for _, _, result, _ in results for event in result.applied]
        vectors, categories = _item_vectors(items, results[0][1].profile.config.dimension)
        start = 0
        for user_key, state, result, partition in results:
            end = start + len(result.applied)
            if end > start:
                state.profile.update_many(result.applied, vectors[start:end], categories[start:end])
            start = end
            self._absorb_updates(user_key, state, result, partition)

    def _absorb_updates(self, user_key: bytes, state: UserState, result: IngestResult, partition: int) -> None:
        partition_state = _partition(partition)
        seq = partition_state.seq + 1  # this work's batch number (write_states makes it so)
        encoded = [_encoded(update) for update in result.updates]
        if state.outbox_seq != seq:
            state.outbox, state.outbox_seq = [], seq
        if encoded:
            state.outbox.extend(encoded)
            self.senders[partition][user_key.decode()] = None
            self.add_pairs(encoded)
        if state.activity.pending:
            partition_state.pending[user_key.decode()] = min(ts for ts, _, _ in state.activity.pending)
        else:
            partition_state.pending.pop(user_key.decode(), None)
        self.touched.add(partition)

    def add_pairs(self, encoded: list[list[Any]]) -> None:
        for update in encoded:
            self.pairs[_destination(update[0])].append(update)

    async def send_pairs(self) -> None:
        by_partition = {
            destination: [(f"pairs:{destination}".encode(), orjson.dumps({"updates": updates}))]
            for destination, updates in self.pairs.items()
        }
        futures = await publish_to_partitions(item_pairs_topic, by_partition)
        self.send_now()
        metrics.pairs_sent.inc(sum(len(updates) for updates in self.pairs.values()))
        await asyncio.gather(*futures)

    def send_now(self) -> None:
        """Let what this work handed to the producer leave at once, unless under backlog.

        The producer holds a record batch back for ``linger_ms`` (5 ms) to gather records still
        to come. Under backlog they come (the next batch follows at once) and requests stay
        few; below it nothing more is coming, and a batch would wait out the linger twice
        before the next could write (its states' durability, then its pairs): at 1,000
        events/s, p50 −10 % and p99 −15–25 % with split roles. Sending at once after every
        batch also under backlog measured 6 % fewer events/s at saturation (alternated runs,
        within their spread), so it stays off there (docs/benchmarks/pipeline.md).
        """
        if not self.backlog:
            send_now()

    async def answers_leave(self) -> None:
        """Below backlog, let the answers just published leave before the rest of the batch.

        The producer's sender runs on this event loop, so the answers waited in its
        accumulator until the batch's next await: after the flush of other users and the
        state encoding, a third of a batch at 1,000 events/s. A few turns of the loop: the
        sender wakes, drains the record batches and writes the request to the connection.
        """
        if self.backlog:
            return
        self.send_now()
        for _ in range(SENDER_TURNS):
            await asyncio.sleep(0)

    async def write_states(self) -> None:
        """The latest answers; then the registry, the users and the partition records (see the
        module docstring), in this order in each partition's changelog."""
        writes = self.writes
        for user_key, (source, value) in self.recommendations.items():
            writes.set(user_recommendations_table, user_key, value, source)
        for number in self.touched:
            partition_state = _partitions[number]
            partition_state.seq += 1
            partition_state.senders = list(self.senders.get(number, ()))
            key = partition_state_key("outbox", number, settings.partitions)
            writes.set(user_state_table, key, partition_state.registry_bytes(), _anchor(number))
        values = encode_states([state for state, _ in self.states.values()], stored=True)
        for (user_key, (_, source)), value in zip(self.states.items(), values, strict=True):
            writes.set(user_state_table, user_key, value, source)
        for number in self.touched:
            key = partition_state_key("partition", number, settings.partitions)
            writes.set(user_state_table, key, _partitions[number].to_bytes(), _anchor(number))
        await writes.send()
        self.send_now()

    async def write_then_send(self, answers: Sequence[asyncio.Future] = ()) -> None:
        """Write the states now; wait until Kafka has them and send their pairs in the background.

        The previous work's pairs must have left before this work writes its registry: a
        worker that takes a partition over re-sends the outboxes of the last registered batch
        only. ``answers`` are this work's published answers, whose delivery is checked there.
        """
        await _in_flight.settle()
        await self.write_states()
        _in_flight.start(self, answers)

    async def durable_then_send(self, answers: Sequence[asyncio.Future] = ()) -> None:
        """Wait until Kafka has the written states, then send their pairs."""
        await app.producer.flush()
        await self.writes.delivered()
        await self.send_pairs()
        await asyncio.gather(*answers)


class _InFlight:
    """The last written work's ``durable_then_send``, running while the next batch is read
    and ranked: the producer flush and the pairs' delivery are most of a batch's waiting
    (21 of 86 ms per batch at 1,000 events/s, docs/benchmarks/pipeline.md)."""

    def __init__(self) -> None:
        self._work: Work | None = None
        self._task: asyncio.Future[None] | None = None

    def start(self, work: Work, answers: Sequence[asyncio.Future]) -> None:
        self._work, self._task = work, asyncio.ensure_future(work.durable_then_send(answers))

    async def settle(self) -> None:
        """Wait until the last work's pairs have left; if sending failed, send them again.

        Until they have left the work stays in flight, so no later work writes its registry
        (the registry names the only batch a taking-over worker re-sends): a send that fails
        again fails this caller, and the next one tries once more.
        """
        if self._work is None or self._task is None:
            return
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise  # we were cancelled, not the send: it stays in flight for the next settle
            await self._send_again()
        except Exception:
            log.exception("delivering a batch's pairs or answers failed; sending its pairs again")
            await self._send_again()
        self._work = self._task = None

    async def _send_again(self) -> None:
        assert self._work is not None
        self._task = asyncio.ensure_future(self._work.durable_then_send())
        await asyncio.shield(self._task)


_in_flight = _InFlight()


async def _resend_outboxes() -> None:
    """Re-send the last batch's pairs of each partition this worker has just taken over.

    The previous owner may have died after its states were durable but before (all of) its
    pairs were delivered; pairs that did arrive are dropped downstream by ``event_id``.
    """
    due = [(number, state) for number, state in _partitions.items() if state.resend_due]
    if not due:
        return
    work = Work()
    profile_config = _profile_config()
    for number, partition_state in due:
        partition_state.resend_due = False
        for user in partition_state.senders:
            state = _load_state(user.encode(), profile_config)
            if state.outbox_seq == partition_state.seq:
                work.add_pairs(state.outbox)
        log.info("partition %d taken over: re-sent batch %d's pairs", number, partition_state.seq)
    await work.send_pairs()


_IN_STOCK, _OUT_OF_STOCK = ItemInfo(), ItemInfo(in_stock=False)


class _IndexCatalog:
    """Stock from the index replica's metadata (unknown items are kept).

    The ranking reads only whether an item is available, so two shared ``ItemInfo`` serve
    every item: building one per candidate was a third of its catalog filter (py-spy).
    """

    def lookup(self, item_ids: Sequence[str]) -> list[ItemInfo | None]:
        index = replica.index
        if index is None:
            return [None] * len(item_ids)
        return [
            None if meta is None else _IN_STOCK if meta.get("in_stock", True) else _OUT_OF_STOCK
            for meta in index.metadata_many(item_ids)
        ]


def _item_vectors(items: Sequence[str], dimension: int) -> tuple[np.ndarray, list[str | None]]:
    """Item vectors (NaN rows for items not embedded yet) and categories."""
    index = replica.index
    if index is None or index.dim != dimension:
        return np.full((len(items), dimension), np.nan, dtype=np.float32), [None] * len(items)
    vectors, metadata = index.lookup(items)
    return vectors, [None if meta is None else meta.get("category") for meta in metadata]


def _profile_config() -> ProfileConfig:
    return ProfileConfig(dimension=replica.index.dim if replica.index is not None else 384)


class UserCache:
    """Decoded states of the most recently active users, kept between batches.

    Reading and decoding a state was a tenth of the answering worker's time, and most
    events are of users seen moments before: in their session, or again when the
    watermark releases their buffered events (docs/DECISIONS.md). The table stays the
    truth: every state a batch loads it also writes, so between batches a cached state
    equals its table value. A batch or flush that fails forgets the whole cache (it may have
    changed states it never wrote), and so does a revocation (the states move with their
    partitions). A state decoded for another profile dimension is read again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: OrderedDict[bytes, UserState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, user_key: bytes, profile_config: ProfileConfig) -> UserState | None:
        state = self._states.get(user_key)
        if state is None:
            return None
        if state.profile.config != profile_config:
            del self._states[user_key]
            return None
        self._states.move_to_end(user_key)
        return state

    def keep(self, user_key: bytes, state: UserState) -> None:
        """Remember a state just read; the least recently used ones go beyond ``size``."""
        if self.size <= 0:
            return
        self._states[user_key] = state
        self._states.move_to_end(user_key)
        while len(self._states) > self.size:
            self._states.popitem(last=False)

    def clear(self) -> None:
        self._states.clear()


_user_cache = UserCache(settings.user_cache_size)


def _forget_unwritten() -> None:
    """After a failed batch or flush: partition records and user states it may have changed
    but never written are read again from the table."""
    _partitions.clear()
    _user_cache.clear()


def _load_state(user_key: bytes, profile_config: ProfileConfig) -> UserState:
    """The user's state; whoever changes it must write it in the same batch (see UserCache)."""
    state = _user_cache.get(user_key, profile_config)
    if state is not None:
        return state
    try:
        state = UserState.from_bytes(user_state_table.get(user_key), profile_config)
    except Exception:  # a corrupt state must not stop the worker
        log.exception("user state of %r unreadable; starting afresh", user_key)
        state = UserState(UserActivity(SESSIONS), UserProfile(profile_config))
    _user_cache.keep(user_key, state)
    return state


async def process_batch(batch: Sequence[Any]) -> None:
    """Everything one batch does; see the module docstring."""
    now_ms = int(time.time() * 1000)
    by_user: dict[bytes, list[Answer]] = defaultdict(list)
    consumed: Counter[tuple[str, str]] = Counter()  # (kind, outcome): one metric update each, not per event
    if log.isEnabledFor(logging.DEBUG):
        log.debug("batch offsets: %s", _offset_spans(batch))
    try:
        await _validate_all(batch, now_ms, by_user, consumed)
        await _resend_outboxes()
        if not by_user:
            return
        await _process_users(by_user, consumed, backlog=len(batch) >= BACKLOG_BATCH)
    finally:
        for (kind, outcome), count in consumed.items():
            metrics.events_consumed.labels(kind=kind, outcome=outcome).inc(count)
        redelivered = sum(count for (_, outcome), count in consumed.items() if outcome == "redelivered")
        if redelivered:
            log.info("skipped %d records delivered again since their partitions were assigned", redelivered)


def _offset_spans(batch: Sequence[Any]) -> list[tuple[str, int, int, int, int]]:
    """(topic, partition, first offset, last offset, records) per topic-partition of a batch."""
    spans: dict[tuple[str, int], tuple[int, int, int]] = {}
    for event in batch:
        message = event.message
        key = (message.topic, message.partition)
        first, last, count = spans.get(key, (message.offset, message.offset, 0))
        spans[key] = (min(first, message.offset), max(last, message.offset), count + 1)
    return [(*key, *span) for key, span in sorted(spans.items())]


def _first_delivery(tp: TP, offset: int) -> bool:
    """Whether this record is new to this worker since it was given the partition; records it.

    Faust can deliver a record twice within one assignment. At the end of a table recovery
    (``Recovery.on_recovery_completed``, faust-streaming 0.15.3) it resumes the stream
    partitions while the flow still runs from reading the changelogs, and only then seeks
    them back to the committed offsets: records fetched in between come again (5 events
    answered twice in a CI run of the two-workers test). Their effects are in the state and
    their answers sent, so the second copy is skipped. Revocation forgets the offsets: the
    partition's next owner, or this worker given it back, starts from the committed offset
    as at-least-once requires.
    """
    done = _next_offset.get(tp)
    if done is not None and offset < done:
        return False
    _next_offset[tp] = offset + 1
    return True


async def _validate_all(
    batch: Sequence[Any], now_ms: int, by_user: dict[bytes, list[Answer]], consumed: Counter[tuple[str, str]]
) -> None:
    for event in batch:
        message = event.message
        kind = KIND_OF_TOPIC.get(message.topic)
        if not _first_delivery(message.tp, message.offset):
            consumed[kind or "unknown", "redelivered"] += 1
            continue
        try:
            if kind is None:
                raise InvalidEvent("unknown_kind", f"topic {message.topic}")
            valid = validate_event(message.value or b"", kind=kind, now_ms=now_ms, config=VALIDATION)
        except InvalidEvent as exc:
            consumed[kind or "unknown", "dead_letter"] += 1
            await dead_letter(message, exc.reason, exc.detail)
            continue
        by_user[valid.user_id.encode()].append(Answer(valid, event))
        partition_state = _partition(message.partition)
        partition_state.last_input = time.monotonic()
        if partition_state.max_ts is None or valid.ts > partition_state.max_ts:
            partition_state.max_ts = valid.ts


async def _process_users(
    by_user: dict[bytes, list[Answer]], consumed: Counter[tuple[str, str]], *, backlog: bool
) -> None:
    profile_config = _profile_config()
    work = Work(backlog=backlog)
    answered: list[Answer] = []
    results = []
    for user_key, answers in by_user.items():
        source = answers[0].source
        state = _load_state(user_key, profile_config)
        result = state.activity.ingest([answer.event for answer in answers])
        late = {event.event_id for event in result.too_late}
        duplicates = {event.event_id for event in result.duplicates}
        for answer in answers:
            kind = answer.event.kind
            if answer.event.event_id in late:
                consumed[kind, "dead_letter"] += 1
                await dead_letter(answer.source.message, "too_late", "older than the allowed lateness")
                continue
            outcome = "duplicate" if answer.event.event_id in duplicates else "ok"
            consumed[kind, outcome] += 1
            answered.append(answer)
        results.append((user_key, state, result, source.message.partition))
        work.states[user_key] = (state, source)
    work.absorb_all(results)

    futures, work.recommendations = await _answer(answered, {key: state for key, (state, _) in work.states.items()})
    await work.answers_leave()
    # Then the partitions' other users whose buffered events the watermark has passed
    # (``_flush_pending`` skips the batch's own users, so no answer depends on it).
    for number in {answers[0].source.message.partition for answers in by_user.values()}:
        partition_state = _partitions[number]
        if partition_state.max_ts is not None:
            _flush_pending(work, number, partition_state.max_ts - SESSIONS.allowed_lateness_ms, profile_config)
    await work.write_then_send(futures)


def _flush_pending(work: Work, number: int, watermark: int | None, profile_config: ProfileConfig) -> None:
    """Apply buffered events of this partition's other users up to ``watermark`` (all if None)."""
    partition_state = _partitions[number]
    due = [
        user
        for user, earliest in partition_state.pending.items()
        if (watermark is None or earliest <= watermark) and user.encode() not in work.states
    ]
    results = []
    for user in due:
        user_key = user.encode()
        state = _load_state(user_key, profile_config)
        results.append((user_key, state, state.activity.flush(watermark), number))
        work.states[user_key] = (state, _anchor(number))
    work.absorb_all(results)


@app.timer(1.0)
async def flush_idle_partitions() -> None:
    """Apply every buffered event of an owned partition that has had no input for ``idle_flush_s``
    and has processed every record Kafka holds for it (``_caught_up``).

    Every assigned partition is considered, not only those seen since the last rebalance: a
    partition taken over while quiet would otherwise keep its buffered events forever.
    """
    if app.rebalancing or not recovery_completed():
        return
    async with _state_lock:
        if app.rebalancing:
            return
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic in KIND_OF_TOPIC}
        for number in owned:
            _partition(number)  # loads a partition just taken over (and marks its re-send)
        await _resend_outboxes()
        now = time.monotonic()
        idle = [
            number
            for number in sorted(owned)
            if (state := _partition(number)).pending
            and now - state.last_input > settings.idle_flush_s
            and (_caught_up(number) or now - state.last_input > IDLE_PERIODS_WITHOUT_CATCH_UP * settings.idle_flush_s)
        ]
        if not idle:
            return
        work = Work()
        profile_config = _profile_config()
        try:
            for number in idle:
                _flush_pending(work, number, None, profile_config)
            # Even if a rebalance has begun: the partitions stay ours until the revocation
            # handler, which waits for this lock (and then for the pairs in flight), returns.
            await work.write_then_send()
        except Exception:
            _forget_unwritten()
            raise


def _caught_up(number: int) -> bool:
    """Whether every record Kafka holds in this partition of the event topics is processed.

    "No input for a while" alone is not idleness: a worker that has just taken a partition
    over, or is busy with other partitions, may not have read the carts that precede clicks
    it has buffered; flushing then would apply events out of event-time order.
    """
    consumer = app.consumer
    for topic in KIND_OF_TOPIC:
        tp = TP(topic, number)
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False  # not fetched yet
        done = _next_offset.get(tp)
        if done is None:
            done = committed_offset(tp) or 0
        if done < highwater:
            return False
    return True


def _rank(
    requests: list[RecommendationRequest], k: int, trending: list[tuple[str, float]]
) -> list[list[dict[str, Any]]]:
    """Runs in the ranking thread (or on the loop, for a few users): reads only what the loop
    replaces whole, never iterates it."""
    index = replica.index

    def similar(vectors: NDArray[np.float32], depth: int) -> list[tuple[Sequence[str], NDArray[np.floating]]]:
        if index is None or len(index) == 0:
            return [([], np.zeros(0)) for _ in range(len(vectors))]
        found = index.query_arrays(vectors, depth)
        return list(zip(found.ids.tolist(), found.scores, strict=True))

    ranked = recommend_many(
        requests,
        similar=similar,
        associations=lambda items: replica.rules_many(items, top_k=ASSOCIATION_DEPTH, preceding=True),
        catalog=_IndexCatalog(),
        trending=trending,
        config=replace(RANKING, top_k=k),
    )
    sources = Counter(_source_of(reason) for row in ranked for item in row for reason in item["reasons"])
    for source, count in sources.items():
        metrics.candidates.labels(source=source).inc(count)
    return ranked


def _source_of(reason: str) -> str:
    if "together with" in reason:
        return "associations"
    return "similar" if "similar" in reason else "trending"


def _query_vectors(states: Sequence[UserState], fresh: Sequence[list[str]], times: Sequence[int]) -> np.ndarray:
    """Each profile's vector at its time, blended with its items not yet in it (buffered ones,
    the triggers), one row per state: one index lookup for the items, one numpy pass."""
    if not states:
        return np.zeros((0, _profile_config().dimension), dtype=np.float32)
    vectors, _ = _item_vectors([item for items in fresh for item in items], states[0].profile.config.dimension)
    profiles = query_vectors([state.profile for state in states], times)
    return blend_query_vectors(profiles, vectors, [len(items) for items in fresh])


async def _answer(
    answered: list[Answer], states: dict[bytes, UserState]
) -> tuple[list[Any], dict[bytes, tuple[Any, bytes]]]:
    """Publish one recommendation per answered event and the ad targets; return the sends."""
    if not answered:
        return [], {}
    k = settings.recommendations
    per_user: dict[bytes, list[Answer]] = defaultdict(list)
    for answer in answered:
        per_user[answer.event.user_id.encode()].append(answer)
    users = list(per_user)
    fresh, times, widths = [], [], []
    for user_key in users:
        state, user_answers = states[user_key], per_user[user_key]
        pending = [event.item_id for _, _, event in sorted(state.activity.pending, key=lambda entry: entry[:2])]
        triggers = list(dict.fromkeys(answer.event.item_id for answer in user_answers))
        fresh.append(pending + triggers)
        times.append(max(answer.event.ts for answer in user_answers))
        widths.append(len(triggers))
    vectors = _query_vectors([states[user_key] for user_key in users], fresh, times)
    requests = [
        RecommendationRequest(
            user_id=user_key.decode(),
            query_vector=vector,
            recent_items=[item for item, _, _ in states[user_key].profile.recent] + items,
            purchased=frozenset(states[user_key].profile.purchased),
        )
        for user_key, vector, items in zip(users, vectors, fresh, strict=True)
    ]
    depth = k + min(max(widths), 10)
    trending = replica.trending(TRENDING_DEPTH)
    if len(requests) < RANK_IN_THREAD_FROM:
        ranked = _rank(requests, depth, trending)
    else:
        ranked = await asyncio.get_running_loop().run_in_executor(_ranking_executor, _rank, requests, depth, trending)

    model = f"{replica.model_version}|items:{replica.size}"
    latest: dict[bytes, tuple[Any, bytes]] = {}
    answers: list[tuple[bytes, bytes]] = []
    now = time.time()
    for user_key, items in zip(users, ranked, strict=True):
        shaped = records.recommended_items(items[: k + 1])  # an answer leaves out one item at most: its trigger
        for answer in per_user[user_key]:
            event = answer.event
            chosen = [item for item in shaped if item["item_id"] != event.item_id][:k]
            value = records.cross_recommendation_of(
                user_id=event.user_id,
                trigger_event_id=event.event_id,
                trigger_item_id=event.item_id,
                ts=event.ts,
                items=chosen,
                model=model,
            )
            answers.append((user_key, value))
            latest[user_key] = (answer.source, value)
            produced_ms = answer.source.message.timestamp
            if produced_ms:
                metrics.end_to_end_latency.observe(max(0.0, now - produced_ms / 1000.0))
    futures = await publish_many(recommendations_topic, answers)
    metrics.recommendations.inc(len(answers))
    await _send_ad_targets(users, states, per_user, futures)
    return futures, latest


async def _send_ad_targets(
    users: list[bytes],
    states: dict[bytes, UserState],
    per_user: dict[bytes, list[Answer]],
    futures: list[Any],
) -> None:
    targeter = replica.ads
    if not targeter.campaigns:
        return
    ids, vectors, affinities, timestamps, triggers = [], [], [], [], []
    lasts = [max(per_user[user_key], key=lambda answer: answer.event.ts) for user_key in users]
    blended = _query_vectors(
        [states[user_key] for user_key in users],
        [[answer.event.item_id for answer in per_user[user_key]] for user_key in users],
        [last.event.ts for last in lasts],
    )
    for user_key, last, vector in zip(users, lasts, blended, strict=True):
        state = states[user_key]
        if not np.any(vector):
            continue
        user_id = user_key.decode()
        for campaign_id, times in state.ad_caps.items():
            targeter.cap.sent[(user_id, campaign_id)] = deque(times)
        ids.append(user_id)
        vectors.append(vector)
        affinities.append(state.profile.category_affinity())
        timestamps.append(last.event.ts)
        triggers.append(last.event.event_id)
    if not ids:
        return
    targets = targeter.target_many(ids, np.stack(vectors), affinities, timestamps)
    trigger_of = dict(zip(ids, triggers, strict=True))
    sends = [
        (
            target.user_id.encode(),
            records.ad_target(
                user_id=target.user_id,
                campaign_id=target.campaign_id,
                score=target.score,
                ts=target.ts,
                trigger_event_id=trigger_of[target.user_id],
            ),
        )
        for target in targets
    ]
    futures.extend(await publish_many(ad_targets_topic, sends))
    metrics.ad_targets.inc(len(targets))
    # The caps live with the user (in the table), not in the worker's memory.
    mine = set(ids)
    for (user_id, campaign_id), sent_times in list(targeter.cap.sent.items()):
        if user_id in mine:
            if sent_times:
                states[user_id.encode()].ad_caps[campaign_id] = list(sent_times)
            del targeter.cap.sent[(user_id, campaign_id)]


@app.agent(events_topic, name="xsell-interactions")
async def interactions(stream: Any) -> None:
    """Validate, count, profile and answer every click, cart and purchase."""
    await replica.ready.wait()
    try:
        await _take_batches(stream)
    finally:  # stopping: the last batch's pairs leave before the producer stops
        await _in_flight.settle()


async def _take_batches(stream: Any) -> None:
    async for batch in take_batches(stream, settings.batch_size, settings.batch_within_s, fill_from=BACKLOG_BATCH):
        started = time.perf_counter()
        metrics.batch_size.labels(agent="interactions").observe(len(batch))
        async with _state_lock:
            try:
                await process_batch(batch)
            except Exception as exc:  # a bug must not lose the batch: park it where it can be replayed
                _forget_unwritten()
                log.exception("interactions batch failed; dead-lettering its %d records", len(batch))
                for event in batch:
                    await dead_letter(event.message, f"internal_error:{type(exc).__name__}", str(exc))
        metrics.batch_seconds.labels(agent="interactions").observe(time.perf_counter() - started)
