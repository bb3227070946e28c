"""Training pairs for fine-tuning: read them from a file, or mine them from behaviour events.

A pairs file is CSV with the header ``item_a,item_b``: two items that belong together.

Mining reads the generic events CSV (``user,item,kind,ts`` with ``kind`` in
click|cart|purchase and ``ts`` in seconds; ``user_id``/``item_id`` are accepted as column
names, and an optional ``order_id`` column groups purchases into baskets). A user's events,
sorted by event time, split into sessions wherever the gap exceeds ``session_gap_seconds``.
Two items make a pair when they were

- bought or carted together: both carted or purchased within one session (or one order), or
- viewed one after the other: consecutive distinct clicks within one session.

These are the transactions and behaviour channels of the association engine
(``stream.engine``); the rules are restated here because ``encoders`` imports nothing of
``stream``. Items per session are capped (bots, heavy users). Pairs are unordered and
de-duplicated; the most frequent come first.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from encoders.errors import TrainingDataError

__all__ = ["MiningConfig", "mine_pairs", "read_pairs"]

DEFAULT_SESSION_GAP_SECONDS = 30 * 60
DEFAULT_MAX_ITEMS_PER_SESSION = 50
BASKET_KINDS = frozenset({"cart", "purchase"})
VIEW_KIND = "click"
KINDS = BASKET_KINDS | {VIEW_KIND}
Event = tuple[float, str, str, str]
"""(ts, kind, item, order_id) of one event."""
COLUMN_ALIASES = {"user": ("user", "user_id"), "item": ("item", "item_id"), "kind": ("kind",), "ts": ("ts",)}


@dataclass(frozen=True, kw_only=True)
class MiningConfig:
    """How events become pairs."""

    session_gap_seconds: float = DEFAULT_SESSION_GAP_SECONDS
    max_items_per_session: int = DEFAULT_MAX_ITEMS_PER_SESSION


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Read ``item_a,item_b`` rows (ids as strings); pairs of an item with itself are dropped."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such pairs file")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "item_a" not in header or "item_b" not in header:
            raise TrainingDataError(
                f"{path}: the pairs header must have item_a,item_b (found: {', '.join(header) or 'nothing'})"
            )
        pairs = []
        for row in reader:
            first, second = (row.get("item_a") or "").strip(), (row.get("item_b") or "").strip()
            if not first or not second:
                raise TrainingDataError(f"{path}:{reader.line_num}: a pair needs both item_a and item_b")
            if first != second:
                pairs.append((first, second))
    if not pairs:
        raise TrainingDataError(f"{path}: no pairs of two different items")
    return pairs


def _column(header: Sequence[str], name: str, path: Path) -> str:
    for alias in COLUMN_ALIASES[name]:
        if alias in header:
            return alias
    raise TrainingDataError(
        f"{path}: the events header lacks {'/'.join(COLUMN_ALIASES[name])} (found: {', '.join(header)})"
    )


def _read_events(path: Path) -> dict[str, list[Event]]:
    """User → [(ts, kind, item, order_id)] from the generic events CSV."""
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such events file")
    by_user: dict[str, list[Event]] = defaultdict(list)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if not header:
            raise TrainingDataError(f"{path}: the events file is empty")
        user, item, kind, ts = (_column(header, name, path) for name in ("user", "item", "kind", "ts"))
        order = "order_id" if "order_id" in header else None
        for row in reader:
            event_kind = (row[kind] or "").strip().lower()
            if event_kind not in KINDS:
                raise TrainingDataError(
                    f"{path}:{reader.line_num}: kind must be click, cart or purchase, got {row[kind]!r}"
                )
            try:
                when = float(row[ts])
            except (TypeError, ValueError) as exc:
                where = f"{path}:{reader.line_num}"
                raise TrainingDataError(f"{where}: ts must be seconds, got {row[ts]!r}") from exc
            order_id = (row.get(order) or "") if order else ""
            by_user[row[user]].append((when, event_kind, row[item], order_id))
    return by_user


def _sessions(events: list[Event], gap: float) -> list[list[Event]]:
    events.sort(key=lambda event: event[0])
    sessions: list[list[Event]] = [[events[0]]]
    for previous, event in zip(events, events[1:], strict=False):
        if event[0] - previous[0] > gap:
            sessions.append([])
        sessions[-1].append(event)
    return sessions


def _ordered(first: str, second: str) -> tuple[str, str]:
    return (first, second) if first <= second else (second, first)


def mine_pairs(path: str | Path, config: MiningConfig | None = None) -> list[tuple[str, str]]:
    """Pairs of items bought/carted together or viewed one after the other (see module doc)."""
    config = config or MiningConfig()
    path = Path(path)
    counts: Counter[tuple[str, str]] = Counter()
    for events in _read_events(path).values():
        for session in _sessions(events, config.session_gap_seconds):
            session = session[: config.max_items_per_session]
            baskets: dict[str, set[str]] = defaultdict(set)
            for _, kind, item, order_id in session:
                if kind in BASKET_KINDS:
                    baskets[order_id or "session"].add(item)
            for basket in baskets.values():
                counts.update(_ordered(a, b) for a, b in combinations(sorted(basket), 2))
            views = [item for _, kind, item, _ in session if kind == VIEW_KIND]
            counts.update(_ordered(a, b) for a, b in zip(views, views[1:], strict=False) if a != b)
    if not counts:
        raise TrainingDataError(f"{path}: the events give no pairs (no baskets or consecutive views)")
    return [pair for pair, _ in counts.most_common()]
