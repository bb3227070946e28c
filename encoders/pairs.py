"""Training pairs for fine-tuning: read them from a file, or mine them from behaviour events.

A pairs file is CSV with the header ``item_a,item_b``: two items that belong together.

Mining reads the generic events CSV (``user,item,kind,ts`` with ``kind`` in
click|cart|purchase and ``ts`` in seconds; ``user_id``/``item_id`` are accepted as column
names, and an optional ``order_id`` column marks purchase lines of one order) and runs each
user's events, in event-time order, through the association engine (``stream.engine``:
``UserActivity``, the same sessions and pair channels the stream counts). Two items make a
pair when, within one transaction (a session: no gap over ``session_gap_seconds``), they
were

- bought or carted together: the engine's ``cart->purchase`` and ``purchase->purchase``
  channels (an item carted, then one bought; two bought; lines of one order both ways), or
- viewed one after the other: the ``click->click`` channel with one partner per event,
  which is the most recently viewed other item, i.e. consecutive distinct views.

Only the first ``max_items_per_session`` distinct items of a session take part (bots,
heavy users). Pairs are unordered and de-duplicated; the most frequent come first.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from encoders.errors import TrainingDataError
from stream.engine import Event as EngineEvent
from stream.engine import SessionConfig, UserActivity

__all__ = ["MiningConfig", "mine_pairs", "read_pairs"]

DEFAULT_SESSION_GAP_SECONDS = 30 * 60
DEFAULT_MAX_ITEMS_PER_SESSION = 50
KINDS = frozenset({"click", "cart", "purchase"})
BASKET_CHANNELS = frozenset({"cart->purchase", "purchase->purchase"})
VIEW_CHANNELS = frozenset({"click->click"})
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


def _ordered(first: str, second: str) -> tuple[str, str]:
    return (first, second) if first <= second else (second, first)


def _session_config(config: MiningConfig, partners: int | None) -> SessionConfig:
    return SessionConfig(
        session_gap_ms=round(config.session_gap_seconds * 1000),
        allowed_lateness_ms=0,  # events go in sorted by time
        max_items_per_session=config.max_items_per_session,
        max_pairs_per_event=partners,
    )


def mine_pairs(path: str | Path, config: MiningConfig | None = None) -> list[tuple[str, str]]:
    """Pairs of items bought/carted together or viewed one after the other (see module doc)."""
    config = config or MiningConfig()
    path = Path(path)
    # Two passes per user: every basket partner, and the one most recent view.
    passes = ((_session_config(config, None), BASKET_CHANNELS), (_session_config(config, 1), VIEW_CHANNELS))
    counts: Counter[tuple[str, str]] = Counter()
    for user, events in _read_events(path).items():
        events.sort(key=lambda event: event[0])
        engine_events = [
            EngineEvent(f"{number:012d}", user, item, kind, round(ts * 1000), order_id=order_id or None)
            for number, (ts, kind, item, order_id) in enumerate(events)
        ]
        for session_config, channels in passes:
            activity = UserActivity(session_config)
            result = activity.ingest(engine_events)
            result.extend(activity.flush())
            counts.update(
                _ordered(update.item_id, partner)
                for update in result.updates
                for partner, channel in update.partners
                if channel in channels and partner != update.item_id
            )
    if not counts:
        raise TrainingDataError(f"{path}: the events give no pairs (no baskets or consecutive views)")
    return [pair for pair, _ in counts.most_common()]
