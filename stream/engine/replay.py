"""Reading basket files and event logs into what the engine consumes.

* Transactions file (``groceries.csv``): one basket per line, items comma-separated,
  surrounding white space stripped, empty fields and repeats within a line ignored.
* Baskets CSV: header ``basket_id,item_id``, one line per basket line, any order.
* Taobao UserBehavior (``user_id,item_id,category_id,behavior_type,timestamp``, seconds):
  ``pv`` → click, ``cart`` → cart, ``buy`` → purchase, and ``fav`` (saving for later, an
  intent stronger than a view) → cart. Events get ``event_id`` = line number and are
  returned sorted by event time (stable), with each item's category.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from stream.engine.errors import InputFormatError

__all__ = ["TAOBAO_KINDS", "read_baskets_csv", "read_taobao", "read_transactions"]

TAOBAO_KINDS = {"pv": "click", "cart": "cart", "fav": "cart", "buy": "purchase"}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def read_transactions(path: Path) -> list[list[str]]:
    """Baskets from a one-basket-per-line file; blank lines are skipped."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            baskets = []
            for row in csv.reader(handle):
                basket = _unique([field.strip() for field in row])
                if basket:
                    baskets.append(basket)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"{path}: cannot read transactions: {exc}") from exc
    if not baskets:
        raise InputFormatError(f"{path}: no baskets found")
    return baskets


def read_baskets_csv(path: Path) -> list[list[str]]:
    """Baskets from a ``basket_id,item_id`` CSV, in order of first appearance."""
    baskets: dict[str, list[str]] = {}
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if header[:2] != ["basket_id", "item_id"]:
                raise InputFormatError(
                    f"{path}:1: expected header 'basket_id,item_id', found {','.join(header)!r}"
                )
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < 2 or not row[0].strip() or not row[1].strip():
                    raise InputFormatError(
                        f"{path}:{line}: expected 'basket_id,item_id', found {','.join(row)!r}"
                    )
                baskets.setdefault(row[0].strip(), []).append(row[1].strip())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"{path}: cannot read baskets: {exc}") from exc
    if not baskets:
        raise InputFormatError(f"{path}: no baskets found")
    return [_unique(items) for items in baskets.values()]


def read_taobao(path: Path, limit: int | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Taobao events as raw dicts sorted by event time, and item → category."""
    events: list[dict[str, Any]] = []
    categories: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                if limit is not None and line > limit:
                    break
                if len(row) != 5 or row[3] not in TAOBAO_KINDS:
                    raise InputFormatError(f"{path}:{line}: not a UserBehavior row: {','.join(row)!r}")
                user, item, category, behaviour, seconds = row
                events.append(
                    {
                        "event_id": str(line),
                        "user_id": user,
                        "item_id": item,
                        "kind": TAOBAO_KINDS[behaviour],
                        "ts": int(seconds) * 1000,
                    }
                )
                categories[item] = category
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFormatError(f"{path}: cannot read UserBehavior: {exc}") from exc
    events.sort(key=lambda event: event["ts"])
    return events, categories
