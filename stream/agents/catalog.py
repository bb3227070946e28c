"""The encoder agent: catalog and campaign upserts → BERT vectors → ``item-embeddings``.

Each worker encodes the catalog partitions assigned to it, so every item is encoded once
(not once per worker); every worker then reads all of ``item-embeddings`` into its index
replica (``stream.agents.replica``). A batch is de-duplicated by key (the last upsert of a
key wins, as compaction would), encoded in one call in a worker thread so the event loop
stays responsive, and published as one message per key. Deletes (``deleted: true`` or a
tombstone) become tombstones on ``item-embeddings`` and are never dead-lettered; malformed
upserts are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from encoders import BertEncoder, item_text
from stream import records
from stream.agents.deadletters import dead_letter
from stream.app import (
    app,
    campaigns_topic,
    catalog_topic,
    item_embeddings_topic,
    metrics,
    settings,
)

__all__ = ["CatalogChange", "parse_catalog", "parse_campaign"]

log = logging.getLogger(__name__)

MAX_TEXT_FIELD = 20_000
# One thread: torch already uses every core for one batch, and batches must not overlap.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xsell-encoder")
_encoder: BertEncoder | None = None
_encoder_loaded = asyncio.Event()


class BadRecord(ValueError):
    """An upsert that cannot be encoded; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """One parsed catalog or campaign message: an upsert (with text) or a delete."""

    kind: str  # "item" or "campaign"
    id: str
    text: str | None  # None: delete
    metadata: Mapping[str, Any]

    @property
    def key(self) -> bytes:
        return f"{self.kind}:{self.id}".encode()


def _decode(key: bytes | None, value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord("not_json", str(exc)) from exc
    if not isinstance(record, dict):
        raise BadRecord("not_an_object", type(record).__name__)
    return record


def _id_of(record: Mapping[str, Any] | None, field: str, key: bytes | None) -> str:
    value = record.get(field) if record is not None else None
    if value is None and key:
        value = key.decode("utf-8", "replace")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise BadRecord(f"missing_field:{field}" if value is None else f"wrong_type:{field}")
    return str(value)


def parse_catalog(key: bytes | None, value: bytes | None) -> CatalogChange:
    """A catalog message as a change; raises ``BadRecord`` for what cannot be encoded."""
    record = _decode(key, value)
    item_id = _id_of(record, "item_id", key)
    if record is None or record.get("deleted") is True:
        return CatalogChange("item", item_id, None, {})
    title = record.get("title")
    if not isinstance(title, str) or not title.strip():
        raise BadRecord("missing_field:title" if title is None else "wrong_type:title")
    for field in ("title", "description", "category", "brand"):
        text = record.get(field)
        if text is not None and not isinstance(text, str):
            raise BadRecord(f"wrong_type:{field}")
        if isinstance(text, str) and len(text) > MAX_TEXT_FIELD:
            raise BadRecord(f"field_too_long:{field}")
    in_stock = record.get("in_stock", True)
    if not isinstance(in_stock, bool):
        raise BadRecord("wrong_type:in_stock")
    metadata = {"category": record.get("category"), "in_stock": in_stock, "title": title}
    return CatalogChange("item", item_id, item_text(record), metadata)


def parse_campaign(key: bytes | None, value: bytes | None) -> CatalogChange:
    """A campaign message as a change (inactive campaigns are deletes of their vector)."""
    record = _decode(key, value)
    campaign_id = _id_of(record, "campaign_id", key)
    if record is None or record.get("deleted") is True or record.get("active") is False:
        return CatalogChange("campaign", campaign_id, None, {})
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRecord("missing_field:text" if text is None else "wrong_type:text")
    categories = record.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise BadRecord("wrong_type:categories")
    return CatalogChange(
        "campaign", campaign_id, text[:MAX_TEXT_FIELD], {"categories": categories, "active": True}
    )


def encoder() -> BertEncoder:
    """The worker's encoder (loaded once, in the encoder thread)."""
    global _encoder
    if _encoder is None:
        _encoder = BertEncoder(settings.model_dir or None)
        log.info(
            "encoder %s on %s, dimension %d", _encoder.model_version, _encoder.device, _encoder.dimension
        )
    return _encoder


async def load_encoder() -> BertEncoder:
    loaded = await asyncio.get_running_loop().run_in_executor(_executor, encoder)
    _encoder_loaded.set()
    return loaded


def _encode(texts: list[str]) -> Any:
    return encoder().encode(texts, batch_size=settings.encoder_batch_size, normalize=True)


async def _publish_changes(changes: list[CatalogChange]) -> None:
    latest: dict[bytes, CatalogChange] = {}
    for change in changes:
        latest[change.key] = change  # the last upsert of a key wins, as compaction keeps it
    upserts = [change for change in latest.values() if change.text is not None]
    vectors = None
    if upserts:
        started = time.perf_counter()
        vectors = await asyncio.get_running_loop().run_in_executor(
            _executor, _encode, [change.text for change in upserts if change.text is not None]
        )
        metrics.encoder_batch_seconds.observe(time.perf_counter() - started)
        for change in upserts:
            metrics.encoder_items.labels(kind=change.kind).inc()
    model = encoder().model_version
    futures = []
    for row, change in enumerate(upserts):
        assert vectors is not None
        value = records.item_embedding(
            kind=change.kind, id=change.id, model=model, vector=vectors[row], **change.metadata
        )
        futures.append(await item_embeddings_topic.send(key=change.key, value=value))
    for change in latest.values():
        if change.text is None:
            futures.append(await item_embeddings_topic.send(key=change.key, value=None))
    await asyncio.gather(*futures)


async def _consume_changes(stream: Any, parse: Any) -> None:
    async for events in stream.take_events(
        settings.encoder_batch_size * 4, within=settings.batch_within_s * 4
    ):
        changes: list[CatalogChange] = []
        for event in events:
            message = event.message
            try:
                changes.append(parse(message.key, message.value))
            except BadRecord as exc:
                await dead_letter(message, exc.reason, exc.detail)
        if changes:
            await _publish_changes(changes)


@app.agent(catalog_topic, name="xsell-encoder-catalog")
async def encode_catalog(stream: Any) -> None:
    """Catalog upserts and deletes → ``item-embeddings``."""
    await _encoder_loaded.wait()
    await _consume_changes(stream, parse_catalog)


@app.agent(campaigns_topic, name="xsell-encoder-campaigns")
async def encode_campaigns(stream: Any) -> None:
    """Campaign upserts and deletes → ``item-embeddings`` (key ``campaign:ID``)."""
    await _encoder_loaded.wait()
    await _consume_changes(stream, parse_campaign)


@app.task
async def _load_encoder_on_start() -> None:
    await load_encoder()
