"""Sessions, occurrences and pairs of a whole batch at once, with numpy (the batched path).

Input: the applied events of a batch as integer columns in apply order, grouped by user
(each user's rows are contiguous; rows flagged ``fresh=False`` are the already counted
events of the user's open session, put back in front so the session continues). Output:
exactly what ``UserActivity._apply`` would have emitted for the fresh rows, as arrays.

Why it is the same. Without caps, in a session whose times never go backwards, the
sequential generator emits (Y as a) → (X as k) once, at the first event p such that the
events up to p hold an a-event of Y at or before a k-event of X. With i0 the first
a-event of Y, that is i0 itself if an earlier k-event of X has the same time as i0, else
the first k-event of X after i0. Purchase lines of one order add, for both directions,
the later of the two items' first lines in that order; the earlier of both wins. An item's
occurrence as kind k is its first k-event in the session. The caps never bind in a session
with at most ``max_items_per_session`` distinct items and at most ``max_pairs_per_event``
distinct items per kind, so such sessions (if their times are non-decreasing in apply order,
which only a forced ``flush`` can break) are computed that way. Sessions where a cap may
bind go through a dense recency window (``_capped_vectorised``: per event and item, the
item's latest position and its rank among the items seen, as ``UserActivity._apply`` walks
them); sessions with order ids or backward times, or too large for the window, go through
``UserActivity._apply`` itself, event by event. The property tests compare all routes on
random logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream.engine.arrays import distinct_sorted, run_starts
from stream.engine.columns import NO_ORDER
from stream.engine.events import KINDS, PURCHASE, Event
from stream.engine.sessions import CHANNELS, IngestResult, SessionConfig, UserActivity, channel_name

__all__ = ["BatchPairs", "CHANNEL_CODES", "batch_pairs"]

CHANNEL_CODES = {channel: code for code, channel in enumerate(CHANNELS)}
_NO_CHANNEL = -1
# channel code of (antecedent kind code, consequent kind code), -1 when not a channel
_CHANNEL_OF_KINDS = np.full((len(KINDS), len(KINDS)), _NO_CHANNEL, dtype=np.int64)
for _a, _antecedent in enumerate(KINDS):
    for _k, _consequent in enumerate(KINDS):
        _CHANNEL_OF_KINDS[_a, _k] = CHANNEL_CODES.get(channel_name(_antecedent, _consequent), _NO_CHANNEL)
_PURCHASE_CODE = KINDS.index(PURCHASE)
_PURCHASE_CHANNEL = CHANNEL_CODES[channel_name(PURCHASE, PURCHASE)]


@dataclass(frozen=True, slots=True)
class BatchPairs:
    """What the fresh rows emit: session starts, occurrences and directed pairs (row = emitting event)."""

    session: NDArray[np.int64]  # session number of every input row (0, 1, ... in row order)
    opened_rows: NDArray[np.int64]  # first row of each session that starts at a fresh row
    occurrence_rows: NDArray[np.int64]
    occurrence_items: NDArray[np.int64]
    occurrence_kinds: NDArray[np.int64]
    pair_rows: NDArray[np.int64]
    antecedents: NDArray[np.int64]
    consequents: NDArray[np.int64]
    channels: NDArray[np.int64]


def _self_join(group: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All ordered (left, right) index pairs of rows sharing a group; ``group`` sorted."""
    size = group.shape[0]
    if size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.flatnonzero(run_starts(group))
    lengths = np.diff(starts, append=size)
    group_start = np.repeat(starts, lengths)
    per_row = np.repeat(lengths, lengths)
    left = np.repeat(np.arange(size, dtype=np.int64), per_row)
    offsets = np.cumsum(per_row) - per_row
    right = np.repeat(group_start, per_row) + (
        np.arange(left.shape[0], dtype=np.int64) - np.repeat(offsets, per_row)
    )
    return left, right


def _first_rows(key: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct keys (sorted) and the first row holding each."""
    unique, first = np.unique(key, return_index=True)
    return unique, first.astype(np.int64)


def _capped_sessions(
    session: NDArray[np.int64],
    items: NDArray[np.int64],
    kinds: NDArray[np.int64],
    ts: NDArray[np.int64],
    sessions: int,
    config: SessionConfig,
) -> NDArray[np.bool_]:
    """Sessions where a cap may bind or time goes backwards: they take the capped routes."""
    capped = np.zeros(sessions, dtype=bool)
    backwards = np.flatnonzero((np.diff(ts) < 0) & (session[1:] == session[:-1]))
    capped[session[backwards + 1]] = True
    if config.max_items_per_session is None and config.max_pairs_per_event is None:
        return capped
    span = int(items.max()) + 1
    per_kind = distinct_sorted((session * span + items) * len(KINDS) + kinds)  # distinct (session, item, kind)
    if config.max_items_per_session is not None:
        per_item = per_kind // len(KINDS)
        first = run_starts(per_item)
        distinct = np.bincount(per_item[first] // span, minlength=sessions)
        capped |= distinct > config.max_items_per_session
    if config.max_pairs_per_event is not None:
        session_kind = (per_kind // (span * len(KINDS))) * len(KINDS) + per_kind % len(KINDS)
        counts = np.bincount(session_kind, minlength=sessions * len(KINDS))
        capped |= (counts.reshape(sessions, len(KINDS)) > config.max_pairs_per_event).any(axis=1)
    return capped


def _vectorised(
    rows: NDArray[np.int64],
    session: NDArray[np.int64],
    items: NDArray[np.int64],
    kinds: NDArray[np.int64],
    ts: NDArray[np.int64],
    orders: NDArray[np.int64],
    fresh: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], ...]:
    """Occurrences and pairs of uncapped sessions; ``rows`` are the global row numbers, in order.
    Pairs that only rows not ``fresh`` can emit (counted in an earlier batch) are left out early."""
    s, it, kd, tm = session[rows], items[rows], kinds[rows], ts[rows]
    local_items = np.unique(it, return_inverse=True)[1].astype(np.int64)
    span = int(local_items.max()) + 1 if rows.shape[0] else 1
    entry_key = (s * span + local_items) * len(KINDS) + kd
    entry_keys, entry_first = _first_rows(entry_key)  # entries sorted by (session, item, kind)
    entry_of_row = np.searchsorted(entry_keys, entry_key)
    entry_session = s[entry_first]
    entry_item = local_items[entry_first]
    entry_kind = kd[entry_first]
    # every row of each entry, by position: the occurrences' index for "next/previous k-event of X"
    by_entry = np.argsort(entry_of_row, kind="stable")
    bound = rows.shape[0] + 1
    occurrence_key = entry_of_row[by_entry] * bound + by_entry
    entry_start = np.searchsorted(entry_of_row[by_entry], np.arange(entry_keys.shape[0]))
    entry_end = np.append(entry_start[1:], rows.shape[0])

    left, right = _self_join(entry_session)  # (Y as a) = left, (X as k) = right
    # A pair is emitted at Y's first a-event or at a later k-event of X. The fresh rows of a
    # session follow its older rows, so when neither holds a fresh row, the pair is old. Not
    # so for purchase -> purchase where orders are named: an old emission must stay to win
    # over a fresh order line of the same pair below (the earliest emission wins).
    fresh_rows = fresh[rows]
    entry_fresh = np.zeros(entry_keys.shape[0], dtype=bool)
    entry_fresh[entry_of_row[fresh_rows]] = True
    maybe_new = entry_fresh[right] | fresh_rows[entry_first[left]]
    bought = np.flatnonzero((kd == _PURCHASE_CODE) & (orders[rows] != NO_ORDER))
    if bought.shape[0] > 1:
        maybe_new |= (entry_kind[left] == _PURCHASE_CODE) & (entry_kind[right] == _PURCHASE_CODE)
    left, right = left[maybe_new], right[maybe_new]
    channel = _CHANNEL_OF_KINDS[entry_kind[left], entry_kind[right]]
    keep = (channel != _NO_CHANNEL) & (entry_item[left] != entry_item[right])
    left, right, channel = left[keep], right[keep], channel[keep]
    first_y = entry_first[left]
    at = np.searchsorted(occurrence_key, right * bound + first_y)
    has_next = at < entry_end[right]
    next_row = np.where(has_next, by_entry[np.minimum(at, rows.shape[0] - 1)], -1)
    has_previous = at > entry_start[right]
    previous_row = by_entry[np.maximum(at - 1, 0)]
    same_time = has_previous & (tm[previous_row] == tm[first_y])
    emit = np.where(same_time, first_y, next_row)
    valid = emit >= 0
    pair_session = entry_session[left[valid]]
    pair_y, pair_x = entry_item[left[valid]], entry_item[right[valid]]
    pair_channel, pair_row = channel[valid], emit[valid]

    if bought.shape[0] > 1:
        local_orders = np.unique(orders[rows][bought], return_inverse=True)[1].astype(np.int64)
        order_span = int(local_orders.max()) + 1
        basket_key = (s[bought] * order_span + local_orders) * span + local_items[bought]
        basket_keys, basket_first = _first_rows(basket_key)
        line_rows = bought[basket_first]
        left, right = _self_join(basket_keys // span)
        keep = local_items[line_rows[left]] != local_items[line_rows[right]]
        left, right = left[keep], right[keep]
        if left.shape[0]:
            pair_session = np.r_[pair_session, s[line_rows[left]]]
            pair_y = np.r_[pair_y, local_items[line_rows[left]]]
            pair_x = np.r_[pair_x, local_items[line_rows[right]]]
            pair_channel = np.r_[pair_channel, np.full(left.shape[0], _PURCHASE_CHANNEL)]
            pair_row = np.r_[pair_row, np.maximum(line_rows[left], line_rows[right])]
            # the earliest emission of each (session, Y, X, channel) wins
            order = np.lexsort((pair_row, pair_channel, pair_x, pair_y, pair_session))
            key = np.stack([pair_session, pair_y, pair_x, pair_channel])[:, order]
            first = np.r_[True, (key[:, 1:] != key[:, :-1]).any(axis=0)]
            chosen = order[first]
            pair_y, pair_x = pair_y[chosen], pair_x[chosen]
            pair_channel, pair_row = pair_channel[chosen], pair_row[chosen]
    item_of_local = np.empty(span, dtype=np.int64)
    item_of_local[local_items] = it
    return (
        rows[entry_first],
        items[rows[entry_first]],
        entry_kind.astype(np.int64),
        rows[pair_row],
        item_of_local[pair_y],
        item_of_local[pair_x],
        pair_channel.astype(np.int64),
    )


def _sequential(
    rows: NDArray[np.int64],
    items: NDArray[np.int64],
    kinds: NDArray[np.int64],
    ts: NDArray[np.int64],
    orders: NDArray[np.int64],
    config: SessionConfig,
) -> tuple[NDArray[np.int64], ...]:
    """One capped session through ``UserActivity._apply`` itself (the reference behaviour)."""
    activity = UserActivity(config)
    result = IngestResult()
    occurrence: list[tuple[int, int, int]] = []
    pairs: list[tuple[int, int, int, int]] = []
    for row in rows.tolist():
        order = int(orders[row])
        event = Event(
            "",
            "",
            str(int(items[row])),
            KINDS[int(kinds[row])],
            int(ts[row]),
            order_id=None if order == NO_ORDER else str(order),
        )
        result.updates.clear()
        activity._apply(event, result)
        for update in result.updates:
            antecedent = int(update.item_id)
            if update.occurrence is not None:
                occurrence.append((row, antecedent, KINDS.index(update.occurrence)))
            for consequent, channel in update.partners:
                pairs.append((row, antecedent, int(consequent), CHANNEL_CODES[channel]))
    occurrences = np.array(occurrence, dtype=np.int64).reshape(-1, 3)
    emitted = np.array(pairs, dtype=np.int64).reshape(-1, 4)
    return (*occurrences.T, *emitted.T)


_WINDOW_CELLS = 4_000_000  # events x distinct items of one session above which it goes sequential


def _recency_window(
    events: int, local: NDArray[np.int64], mask: NDArray[np.bool_], distinct: int, limit: int | None
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """For each event p and item Y: the position of Y's latest masked event at or before p
    (-1 when none), and whether Y is among the ``limit`` most recent such items not counting
    event p's own item (the window ``UserActivity._apply`` walks, newest first)."""
    latest = np.full((events, distinct), -1, dtype=np.int64)
    positions = np.flatnonzero(mask)
    latest[positions, local[positions]] = positions
    np.maximum.accumulate(latest, axis=0, out=latest)
    if limit is None or limit >= distinct:
        return latest, np.ones((events, distinct), dtype=bool)
    # Seen items have distinct positions, so "among the limit most recent" is "at or above the
    # limit-th largest position", with the event's own item moved below everything first.
    others = latest.copy()
    others[np.arange(events), local] = -2
    threshold = np.partition(others, distinct - limit, axis=1)[:, distinct - limit]
    return latest, latest >= threshold[:, None]


def _capped_vectorised(
    rows: NDArray[np.int64],
    items: NDArray[np.int64],
    kinds: NDArray[np.int64],
    ts: NDArray[np.int64],
    config: SessionConfig,
) -> tuple[NDArray[np.int64], ...] | None:
    """One capped session (times non-decreasing, no order ids) as ``_sequential`` emits it, with
    numpy; None when the session is too large for the dense window (then go sequential).

    ``UserActivity._apply`` drops the events of items beyond the first
    ``max_items_per_session`` distinct ones; an event (X as k) takes, per antecedent kind a,
    the ``max_pairs_per_event`` items most recently seen as a (X skipped), newest first, and
    per consequent kind c the most recent items seen as c at its own time; a directed pair
    counts at its first emission in the session."""
    item, kind, stamp = items[rows], kinds[rows].astype(np.int64), ts[rows]
    distinct_items, first, local = np.unique(item, return_index=True, return_inverse=True)
    local = local.astype(np.int64)
    cap = config.max_items_per_session
    if cap is not None and distinct_items.shape[0] > cap:
        kept_items = np.sort(first)[:cap]
        keep = np.isin(local, local[kept_items])
        rows, item, kind, stamp = rows[keep], item[keep], kind[keep], stamp[keep]
        distinct_items, local = np.unique(item, return_inverse=True)
        local = local.astype(np.int64)
    events, distinct = rows.shape[0], distinct_items.shape[0]
    if events * distinct > _WINDOW_CELLS:
        return None
    windows = [
        _recency_window(events, local, kind == code, distinct, config.max_pairs_per_event) for code in range(len(KINDS))
    ]
    at = np.arange(events)
    found: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]] = []  # rows, y, x, channel
    for seen_kind in range(len(KINDS)):
        latest, inside = windows[seen_kind]
        seen = (latest >= 0) & inside
        seen[at, local] = False  # the event's own item is never its partner
        seen_now = seen & (stamp[np.maximum(latest, 0)] == stamp[:, None])
        for event_kind in range(len(KINDS)):
            of_kind = (kind == event_kind)[:, None]
            channel = int(_CHANNEL_OF_KINDS[seen_kind, event_kind])
            if channel != _NO_CHANNEL:  # the event as consequent: (Y seen as seen_kind) -> its item
                events_p, partners = np.nonzero(seen & of_kind)
                found.append((events_p, partners, local[events_p], channel))
            channel = int(_CHANNEL_OF_KINDS[event_kind, seen_kind])
            if channel != _NO_CHANNEL:  # the event as antecedent: its item -> (Z seen as seen_kind now)
                events_p, partners = np.nonzero(seen_now & of_kind)
                found.append((events_p, local[events_p], partners, channel))
    pair_row = np.concatenate([rows_p for rows_p, _, _, _ in found])
    pair_y = np.concatenate([y for _, y, _, _ in found])
    pair_x = np.concatenate([x for _, _, x, _ in found])
    pair_channel = np.concatenate([np.full(rows_p.shape[0], channel) for rows_p, _, _, channel in found])
    key = (pair_y * distinct + pair_x) * len(CHANNELS) + pair_channel
    order = np.lexsort((pair_row, key))
    first_emission = order[run_starts(key[order])]
    _, entry_first = np.unique(local * len(KINDS) + kind, return_index=True)
    return (
        rows[entry_first],
        item[entry_first],
        kind[entry_first],
        rows[pair_row[first_emission]],
        distinct_items[pair_y[first_emission]],
        distinct_items[pair_x[first_emission]],
        pair_channel[first_emission].astype(np.int64),
    )


def batch_pairs(
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    kinds: NDArray[np.int64],
    ts: NDArray[np.int64],
    orders: NDArray[np.int64],
    fresh: NDArray[np.bool_],
    config: SessionConfig,
) -> BatchPairs:
    """Sessions, occurrences and pairs emitted by the fresh rows (see the module docstring)."""
    size = users.shape[0]
    if size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return BatchPairs(empty, empty, empty, empty, empty, empty, empty, empty, empty)
    starts = np.r_[True, (users[1:] != users[:-1]) | (np.diff(ts) > config.session_gap_ms)]
    session = np.cumsum(starts) - 1
    sessions = int(session[-1]) + 1
    opened_rows = np.flatnonzero(starts & fresh)
    capped = _capped_sessions(session, items, kinds, ts, sessions, config)
    uncapped_rows = np.flatnonzero(~capped[session])
    parts = [_vectorised(uncapped_rows, session, items, kinds, ts, orders, fresh)] if uncapped_rows.shape[0] else []
    if capped.any():
        session_starts = np.flatnonzero(starts)
        session_ends = np.append(session_starts[1:], size)
        for number in np.flatnonzero(capped).tolist():
            rows = np.arange(session_starts[number], session_ends[number], dtype=np.int64)
            part = None
            with_orders = np.any((kinds[rows] == _PURCHASE_CODE) & (orders[rows] != NO_ORDER))
            if not with_orders and np.all(np.diff(ts[rows]) >= 0):
                part = _capped_vectorised(rows, items, kinds, ts, config)
            parts.append(_sequential(rows, items, kinds, ts, orders, config) if part is None else part)
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return BatchPairs(session, opened_rows, empty, empty, empty, empty, empty, empty, empty)
    columns = [np.concatenate([part[n] for part in parts]) for n in range(7)]
    occurrence_rows, occurrence_items, occurrence_kinds = columns[:3]
    pair_rows, antecedents, consequents, channels = columns[3:]
    new_occurrence = fresh[occurrence_rows]
    new_pair = fresh[pair_rows]
    return BatchPairs(
        session,
        opened_rows,
        occurrence_rows[new_occurrence],
        occurrence_items[new_occurrence],
        occurrence_kinds[new_occurrence],
        pair_rows[new_pair],
        antecedents[new_pair],
        consequents[new_pair],
        channels[new_pair],
    )
