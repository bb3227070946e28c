"""What the pipeline benchmark replays: real Taobao events onto a synthetic 50k-item catalog.

* **Events**: ``UserBehavior`` rows read with the engine's ``read_taobao`` (sorted by event
  time, so users interleave instead of coming in the file's user-grouped blocks). Each
  Taobao item id is mapped onto one catalog item by a stable hash (blake2b), so the real
  users, sessions and co-occurrences act on items that all have vectors in the index.
  The run needs more events than the file holds at a fixed rate for long enough, so the
  replay cycles: round ``r`` prefixes the event ids with ``r<r>:`` and shifts the times by
  ``r`` times the file's span (plus an hour), keeping ids unique and time moving forward.
* **Catalog**: encoding 50,000 titles with BERT on two CPU cores would take most of an hour,
  so the item vectors are clustered random unit vectors (``index.clustered_vectors``, the
  same data as ``xsell bench index``) written to ``item-embeddings`` exactly as the encoder
  agent writes them (``records.item_embedding``, key ``item:ID``, the encoder's
  ``model_version``, which the replica checks). The index the worker builds from them is
  the same HNSW graph it would build from real embeddings of that size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream import records
from stream.benchmarks.errors import BenchmarkError
from stream.engine.errors import InputFormatError
from stream.engine.replay import read_taobao

__all__ = [
    "DEFAULT_ITEMS",
    "EMBEDDING_DIMENSION",
    "TAOBAO_FILE",
    "Workload",
    "catalog_id",
    "embedding_messages",
    "load_workload",
]

DEFAULT_ITEMS = 50_000
EMBEDDING_DIMENSION = 384  # the default encoder's (MiniLM) output
TAOBAO_FILE = Path("taobao_userbehavior") / "UserBehavior_head84475.csv"
ROUND_GAP_MS = 3600 * 1000
TOPIC_OF_KIND = {"click": "clicks", "cart": "carts", "purchase": "purchases"}


def catalog_id(taobao_item: str, items: int) -> str:
    """The catalog item a Taobao item id stands for (stable across runs and machines)."""
    digest = hashlib.blake2b(taobao_item.encode(), digest_size=8).digest()
    return f"i{int.from_bytes(digest, 'little') % items}"


@dataclass(frozen=True)
class Workload:
    """Time-ordered events already mapped onto the catalog, and the catalog's categories."""

    events: list[dict[str, Any]]
    items: int
    categories: dict[str, str]

    @property
    def users(self) -> int:
        return len({event["user_id"] for event in self.events})

    @property
    def span_ms(self) -> int:
        return int(self.events[-1]["ts"] - self.events[0]["ts"])

    def replay(self, start: int, count: int) -> Iterator[tuple[str, bytes, bytes, str]]:
        """Events ``start .. start+count`` of the endless replay as (topic name, key, value, event id)."""
        size = len(self.events)
        shift = self.span_ms + ROUND_GAP_MS
        for position in range(start, start + count):
            round_number, row = divmod(position, size)
            event = self.events[row]
            event_id = event["event_id"] if round_number == 0 else f"r{round_number}:{event['event_id']}"
            value = orjson.dumps(
                {
                    "event_id": event_id,
                    "user_id": event["user_id"],
                    "item_id": event["item_id"],
                    "ts": event["ts"] + round_number * shift,
                }
            )
            yield TOPIC_OF_KIND[event["kind"]], event["user_id"].encode(), value, event_id


def load_workload(data_dir: Path, *, items: int = DEFAULT_ITEMS) -> Workload:
    """The Taobao events under ``data_dir`` (``../shared/data``), mapped onto ``items`` catalog items."""
    if items < 1:
        raise BenchmarkError(f"--items must be at least 1, got {items}")
    path = data_dir / TAOBAO_FILE
    if not path.is_file():
        raise BenchmarkError(f"Taobao UserBehavior not found: {path}")
    try:
        raw, taobao_categories = read_taobao(path)
    except InputFormatError as exc:
        raise BenchmarkError(str(exc)) from exc
    mapping = {taobao: catalog_id(taobao, items) for taobao in taobao_categories}
    categories: dict[str, str] = {}
    for taobao, category in taobao_categories.items():
        categories.setdefault(mapping[taobao], category)
    events = [{**event, "item_id": mapping[event["item_id"]]} for event in raw]
    return Workload(events=events, items=items, categories=categories)


def embedding_messages(
    workload: Workload, *, model_version: str, vectors: np.ndarray
) -> Iterator[tuple[bytes, bytes]]:
    """``item-embeddings`` messages (key, value) for every catalog item, as the encoder agent writes them."""
    if vectors.shape[0] != workload.items:
        raise BenchmarkError(f"{vectors.shape[0]} vectors for {workload.items} items")
    for number in range(workload.items):
        item = f"i{number}"
        yield (
            f"item:{item}".encode(),
            records.item_embedding(
                kind="item",
                id=item,
                model=model_version,
                vector=vectors[number],
                category=workload.categories.get(item),
                in_stock=True,
                title=f"catalog item {number}",
            ),
        )
