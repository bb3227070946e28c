"""Every user's ordering state in one table, for the batched offline path of ``AssociationEngine``.

It keeps, per user, what ``UserActivity`` keeps (the id memory, the largest time seen, the
events waiting for the watermark, the open session), but as shared columns, so a batch is
admitted, ordered, split into sessions and paired with numpy (``stream.engine.pairs``)
instead of one Python step per event and pair. Admission follows ``UserActivity._admit``
rule for rule (duplicate before too-late, the watermark moving with each admitted event,
nothing older than an applied event): a batch where no row is a duplicate or too late is
admitted at once, any other row by row. The drain applies, per user, the waiting events
below the watermark in ``(ts, event_id)`` order, and each user's open session is put back
in front of its next applied events when they continue it, so that sessions continue
across batches.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream.engine.arrays import distinct_sorted, run_bounds, run_ends, run_starts
from stream.engine.columns import EventColumns
from stream.engine.pairs import BatchPairs, batch_pairs
from stream.engine.sessions import SessionConfig

__all__ = ["AppliedBatch", "UserTable"]

_FIELDS = ("users", "items", "kinds", "ts", "orders")


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """The rows paired in one step (open sessions first, ``fresh`` = applied now) and what they emit."""

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    kinds: NDArray[np.int64]
    ts: NDArray[np.int64]
    fresh: NDArray[np.bool_]
    pairs: BatchPairs
    admitted: int = 0
    duplicates: int = 0
    too_late: tuple[int, ...] = ()  # rows of the input columns, in the per-event path's report order


def _empty() -> dict[str, NDArray[np.int64]]:
    return {name: np.zeros(0, dtype=np.int64) for name in _FIELDS}


class UserTable:
    """Ids, watermarks, waiting events and open sessions of all users (see the module docstring)."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.known: list[set[str]] = []  # per user: remembered applied ids and waiting ids
        self.recent: list[deque[str]] = []  # per user: applied ids, oldest first
        self.max_ts: list[int | None] = []
        self.applied_ts: list[int | None] = []  # per user: the newest applied event time
        self.pending = _empty()
        self.pending_ids: NDArray[np.object_] = np.zeros(0, dtype=object)  # event ids, as object arrays
        self.tails = _empty()
        self.transactions = 0

    def _grow(self, users: int) -> None:
        missing = users - len(self.known)
        if missing > 0:
            self.known.extend(set() for _ in range(missing))
            self.recent.extend(deque() for _ in range(missing))
            self.max_ts.extend([None] * missing)
            self.applied_ts.extend([None] * missing)

    def ingest(self, columns: EventColumns, users: int) -> AppliedBatch:
        """Admit a batch (``users`` = size of the user codebook) and apply what the watermark passed."""
        self._grow(users)
        admitted: list[int]
        too_late: list[int]
        event_ids = np.array(columns.event_ids, dtype=object)  # moved by numpy, not one Python step each
        if self._admit_all(columns, event_ids):
            admitted, duplicates, too_late = list(range(len(columns))), 0, []
        else:
            admitted, duplicates, too_late = self._admit(columns)
        chosen = np.array(admitted, dtype=np.int64)
        for name in _FIELDS:
            self.pending[name] = np.concatenate(
                [self.pending[name], getattr(columns, name)[chosen].astype(np.int64)]
            )
        self.pending_ids = np.concatenate([self.pending_ids, event_ids[chosen]])
        batch = self._drain(everything=False)
        return AppliedBatch(
            batch.users,
            batch.items,
            batch.kinds,
            batch.ts,
            batch.fresh,
            batch.pairs,
            admitted=len(admitted),
            duplicates=duplicates,
            too_late=tuple(too_late),
        )

    def _admit_all(self, columns: EventColumns, event_ids: NDArray[np.object_]) -> bool:
        """Admit every row at once when none is a duplicate or too late (the usual batch), else
        change nothing and say False: ``_admit`` then decides row by row."""
        size = len(columns)
        if not size:
            return True
        lateness = self.config.allowed_lateness_ms
        order = np.argsort(columns.users, kind="stable")
        users, ts = columns.users[order], columns.ts[order]
        first_of_user = run_starts(users)
        starts = np.flatnonzero(first_of_user)
        group = np.cumsum(first_of_user) - 1
        owners = users[starts].tolist()
        floor = np.iinfo(np.int64).min // 2
        before = np.array([floor if self.max_ts[u] is None else self.max_ts[u] for u in owners], dtype=np.int64)
        applied = np.array(
            [floor if self.applied_ts[u] is None else self.applied_ts[u] for u in owners], dtype=np.int64
        )
        # the largest time seen before each row: the user's, or an earlier row's of this batch
        # (a running max per user: each user's times lifted above all earlier users')
        width = int(ts.max()) - int(ts.min()) + 1
        if width * len(owners) >= 1 << 61:
            return False
        shift = width * group
        running = np.maximum.accumulate(ts + shift) - shift
        largest = np.maximum(before[group], np.concatenate([[floor], running[:-1]]))
        largest[starts] = before
        late = (ts < largest - lateness) & (largest != floor)
        if np.any(late | (ts < applied[group])):
            return False
        ids = event_ids[order].tolist()
        bounds = [*starts.tolist(), size]
        groups = []
        for user, start, end in zip(owners, bounds, bounds[1:]):  # noqa: B905
            own = ids[start:end]
            if not self.known[user].isdisjoint(own) or len(set(own)) != len(own):
                return False
            groups.append(own)
        newest = np.maximum.reduceat(ts, starts).tolist()
        for user, own, latest in zip(owners, groups, newest, strict=True):
            self.known[user].update(own)
            previous = self.max_ts[user]
            self.max_ts[user] = latest if previous is None else max(previous, latest)
        return True

    def _admit(self, columns: EventColumns) -> tuple[list[int], int, list[int]]:
        """``UserActivity._admit`` row by row: admitted rows, duplicates, too-late rows in report order."""
        lateness = self.config.allowed_lateness_ms
        known, max_ts, applied_ts = self.known, self.max_ts, self.applied_ts
        admitted: list[int] = []
        duplicates = 0
        too_late: list[int] = []
        user_list = columns.users.tolist()
        for row, (user, event_id, ts) in enumerate(
            zip(user_list, columns.event_ids, columns.ts.tolist(), strict=True)
        ):
            seen = known[user]
            if event_id in seen:
                duplicates += 1
                continue
            largest = max_ts[user]
            newest_applied = applied_ts[user]
            if (largest is not None and ts < largest - lateness) or (
                newest_applied is not None and ts < newest_applied
            ):
                too_late.append(row)
                continue
            seen.add(event_id)
            admitted.append(row)
            if largest is None or ts > largest:
                max_ts[user] = ts
        if too_late:
            first_seen: dict[int, int] = {}
            for user in user_list:
                first_seen.setdefault(user, len(first_seen))
            too_late.sort(key=lambda row: (first_seen[user_list[row]], row))
        return admitted, duplicates, too_late

    def flush(self) -> AppliedBatch:
        """Apply every waiting event (end of a replay)."""
        return self._drain(everything=True)

    def _drain(self, *, everything: bool) -> AppliedBatch:
        pending = self.pending
        users = pending["users"]
        if everything:
            ready = np.ones(users.shape[0], dtype=bool)
        else:
            present = distinct_sorted(users)
            watermark = np.array([self.max_ts[user] for user in present.tolist()], dtype=np.int64)
            watermark -= self.config.allowed_lateness_ms
            ready = pending["ts"] < watermark[np.searchsorted(present, users)]
        rows = np.flatnonzero(ready)
        applied = {name: values[rows] for name, values in pending.items()}
        applied_ids = self.pending_ids[rows]
        waiting = np.flatnonzero(~ready)
        self.pending = {name: values[waiting] for name, values in pending.items()}
        self.pending_ids = self.pending_ids[waiting]
        order = self._apply_order(applied["users"], applied["ts"], applied_ids)
        applied = {name: values[order] for name, values in applied.items()}
        applied_ids = applied_ids[order]
        self._remember(applied["users"], applied_ids.tolist())
        self._note_applied(applied["users"], applied["ts"])
        return self._pair(applied)

    @staticmethod
    def _apply_order(
        users: NDArray[np.int64], ts: NDArray[np.int64], event_ids: NDArray[np.object_]
    ) -> NDArray[np.int64]:
        """Rows by (user, ts, event_id), as each user's heap would pop them."""
        order = np.lexsort((ts, users))
        if order.shape[0] < 2:
            return order
        sorted_users, sorted_ts = users[order], ts[order]
        tied = (sorted_users[1:] == sorted_users[:-1]) & (sorted_ts[1:] == sorted_ts[:-1])
        if tied.any():
            tie_starts = np.flatnonzero(np.r_[tied[0], tied[1:] & ~tied[:-1]])
            for start in tie_starts.tolist():
                end = start + 1
                while end < tied.shape[0] and tied[end]:
                    end += 1
                run = order[start : end + 1].tolist()
                order[start : end + 1] = sorted(run, key=event_ids.__getitem__)
        return order

    def _note_applied(self, users: NDArray[np.int64], ts: NDArray[np.int64]) -> None:
        """Each user's newest applied event time (rows come ordered by user, then time)."""
        if not users.shape[0]:
            return
        ends = np.flatnonzero(run_ends(users))
        applied_ts = self.applied_ts
        for user, newest in zip(users[ends].tolist(), ts[ends].tolist(), strict=True):
            previous = applied_ts[user]
            applied_ts[user] = newest if previous is None else max(previous, newest)

    def _remember(self, users: NDArray[np.int64], event_ids: list[str]) -> None:
        if not event_ids:
            return
        capacity = self.config.dedup_capacity
        bounds = run_bounds(users)
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            user = int(users[start])
            recent = self.recent[user]
            recent.extend(event_ids[start:end])
            if len(recent) > capacity:
                seen = self.known[user]
                while len(recent) > capacity:
                    seen.discard(recent.popleft())

    def _continuing(
        self, tails: dict[str, NDArray[np.int64]], applied: dict[str, NDArray[np.int64]]
    ) -> NDArray[np.bool_]:
        """Tail rows whose session the applied rows continue (the user's first applied event is
        within the session gap of the tail's last one); the other tails are closed sessions,
        which would only be paired again to emit nothing new."""
        tail_users, applied_users = tails["users"], applied["users"]
        last = np.flatnonzero(run_ends(tail_users))  # each user's tail is contiguous
        first = np.flatnonzero(run_starts(applied_users))  # applied: by user, time
        at = np.minimum(np.searchsorted(applied_users[first], tail_users[last]), first.shape[0] - 1)
        same_user = applied_users[first][at] == tail_users[last]
        within = applied["ts"][first][at] - tails["ts"][last] <= self.config.session_gap_ms
        return np.isin(tail_users, tail_users[last][same_user & within])

    def _pair(self, applied: dict[str, NDArray[np.int64]]) -> AppliedBatch:
        tails = self.tails
        touched = np.isin(tails["users"], distinct_sorted(applied["users"]))
        continuing = self._continuing(tails, applied) if touched.any() else touched
        rows = {name: np.concatenate([tails[name][continuing], applied[name]]) for name in _FIELDS}
        fresh = np.r_[
            np.zeros(int(continuing.sum()), dtype=bool), np.ones(applied["users"].shape[0], dtype=bool)
        ]
        order = np.argsort(rows["users"], kind="stable")
        rows = {name: values[order] for name, values in rows.items()}
        fresh = fresh[order]
        pairs = batch_pairs(
            rows["users"], rows["items"], rows["kinds"], rows["ts"], rows["orders"], fresh, self.config
        )
        self.transactions += int(pairs.opened_rows.shape[0])
        # each touched user's last session stays open: it is put back in front next time
        size = rows["users"].shape[0]
        if size:
            users = rows["users"]
            ends = np.flatnonzero(run_ends(users))
            lengths = np.diff(ends, prepend=-1)
            open_session = pairs.session == np.repeat(pairs.session[ends], lengths)
            self.tails = {
                name: np.concatenate([tails[name][~touched], rows[name][open_session]]) for name in _FIELDS
            }
        return AppliedBatch(rows["users"], rows["items"], rows["kinds"], rows["ts"], fresh, pairs)
