"""Per-user ordering, de-duplication, sessions and pair generation (the interactions side).

One ``UserActivity`` per user; it is what the interactions agent keeps in a table keyed by
user (``to_bytes``/``from_bytes``). Its job, per batch of that user's validated events:

1. **De-duplicate** by ``event_id`` against a bounded memory of the user's most recent
   ``dedup_capacity`` ids (and the events still buffered): a replay is reported as
   ``duplicate`` and changes nothing.
2. **Order by event time.** Events wait in a buffer until the user's watermark
   (the largest ``ts`` seen minus ``allowed_lateness_ms``) has passed them, then are applied
   in ``(ts, event_id)`` order. So any arrival order in which no event comes later than the
   lateness gives the same result. An event older than the watermark when it arrives, or
   older than an event already applied (``flush`` applies buffered events before the
   watermark passes them: a stream partition that went idle), is rejected with reason
   ``too_late`` (the stream dead-letters it): it changes nothing, where applying it after
   a newer event would count its pairs in the wrong direction. A replay older than both the
   id memory and the watermark is therefore also harmless.
3. **Sessions** (the transactions): a user's applied events with no gap longer than
   ``session_gap_ms``. Each new session is one transaction (reported in ``opened``).
4. **Pairs**, directed by event time, in five channels (click→click, click→cart,
   click→purchase, cart→purchase, purchase→purchase): within one session, the pair
   (A as kind a) → (B as kind b) is counted once if some a-event of A is at or before some
   b-event of B. Equal times count both ways; purchase lines of one ``order_id`` count both
   ways whatever their times (an order's basket has no inner order). Only the first
   ``max_items_per_session`` distinct items of a session take part; an event pairs with at
   most ``max_pairs_per_event`` partners per channel, the most recently seen first.
   The first time item X shows up as kind k in a session, an occurrence of (X, k) is
   reported: that is the item count the metrics need. The event that opens a session marks
   its own update ``opens``: N is then counted with the items, by ``event_id`` like
   everything else, so a replay cannot count a transaction twice.

Output messages are ``ItemUpdate`` tuples keyed by the *antecedent* item: at most one per
(event, item), so the co-occurrence side can de-duplicate by ``event_id`` per item.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from stream.engine.errors import EngineConfigError, StateFormatError
from stream.engine.events import CART, CLICK, PURCHASE, Event

__all__ = [
    "CHANNELS",
    "IngestResult",
    "ItemUpdate",
    "SessionConfig",
    "UserActivity",
    "channel_name",
]

DEFAULT_SESSION_GAP_MS = 30 * 60 * 1000
DEFAULT_ALLOWED_LATENESS_MS = 5 * 60 * 1000
DEFAULT_MAX_ITEMS_PER_SESSION = 100
DEFAULT_MAX_PAIRS_PER_EVENT = 50
DEFAULT_USER_DEDUP_CAPACITY = 1024
STATE_VERSION = 1


def channel_name(antecedent_kind: str, consequent_kind: str) -> str:
    return f"{antecedent_kind}->{consequent_kind}"


CHANNELS = tuple(
    channel_name(a, b)
    for a, b in ((CLICK, CLICK), (CLICK, CART), (CLICK, PURCHASE), (CART, PURCHASE), (PURCHASE, PURCHASE))
)
# For an event of kind k: the channels in which k is the consequent (partners seen earlier),
# and those in which k is the antecedent (partners at the same time, counted the other way).
_AS_CONSEQUENT = {
    CLICK: ((CLICK, "click->click"),),
    CART: ((CLICK, "click->cart"),),
    PURCHASE: ((CLICK, "click->purchase"), (CART, "cart->purchase"), (PURCHASE, "purchase->purchase")),
}
_AS_ANTECEDENT = {
    CLICK: ((CLICK, "click->click"), (CART, "click->cart"), (PURCHASE, "click->purchase")),
    CART: ((PURCHASE, "cart->purchase"),),
    PURCHASE: ((PURCHASE, "purchase->purchase"),),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """How events become transactions and pairs; ``None`` caps mean unbounded."""

    session_gap_ms: int = DEFAULT_SESSION_GAP_MS
    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    max_items_per_session: int | None = DEFAULT_MAX_ITEMS_PER_SESSION
    max_pairs_per_event: int | None = DEFAULT_MAX_PAIRS_PER_EVENT
    dedup_capacity: int = DEFAULT_USER_DEDUP_CAPACITY

    def __post_init__(self) -> None:
        if self.session_gap_ms < 0 or self.allowed_lateness_ms < 0:
            raise EngineConfigError("session gap and allowed lateness must be >= 0 ms")
        for name in ("max_items_per_session", "max_pairs_per_event"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise EngineConfigError(f"{name} must be at least 1 or None, got {value}")


class ItemUpdate(NamedTuple):
    """What one event changes for one item (the message key): occurrences and new partners."""

    item_id: str
    event_id: str
    ts: int
    occurrence: str | None  # the kind, when the item shows up as that kind for the first time in a session
    partners: tuple[tuple[str, str], ...]  # (consequent item, channel)
    transaction: str = ""  # "user:session-start", for tracing
    opens: bool = False  # this event opened its transaction: N counts it once, with this item


class IngestResult:
    """The outcome of one batch for one user (a plain slotted class: one is made per user batch)."""

    __slots__ = ("applied", "updates", "opened", "duplicates", "too_late")

    def __init__(self) -> None:
        self.applied: list[Event] = []
        self.updates: list[ItemUpdate] = []
        self.opened: list[int] = []  # start time of each new transaction
        self.duplicates: list[Event] = []
        self.too_late: list[Event] = []

    def extend(self, other: IngestResult) -> None:
        self.applied.extend(other.applied)
        self.updates.extend(other.updates)
        self.opened.extend(other.opened)
        self.duplicates.extend(other.duplicates)
        self.too_late.extend(other.too_late)


class UserActivity:
    """One user's buffer, id memory, open session and pair generator (see the module docstring)."""

    __slots__ = (
        "config",
        "max_ts",
        "pending",
        "pending_ids",
        "recent_ids",
        "recent_order",
        "session_start",
        "session_last",
        "items",
        "latest",
        "orders",
        "emitted",
        "transactions",
    )

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self.max_ts: int | None = None
        self.pending: list[tuple[int, str, Event]] = []
        self.pending_ids: set[str] = set()
        self.recent_ids: set[str] = set()
        self.recent_order: deque[str] = deque()
        self.session_start: int | None = None
        self.session_last: int | None = None
        self.items: set[str] = set()
        # kind -> {item: latest ts as that kind}, in order of latest occurrence
        self.latest: dict[str, dict[str, int]] = {CLICK: {}, CART: {}, PURCHASE: {}}
        self.orders: dict[str, list[str]] = {}
        self.emitted: set[tuple[str, str, str]] = set()
        self.transactions = 0

    @property
    def watermark(self) -> int | None:
        """Events with ``ts`` below this are applied; later arrivals below it are too late."""
        return None if self.max_ts is None else self.max_ts - self.config.allowed_lateness_ms

    # -- ingestion -------------------------------------------------------------------------

    def ingest(self, events: Iterable[Event]) -> IngestResult:
        """Admit a batch of this user's events and apply those the watermark has passed."""
        result = IngestResult()
        for event in events:
            self._admit(event, result)
        self._drain(self.watermark, result)
        return result

    def flush(self, watermark: int | None = None) -> IngestResult:
        """Apply buffered events below ``watermark`` (all of them when None): end of a replay,
        or a partition-wide watermark pushed by the stream for idle users."""
        result = IngestResult()
        self._drain(watermark, result, everything=watermark is None)
        return result

    def _admit(self, event: Event, result: IngestResult) -> None:
        event_id = event.event_id
        if event_id in self.recent_ids or event_id in self.pending_ids:
            result.duplicates.append(event)
            return
        watermark = self.watermark
        if (watermark is not None and event.ts < watermark) or (
            self.session_last is not None and event.ts < self.session_last
        ):
            result.too_late.append(event)
            return
        heapq.heappush(self.pending, (event.ts, event_id, event))
        self.pending_ids.add(event_id)
        if self.max_ts is None or event.ts > self.max_ts:
            self.max_ts = event.ts

    def _remember(self, event_id: str) -> None:
        self.recent_ids.add(event_id)
        self.recent_order.append(event_id)
        if len(self.recent_order) > self.config.dedup_capacity:
            self.recent_ids.discard(self.recent_order.popleft())

    def _drain(self, watermark: int | None, result: IngestResult, everything: bool = False) -> None:
        pending = self.pending
        while pending and (everything or (watermark is not None and pending[0][0] < watermark)):
            _, event_id, event = heapq.heappop(pending)
            self.pending_ids.discard(event_id)
            self._remember(event_id)
            result.applied.append(event)
            self._apply(event, result)

    # -- sessions and pairs ----------------------------------------------------------------

    def _open_session(self, ts: int, result: IngestResult) -> None:
        self.session_start = ts
        self.items = set()
        self.latest = {CLICK: {}, CART: {}, PURCHASE: {}}
        self.orders = {}
        self.emitted = set()
        self.transactions += 1
        result.opened.append(ts)

    def _apply(self, event: Event, result: IngestResult) -> None:
        ts, item, kind = event.ts, event.item_id, event.kind
        config = self.config
        opens = self.session_last is None or ts - self.session_last > config.session_gap_ms
        if opens:
            self._open_session(ts, result)
        self.session_last = ts
        items = self.items
        if item not in items:
            cap = config.max_items_per_session
            if cap is not None and len(items) >= cap:
                return
            items.add(item)
        latest = self.latest
        seen_as_kind = latest[kind]
        occurrence = None
        if item in seen_as_kind:
            del seen_as_kind[item]  # re-insert below so the order follows the latest occurrence
        else:
            occurrence = kind
        seen_as_kind[item] = ts

        emitted = self.emitted
        max_pairs = config.max_pairs_per_event
        by_antecedent: dict[str, list[tuple[str, str]]] = {}
        own: list[tuple[str, str]] = []
        for antecedent_kind, channel in _AS_CONSEQUENT[kind]:
            taken = 0
            for partner in reversed(latest[antecedent_kind]):
                if partner == item:
                    continue
                if max_pairs is not None and taken >= max_pairs:
                    break
                taken += 1
                key = (partner, item, channel)
                if key not in emitted:
                    emitted.add(key)
                    by_antecedent.setdefault(partner, []).append((item, channel))
        for consequent_kind, channel in _AS_ANTECEDENT[kind]:
            taken = 0
            seen = latest[consequent_kind]
            for partner in reversed(seen):
                if seen[partner] < ts:
                    break
                if partner == item:
                    continue
                if max_pairs is not None and taken >= max_pairs:
                    break
                taken += 1
                key = (item, partner, channel)
                if key not in emitted:
                    emitted.add(key)
                    own.append((partner, channel))
        if kind == PURCHASE and event.order_id is not None:
            basket = self.orders.setdefault(event.order_id, [])
            purchased = latest[PURCHASE]
            for partner in basket:
                # partners bought at this very time were paired both ways above
                if partner != item and purchased.get(partner) != ts:
                    key = (item, partner, "purchase->purchase")
                    if key not in emitted:
                        emitted.add(key)
                        own.append((partner, "purchase->purchase"))
                    key = (partner, item, "purchase->purchase")
                    if key not in emitted:
                        emitted.add(key)
                        by_antecedent.setdefault(partner, []).append((item, "purchase->purchase"))
            if item not in basket:
                basket.append(item)

        event_id = event.event_id
        updates = result.updates
        if occurrence is not None or own:  # always true when the event opens the session
            updates.append(ItemUpdate(item, event_id, ts, occurrence, tuple(own), opens=opens))
        for partner, partners in by_antecedent.items():
            updates.append(ItemUpdate(partner, event_id, ts, None, tuple(partners)))

    # -- serialisation ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Versioned JSON bytes of everything but the config (which the reader supplies).

        Sets and the buffer go out in whatever order they hold (the reader rebuilds them):
        sorting them was half of a state's write.
        """
        state = {
            "v": STATE_VERSION,
            "max_ts": self.max_ts,
            "pending": [event.to_dict() for _, _, event in self.pending],
            "recent": list(self.recent_order),
            "session": [self.session_start, self.session_last],
            "items": list(self.items),
            "latest": {kind: list(seen.items()) for kind, seen in self.latest.items()},
            "orders": self.orders,
            "emitted": list(self.emitted),
            "transactions": self.transactions,
        }
        return orjson.dumps(state)

    @classmethod
    def from_bytes(cls, data: bytes, config: SessionConfig | None = None) -> UserActivity:
        try:
            state = orjson.loads(data)
            if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
                raise StateFormatError(f"user activity state version {state.get('v')!r} is not {STATE_VERSION}")
            activity = cls(config)
            activity.max_ts = state["max_ts"]
            for raw in state["pending"]:
                event = Event(**raw)
                activity.pending.append((event.ts, event.event_id, event))
                activity.pending_ids.add(event.event_id)
            heapq.heapify(activity.pending)
            # The newest ``dedup_capacity`` ids, as ``_remember`` one by one would keep them.
            capacity, recent = activity.config.dedup_capacity, state["recent"]
            recent = recent[max(0, len(recent) - capacity) :] if capacity > 0 else []
            activity.recent_order = deque(recent)
            activity.recent_ids = set(recent)
            activity.session_start, activity.session_last = state["session"]
            activity.items = set(state["items"])
            activity.latest = {kind: {item: ts for item, ts in pairs} for kind, pairs in state["latest"].items()}
            activity.orders = {order: list(items) for order, items in state["orders"].items()}
            activity.emitted = {tuple(key) for key in state["emitted"]}  # type: ignore[misc]
            activity.transactions = state["transactions"]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise StateFormatError(f"not a user activity state: {exc}") from exc
        return activity
