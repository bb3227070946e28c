"""Reading basket files and event logs into what the engine consumes.

* Transactions file (``groceries.csv``): one basket per line, items comma-separated,
  surrounding white space stripped, empty fields and repeats within a line ignored.
* Baskets CSV: header ``basket_id,item_id``, one line per basket line, any order.
* Taobao UserBehavior (``user_id,item_id,category_id,behavior_type,timestamp``, seconds):
  ``pv`` → click, ``cart`` → cart, ``buy`` → purchase, and ``fav`` (saving for later, an
  intent stronger than a view) → cart. Events get ``event_id`` = line number and are
  returned sorted by event time (stable), with each item's category.
* RetailRocket ``events.csv`` (header ``timestamp,visitorid,event,itemid,transactionid``,
  milliseconds; extra columns such as the sample's ``datetime`` are ignored): ``view`` →
  click, ``addtocart`` → cart, ``transaction`` → purchase (``order_id`` = transactionid).
* Generic events CSV (header ``user,item,kind,ts``; kind click|cart|purchase; ts in seconds,
  decimals allowed).

Every event reader returns raw event dicts (``event_id`` = line number, ``ts`` in epoch
milliseconds) sorted by event time, stable, so equal times keep file order.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from stream.engine.errors import InputFormatError

__all__ = [
    "GENERIC_HEADER",
    "RETAILROCKET_KINDS",
    "TAOBAO_KINDS",
    "read_baskets_csv",
    "read_events_csv",
    "read_retailrocket",
    "read_taobao",
    "read_transactions",
]

TAOBAO_KINDS = {"pv": "click", "cart": "cart", "fav": "cart", "buy": "purchase"}
RETAILROCKET_KINDS = {"view": "click", "addtocart": "cart", "transaction": "purchase"}
RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid")
GENERIC_HEADER = ("user", "item", "kind", "ts")
GENERIC_KINDS = ("click", "cart", "purchase")


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


def _header(path: Path, reader: Any, required: tuple[str, ...]) -> dict[str, int]:
    header = [name.strip() for name in next(reader, [])]
    missing = [name for name in required if name not in header]
    if missing:
        raise InputFormatError(
            f"{path}:1: expected a header with {','.join(required)}, found {','.join(header)!r}"
        )
    return {name: header.index(name) for name in header}


def read_retailrocket(path: Path) -> list[dict[str, Any]]:
    """RetailRocket events as raw dicts sorted by event time (stable)."""
    events: list[dict[str, Any]] = []
    line = 1
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            columns = _header(path, reader, RETAILROCKET_COLUMNS)
            at_ts, at_user, at_kind, at_item = (columns[name] for name in RETAILROCKET_COLUMNS)
            at_order = columns.get("transactionid")
            width = max(at_ts, at_user, at_kind, at_item) + 1
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < width or row[at_kind] not in RETAILROCKET_KINDS or not row[at_user] or not row[at_item]:
                    raise InputFormatError(f"{path}:{line}: not a RetailRocket event row: {','.join(row)!r}")
                event: dict[str, Any] = {
                    "event_id": str(line),
                    "user_id": row[at_user],
                    "item_id": row[at_item],
                    "kind": RETAILROCKET_KINDS[row[at_kind]],
                    "ts": int(row[at_ts]),
                }
                if at_order is not None and at_order < len(row) and row[at_order]:
                    event["order_id"] = row[at_order]
                events.append(event)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"{path}: cannot read RetailRocket events: {exc}") from exc
    except ValueError as exc:
        raise InputFormatError(f"{path}:{line}: bad timestamp: {exc}") from exc
    if not events:
        raise InputFormatError(f"{path}: no events found")
    events.sort(key=lambda event: event["ts"])
    return events


def read_events_csv(path: Path) -> list[dict[str, Any]]:
    """A generic ``user,item,kind,ts`` (seconds) CSV as raw dicts sorted by event time (stable)."""
    events: list[dict[str, Any]] = []
    line = 1
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            columns = _header(path, reader, GENERIC_HEADER)
            at_user, at_item, at_kind, at_ts = (columns[name] for name in GENERIC_HEADER)
            width = max(at_user, at_item, at_kind, at_ts) + 1
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                fields = [field.strip() for field in row]
                if len(fields) < width or not fields[at_user] or not fields[at_item]:
                    raise InputFormatError(f"{path}:{line}: expected 'user,item,kind,ts', found {','.join(row)!r}")
                if fields[at_kind] not in GENERIC_KINDS:
                    raise InputFormatError(
                        f"{path}:{line}: kind must be click, cart or purchase, found {fields[at_kind]!r}"
                    )
                events.append(
                    {
                        "event_id": str(line),
                        "user_id": fields[at_user],
                        "item_id": fields[at_item],
                        "kind": fields[at_kind],
                        "ts": round(float(fields[at_ts]) * 1000),
                    }
                )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"{path}: cannot read events: {exc}") from exc
    except (ValueError, OverflowError) as exc:
        raise InputFormatError(f"{path}:{line}: ts must be a number of seconds: {exc}") from exc
    if not events:
        raise InputFormatError(f"{path}: no events found")
    events.sort(key=lambda event: event["ts"])
    return events
