"""The validated interaction event (click, cart, purchase) and the one validation function.

The stream (raw Kafka bytes, kind given by the topic) and the CLI (dicts read from files,
kind given by a ``kind`` field) call the same ``validate_event``. Every rejection raises
``InvalidEvent`` whose ``reason`` is one of the stable strings below, so dead letters and
metrics can be labelled with it:

``too_large``, ``not_json``, ``not_an_object``, ``unknown_kind``,
``missing_field:<f>``, ``wrong_type:<f>``, ``empty_field:<f>``, ``field_too_long:<f>``,
``bad_format:ts``, ``ts_in_future``, ``ts_too_old``, ``negative_quantity``,
``negative_price``. The per-user ordering step adds ``duplicate`` and ``too_late``
(see ``stream.engine.sessions``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.engine.errors import InvalidEvent

__all__ = [
    "CART",
    "CLICK",
    "KINDS",
    "PURCHASE",
    "REJECTION_REASONS",
    "Event",
    "Rejection",
    "ValidationConfig",
    "validate_event",
    "validate_many",
]

CLICK = "click"
CART = "cart"
PURCHASE = "purchase"
KINDS = (CLICK, CART, PURCHASE)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_MAX_FIELD_LENGTH = 256
DEFAULT_MAX_FUTURE_MS = 60 * 60 * 1000
DEFAULT_MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: older timestamps are absurd for a shop

REJECTION_REASONS = (
    "too_large",
    "not_json",
    "not_an_object",
    "unknown_kind",
    "missing_field:<field>",
    "wrong_type:<field>",
    "empty_field:<field>",
    "field_too_long:<field>",
    "bad_format:ts",
    "ts_in_future",
    "ts_too_old",
    "negative_quantity",
    "negative_price",
    "duplicate",
    "too_late",
)

_ID_FIELDS = ("event_id", "user_id", "item_id")
_OPTIONAL_ID_FIELDS = ("session_id", "order_id")


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted interaction; ``ts`` is event time in epoch milliseconds."""

    event_id: str
    user_id: str
    item_id: str
    kind: str
    ts: int
    session_id: str | None = None
    quantity: int | None = None
    price: float | None = None
    order_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict, optional fields left out when absent."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "kind": self.kind,
            "ts": self.ts,
        }
        for name in ("session_id", "quantity", "price", "order_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationConfig:
    """Bounds an event must respect; ``now_ms`` is passed per call so tests can inject it."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_field_length: int = DEFAULT_MAX_FIELD_LENGTH
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS
    min_ts_ms: int = DEFAULT_MIN_TS_MS


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected input: the reason string, a human detail, and the input's position in its batch."""

    reason: str
    detail: str = ""
    index: int = -1
    raw: Any = field(default=None, repr=False)


DEFAULT_VALIDATION = ValidationConfig()


def _identifier(record: Mapping[str, Any], name: str, max_length: int, required: bool) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise InvalidEvent(f"missing_field:{name}")
        return None
    if isinstance(value, str):
        if not value:
            raise InvalidEvent(f"empty_field:{name}")
        if len(value) > max_length:
            raise InvalidEvent(f"field_too_long:{name}", f"{len(value)} > {max_length} characters")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidEvent(f"wrong_type:{name}", f"expected string or integer, got {type(value).__name__}")


def _timestamp_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidEvent("wrong_type:ts", "expected epoch milliseconds or ISO-8601, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent("wrong_type:ts", "not a finite number")
        return int(value)
    if isinstance(value, str):
        if len(value) > 64:
            raise InvalidEvent("field_too_long:ts")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidEvent("bad_format:ts", f"not ISO-8601: {value!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise InvalidEvent(
        "wrong_type:ts", f"expected epoch milliseconds or ISO-8601, got {type(value).__name__}"
    )


def _decode(raw: bytes | str | Mapping[str, Any], config: ValidationConfig) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview, str)):
        if len(raw) > config.max_message_bytes:
            raise InvalidEvent("too_large", f"{len(raw)} > {config.max_message_bytes} bytes")
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent("not_json", str(exc).split("\n", 1)[0]) from exc
        if not isinstance(record, dict):
            raise InvalidEvent("not_an_object", f"JSON {type(record).__name__}")
        return record
    raise InvalidEvent("not_an_object", f"got {type(raw).__name__}")


def validate_event(
    raw: bytes | str | Mapping[str, Any],
    *,
    kind: str | None = None,
    now_ms: int | None = None,
    config: ValidationConfig = DEFAULT_VALIDATION,
) -> Event:
    """Turn raw JSON bytes (or an already decoded dict) into an ``Event`` or raise ``InvalidEvent``.

    ``kind`` comes from the topic; when it is None the record's own ``kind`` field is used
    (files hold all kinds at once). ``now_ms`` defaults to the wall clock; it is only used
    to reject timestamps too far in the future.
    """
    record = _decode(raw, config)
    if kind is None:
        kind = record.get("kind")
        if kind is None:
            raise InvalidEvent("missing_field:kind")
    if kind not in KINDS:
        raise InvalidEvent("unknown_kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    limit = config.max_field_length
    event_id = _identifier(record, "event_id", limit, True)
    user_id = _identifier(record, "user_id", limit, True)
    item_id = _identifier(record, "item_id", limit, True)
    if "ts" not in record or record["ts"] is None:
        raise InvalidEvent("missing_field:ts")
    ts = _timestamp_ms(record["ts"])
    if ts < config.min_ts_ms:
        raise InvalidEvent("ts_too_old", f"{ts} ms is before {config.min_ts_ms} ms")
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if ts > now_ms + config.max_future_ms:
        raise InvalidEvent("ts_in_future", f"{ts - now_ms} ms ahead of now")
    session_id = _identifier(record, "session_id", limit, False) if "session_id" in record else None
    order_id = _identifier(record, "order_id", limit, False) if "order_id" in record else None
    quantity = record.get("quantity")
    if quantity is not None:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidEvent("wrong_type:quantity", f"expected integer, got {type(quantity).__name__}")
        if quantity < 0:
            raise InvalidEvent("negative_quantity", str(quantity))
    price = record.get("price")
    if price is not None:
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price):
            raise InvalidEvent("wrong_type:price", "expected a finite number")
        if price < 0:
            raise InvalidEvent("negative_price", str(price))
        price = float(price)
    return Event(event_id, user_id, item_id, kind, ts, session_id, quantity, price, order_id)  # type: ignore[arg-type]


def validate_many(
    raws: Iterable[bytes | str | Mapping[str, Any]],
    *,
    kind: str | None = None,
    now_ms: int | None = None,
    config: ValidationConfig = DEFAULT_VALIDATION,
) -> tuple[list[Event], list[Rejection]]:
    """Validate a batch: accepted events in input order, and one ``Rejection`` per bad input."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    accepted: list[Event] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raws):
        try:
            accepted.append(validate_event(raw, kind=kind, now_ms=now_ms, config=config))
        except InvalidEvent as exc:
            rejected.append(Rejection(exc.reason, exc.detail, index, raw))
    return accepted, rejected
