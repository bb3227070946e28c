"""N counted the way the stream counts it: from the items' ``opened`` counts, replay-safe.

The reference is a brute-force recount of sessions (a user's events, sorted by time, split
where the gap exceeds the session gap), not the engine's own ``transactions()``.
"""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import CooccurrenceConfig, Event, ItemAssociations, SessionConfig, TransactionTally, UserActivity

GAP = 120_000
SESSIONS = SessionConfig(session_gap_ms=GAP, allowed_lateness_ms=10**9, max_items_per_session=3)
ITEMS = [f"i{n}" for n in range(5)]

events_strategy = st.lists(
    st.tuples(
        st.integers(0, 3), st.integers(0, 4), st.sampled_from(["click", "cart", "purchase"]), st.integers(0, 900_000)
    ),
    min_size=1,
    max_size=50,
).map(lambda rows: [Event(f"e{n}", f"u{u}", ITEMS[i], kind, ts) for n, (u, i, kind, ts) in enumerate(rows)])


def recount_sessions(events: list[Event]) -> int:
    by_user: dict[str, list[int]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event.ts)
    sessions = 0
    for times in by_user.values():
        times.sort()
        sessions += 1 + sum(1 for before, after in zip(times, times[1:], strict=False) if after - before > GAP)
    return sessions


@settings(max_examples=80, deadline=None)
@given(events_strategy, st.integers(0, 2**32 - 1))
def test_sum_of_opened_counts_is_the_number_of_sessions_even_when_updates_are_replayed(events, seed):
    activities: dict[str, UserActivity] = defaultdict(lambda: UserActivity(SESSIONS))
    updates = []
    for event in events:
        updates.extend(activities[event.user_id].ingest([event]).updates)
    for activity in activities.values():
        updates.extend(activity.flush().updates)

    rng = random.Random(seed)
    delivered = updates + rng.sample(updates, len(updates) // 2)  # a crash re-sends some
    rng.shuffle(delivered)
    items: dict[str, ItemAssociations] = {}
    config = CooccurrenceConfig(dedup_capacity=10_000)
    for update in delivered:
        items.setdefault(update.item_id, ItemAssociations(update.item_id)).apply([update], config)

    tally = TransactionTally()
    for item_id, state in items.items():
        restored = ItemAssociations.from_bytes(state.to_bytes())  # what the changelog holds
        tally.observe(f"item:{item_id}", restored.opened)
        tally.observe(f"item:{item_id}", restored.opened)  # a record read twice
    assert tally.total == recount_sessions(events)
    assert sum(1 for update in updates if update.opens) == recount_sessions(events)
