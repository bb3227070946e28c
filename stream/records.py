"""The JSON messages xsell writes, built in one place to match ``stream/schemas/*.json``.

Every message is plain JSON (orjson) so any consumer can read it; the schemas in
``stream/schemas`` are the contracts and ``tests/unit/test_contracts.py`` checks these
builders against them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

__all__ = [
    "DEAD_LETTER_MAX_ORIGINAL_BYTES",
    "ad_target",
    "cross_recommendation",
    "cross_recommendation_of",
    "dead_letter",
    "decode_vector",
    "encode_vector",
    "item_embedding",
    "recommended_items",
]

# The original bytes kept in a dead letter; a larger message is cut (its size is kept),
# so a dead letter always fits where the oversized original did not.
DEAD_LETTER_MAX_ORIGINAL_BYTES = 16 * 1024


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    detail: str = "",
    now_ms: int | None = None,
) -> bytes:
    """A dead-letter message: the original bytes (cut to a bound), origin and reason."""
    original = value or b""
    kept = original[:DEAD_LETTER_MAX_ORIGINAL_BYTES]
    return orjson.dumps(
        {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key_base64": base64.b64encode(key[:1024]).decode() if key is not None else None,
            "reason": reason,
            "detail": detail[:1000],
            "original_size": len(original),
            "original_base64": base64.b64encode(kept).decode(),
            "truncated": len(kept) < len(original),
            "ts": now_ms if now_ms is not None else int(time.time() * 1000),
        }
    )


def cross_recommendation(
    *,
    user_id: str,
    trigger_event_id: str,
    trigger_item_id: str,
    ts: int,
    items: Sequence[Mapping[str, Any]],
    model: str,
) -> bytes:
    """One answer to one input event."""
    return cross_recommendation_of(
        user_id=user_id,
        trigger_event_id=trigger_event_id,
        trigger_item_id=trigger_item_id,
        ts=ts,
        items=recommended_items(items),
        model=model,
    )


def recommended_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``items`` of a cross-recommendation: id, score (6 decimals) and reasons of each."""
    return [
        {"item_id": item["item_id"], "score": round(float(item["score"]), 6), "reasons": list(item["reasons"])}
        for item in items
    ]


def cross_recommendation_of(
    *,
    user_id: str,
    trigger_event_id: str,
    trigger_item_id: str,
    ts: int,
    items: list[dict[str, Any]],
    model: str,
) -> bytes:
    """``cross_recommendation`` of items already shaped by ``recommended_items`` (a user's
    events in one batch share one ranking: its items are shaped once)."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "trigger_event_id": trigger_event_id,
            "trigger_item_id": trigger_item_id,
            "ts": ts,
            "items": items,
            "model": model,
        }
    )


def ad_target(*, user_id: str, campaign_id: str, score: float, ts: int, trigger_event_id: str) -> bytes:
    return orjson.dumps(
        {
            "user_id": user_id,
            "campaign_id": campaign_id,
            "score": round(float(score), 6),
            "ts": ts,
            "trigger_event_id": trigger_event_id,
        }
    )


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(text: str, dim: int) -> np.ndarray:
    vector = np.frombuffer(base64.b64decode(text), dtype="<f4")
    if vector.shape != (dim,):
        raise ValueError(f"vector has {vector.size} values, expected {dim}")
    return vector.astype(np.float32)


def item_embedding(*, kind: str, id: str, model: str, vector: np.ndarray, **metadata: Any) -> bytes:
    """An entry of the internal item-embeddings topic (key ``kind:id``)."""
    return orjson.dumps(
        {
            "kind": kind,
            "id": id,
            "model": model,
            "dim": int(vector.shape[0]),
            "vector_base64": encode_vector(vector),
            **metadata,
        }
    )
