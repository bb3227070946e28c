"""A batch of validated events as columns of integer codes: what the batched engine path eats.

``validate_columns`` accepts exactly what ``validate_event`` accepts and rejects the rest with
the same reasons, because every record its fast check does not recognise as plainly
well-formed (a dict, or JSON bytes of one, with string/integer ids, integer ``ts`` in range,
no ``session_id``/``quantity``/``price``) goes through ``validate_event`` itself. A batch
whose records are all plain dicts (or all JSON bytes of dicts) with string ids is first
checked column by column (one pass per field instead of one Python step per record); if
any check fails, the batch goes through the record-by-record route instead. Ids are
turned into dense integer codes (``Codebook``) in the same pass, so later steps sort and
join integers with numpy instead of hashing strings per pair. ``Event`` objects are only
built on demand (``EventColumns.event``): for rejections, the sequential fallback and
profiles.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from stream.engine.errors import InvalidEvent
from stream.engine.events import DEFAULT_VALIDATION, KINDS, Event, Rejection, ValidationConfig, validate_event

__all__ = ["KIND_CODES", "NO_ORDER", "Codebook", "EventColumns", "columns_from_events", "validate_columns"]

KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
_REQUIRED = ("event_id", "user_id", "item_id", "ts")  # and ``kind`` when the topic does not give it
NO_ORDER = -1


class Codebook:
    """Dense integer codes for strings (items, users, orders), in order of first sight."""

    __slots__ = ("codes", "names")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def code(self, name: str) -> int:
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code


@dataclass(slots=True)
class EventColumns:
    """Accepted events of one batch in input order; ``orders`` is ``NO_ORDER`` when absent."""

    event_ids: list[str]
    users: NDArray[np.int64]
    items: NDArray[np.int64]
    kinds: NDArray[np.int8]
    ts: NDArray[np.int64]
    orders: NDArray[np.int64]
    events: list[Event | None]  # the Event when one was built (or given), else None
    sources: list[Any]  # the raw input of each row, to build its Event on demand
    kind: str | None = None
    now_ms: int = 0
    config: ValidationConfig = DEFAULT_VALIDATION

    def __len__(self) -> int:
        return len(self.event_ids)

    def event(self, row: int) -> Event:
        """The row's ``Event`` (validating its raw input again, which cannot fail, if needed)."""
        event = self.events[row]
        if event is None:
            event = self.events[row] = validate_event(
                self.sources[row], kind=self.kind, now_ms=self.now_ms, config=self.config
            )
        return event


def _identifier(value: Any, limit: int) -> str | None:
    kind = type(value)
    if kind is str:
        return value if 0 < len(value) <= limit else None
    if kind is int:
        return str(value)
    return None


def _identifiers(values: Sequence[Any], limit: int) -> bool:
    """All plain non-empty strings of at most ``limit`` characters."""
    return set(map(type, values)) == {str} and "" not in values and max(map(len, values)) <= limit


def _coded(names: Sequence[str], codebook: Codebook) -> NDArray[np.int64]:
    """Codes of ``names``, new names coded in order of first sight (``Codebook.code`` in bulk)."""
    codes = codebook.codes
    new = [name for name in dict.fromkeys(names) if name not in codes]
    if new:
        codes.update(zip(new, range(len(codebook.names), len(codebook.names) + len(new)), strict=True))
        codebook.names.extend(new)
    return np.array([codes[name] for name in names], dtype=np.int64)


def _clean_batch(
    raws: list[Any],
    *,
    users: Codebook,
    items: Codebook,
    orders: Codebook,
    kind: str | None,
    min_ts: int,
    max_ts: int,
    config: ValidationConfig,
) -> EventColumns | None:
    """The whole batch as columns when every record passes the fast checks, else None."""
    kinds_of_raws = set(map(type, raws))
    if kinds_of_raws == {bytes}:
        if max(map(len, raws)) > config.max_message_bytes:
            return None
        try:
            records = [orjson.loads(raw) for raw in raws]
        except orjson.JSONDecodeError:
            return None
        if set(map(type, records)) != {dict}:
            return None
    elif kinds_of_raws == {dict}:
        records = raws
    else:
        return None
    limit = config.max_field_length
    size = len(records)
    # when every record holds exactly the required fields (checked below), nothing else is there
    only_required = set(map(len, records)) == {len(_REQUIRED) + (kind is None)}
    if not only_required:
        for name in ("session_id", "quantity", "price"):
            if [record.get(name) for record in records].count(None) != size:
                return None
    try:  # one pass over the records (dicts all over memory), not one per field
        fields = list(zip(*map(itemgetter(*_REQUIRED, *(("kind",) if kind is None else ())), records), strict=True))
    except KeyError:
        return None
    event_ids, user_ids, item_ids, stamps = fields[:4]
    if not (_identifiers(event_ids, limit) and _identifiers(user_ids, limit) and _identifiers(item_ids, limit)):
        return None
    if set(map(type, stamps)) != {int}:
        return None
    try:
        ts = np.array(stamps, dtype=np.int64)
    except OverflowError:
        return None
    if int(ts.min()) < min_ts or int(ts.max()) > max_ts:
        return None
    if kind is None:
        names = fields[4]
        if set(map(type, names)) != {str}:
            return None
        codes = list(map(KIND_CODES.get, names))
        if None in codes:
            return None
        kinds = np.array(codes, dtype=np.int8)
    elif kind in KIND_CODES:
        kinds = np.full(size, KIND_CODES[kind], dtype=np.int8)
    else:
        return None
    order_ids = [None] if only_required else [record.get("order_id") for record in records]
    if order_ids.count(None) == len(order_ids):
        order_codes = np.full(size, NO_ORDER, dtype=np.int64)
    else:
        named = [order for order in order_ids if order is not None]
        if not _identifiers(named, limit):
            return None
        code = orders.code
        order_codes = np.array([NO_ORDER if order is None else code(order) for order in order_ids], dtype=np.int64)
    return EventColumns(
        list(event_ids),
        _coded(user_ids, users),
        _coded(item_ids, items),
        kinds,
        ts,
        order_codes,
        [None] * size,
        list(records),
    )


def validate_columns(
    raws: Iterable[bytes | str | Mapping[str, Any]],
    *,
    users: Codebook,
    items: Codebook,
    orders: Codebook,
    kind: str | None = None,
    now_ms: int | None = None,
    config: ValidationConfig = DEFAULT_VALIDATION,
) -> tuple[EventColumns, list[Rejection]]:
    """``validate_many`` into columns: same accepted events, same rejections, coded ids."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    limit = config.max_field_length
    min_ts, max_ts = config.min_ts_ms, now_ms + config.max_future_ms
    raws = raws if isinstance(raws, list) else list(raws)
    if raws:
        clean = _clean_batch(
            raws, users=users, items=items, orders=orders, kind=kind, min_ts=min_ts, max_ts=max_ts, config=config
        )
        if clean is not None:
            clean.kind, clean.now_ms, clean.config = kind, now_ms, config
            return clean, []
    max_bytes = config.max_message_bytes
    fixed_kind = KIND_CODES.get(kind) if type(kind) is str else None
    event_ids: list[str] = []
    user_codes: list[int] = []
    item_codes: list[int] = []
    kind_codes: list[int] = []
    stamps: list[int] = []
    order_codes: list[int] = []
    events: list[Event | None] = []
    sources: list[Any] = []
    rejected: list[Rejection] = []
    user_code, item_code, order_code = users.code, items.code, orders.code
    for index, raw in enumerate(raws):
        record: Any = raw
        if type(raw) is bytes and len(raw) <= max_bytes:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                record = None
        fast = type(record) is dict
        if fast:
            assert isinstance(record, dict)
            if kind is None:
                found = record.get("kind")
                code = KIND_CODES.get(found) if type(found) is str else None
            else:
                code = fixed_kind
            event_id = _identifier(record.get("event_id"), limit)
            user = _identifier(record.get("user_id"), limit)
            item = _identifier(record.get("item_id"), limit)
            ts = record.get("ts")
            order = record.get("order_id")
            order_id = None if order is None else _identifier(order, limit)
            fast = (
                code is not None
                and event_id is not None
                and user is not None
                and item is not None
                and type(ts) is int
                and min_ts <= ts <= max_ts
                and (order is None or order_id is not None)
                and record.get("session_id") is None
                and record.get("quantity") is None
                and record.get("price") is None
            )
        if fast:
            event_ids.append(event_id)  # type: ignore[arg-type]
            user_codes.append(user_code(user))  # type: ignore[arg-type]
            item_codes.append(item_code(item))  # type: ignore[arg-type]
            kind_codes.append(code)  # type: ignore[arg-type]
            stamps.append(ts)  # type: ignore[arg-type]
            order_codes.append(NO_ORDER if order_id is None else order_code(order_id))
            events.append(None)
            sources.append(record)
            continue
        try:
            event = validate_event(raw, kind=kind, now_ms=now_ms, config=config)
        except InvalidEvent as exc:
            rejected.append(Rejection(exc.reason, exc.detail, index, raw))
            continue
        event_ids.append(event.event_id)
        user_codes.append(user_code(event.user_id))
        item_codes.append(item_code(event.item_id))
        kind_codes.append(KIND_CODES[event.kind])
        stamps.append(event.ts)
        order_codes.append(NO_ORDER if event.order_id is None else order_code(event.order_id))
        events.append(event)
        sources.append(raw)
    columns = EventColumns(
        event_ids,
        np.array(user_codes, dtype=np.int64),
        np.array(item_codes, dtype=np.int64),
        np.array(kind_codes, dtype=np.int8),
        np.array(stamps, dtype=np.int64),
        np.array(order_codes, dtype=np.int64),
        events,
        sources,
        kind,
        now_ms,
        config,
    )
    return columns, rejected


def columns_from_events(
    events: Sequence[Event], *, users: Codebook, items: Codebook, orders: Codebook
) -> EventColumns:
    """Already validated events as columns (they are kept, so no Event is built again)."""
    user_code, item_code, order_code = users.code, items.code, orders.code
    return EventColumns(
        [event.event_id for event in events],
        np.array([user_code(event.user_id) for event in events], dtype=np.int64),
        np.array([item_code(event.item_id) for event in events], dtype=np.int64),
        np.array([KIND_CODES[event.kind] for event in events], dtype=np.int8),
        np.array([event.ts for event in events], dtype=np.int64),
        np.array(
            [NO_ORDER if event.order_id is None else order_code(event.order_id) for event in events],
            dtype=np.int64,
        ),
        list(events),
        list(events),
    )
