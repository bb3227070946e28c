"""Hypothesis properties: arrival order, merging, lazy decay, replays and rejected events."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import (
    AssociationEngine,
    CooccurrenceConfig,
    EngineConfig,
    Event,
    ProfileConfig,
    SessionConfig,
    UserProfile,
)

LATENESS = 60_000
DIM = 8
VECTORS = np.random.default_rng(1).standard_normal((6, DIM))
ITEMS = [f"i{n}" for n in range(6)]


def _config(capacity=None):
    return EngineConfig(
        sessions=SessionConfig(
            session_gap_ms=120_000,
            allowed_lateness_ms=LATENESS,
            max_items_per_session=4,
            max_pairs_per_event=3,
        ),
        cooccurrence=CooccurrenceConfig(partner_capacity=capacity, half_life_ms=600_000.0, landmark_ms=0),
        profiles=ProfileConfig(dimension=DIM, short_half_life_ms=30_000, long_half_life_ms=900_000),
    )


def _engine():
    return AssociationEngine(_config(), item_vectors=lambda ids: VECTORS[[int(i[1:]) for i in ids]])


events_strategy = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 5),
        st.sampled_from(["click", "cart", "purchase"]),
        st.integers(0, 600_000),
        st.sampled_from([None, "o1", "o2"]),
    ),
    min_size=1,
    max_size=40,
).map(
    lambda rows: [
        Event(f"e{n}", f"u{u}", ITEMS[i], kind, ts, order_id=order if kind == "purchase" else None)
        for n, (u, i, kind, ts, order) in enumerate(rows)
    ]
)


def _state(engine):
    counts = {}
    for item_id, state in engine.store.items.items():
        counts[item_id] = (
            {k: round(v, 9) for k, v in state.occurrences.items()},
            {ch: {k: round(v, 9) for k, v in s.counts.items()} for ch, s in state.partners.items()},
        )
    profiles = {
        user: (p.short.round(9).tolist(), p.long.round(9).tolist(), p.recent, list(p.purchased))
        for user, p in engine.profiles.items()
    }
    return counts, round(engine.transactions(), 9), profiles


def _feed(events, batches=1):
    engine = _engine()
    size = max(1, math.ceil(len(events) / batches))
    for start in range(0, len(events), size):
        engine.process_events(events[start : start + size])
    engine.flush()
    return engine


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.randoms(use_true_random=False), st.integers(1, 5))
def test_arrival_order_within_lateness_changes_nothing(events, random, batches):
    in_time = sorted(events, key=lambda e: (e.ts, e.event_id))
    # a late-but-allowed order: sort by time plus a delay below the lateness
    delays = {e.event_id: random.randrange(0, LATENESS // 2) for e in events}
    shuffled = sorted(events, key=lambda e: e.ts + delays[e.event_id])
    assert _state(_feed(in_time)) == _state(_feed(shuffled, batches))


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.integers(0, 2))
def test_merging_partial_counts_equals_counting_everything(events, split_user):
    whole = _feed(events)
    left = _feed([e for e in events if e.user_id == f"u{split_user}"])
    right = _feed([e for e in events if e.user_id != f"u{split_user}"])
    merged = left.store.merge(right.store)
    for item_id, state in whole.store.items.items():
        other = merged.items[item_id]
        assert other.occurrences.keys() == state.occurrences.keys()
        for kind, value in state.occurrences.items():
            assert math.isclose(other.occurrences[kind], value, rel_tol=1e-12)
        for channel, sketch in state.partners.items():
            assert other.partners[channel].counts.keys() == sketch.counts.keys()
            for key, value in sketch.counts.items():
                assert math.isclose(other.partners[channel].counts[key], value, rel_tol=1e-12)
    assert math.isclose(left.tally.total + right.tally.total, whole.tally.total, rel_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.integers(0, 3_000_000))
def test_lazy_decay_equals_eager_decay(events, read_at_extra):
    config = ProfileConfig(dimension=DIM, short_half_life_ms=30_000, long_half_life_ms=900_000)
    lazy = UserProfile(config)
    order = sorted(events, key=lambda e: e.ts)
    lazy.update_many(events, VECTORS[[int(e.item_id[1:]) for e in events]])  # any order: lazy must cope
    end = order[-1].ts + read_at_extra
    short, long = lazy.vectors_at(end)
    # eager: decay everything at every step of a clock that ticks through all event times
    eager_short, eager_long, clock = np.zeros(DIM), np.zeros(DIM), order[0].ts
    for event in order:
        eager_short *= 2 ** (-(event.ts - clock) / 30_000)
        eager_long *= 2 ** (-(event.ts - clock) / 900_000)
        clock = event.ts
        weight = config.kind_weights[event.kind]
        eager_short += weight * VECTORS[int(event.item_id[1:])]
        eager_long += weight * VECTORS[int(event.item_id[1:])]
    eager_short *= 2 ** (-(end - clock) / 30_000)
    eager_long *= 2 ** (-(end - clock) / 900_000)
    assert np.allclose(short, eager_short, rtol=1e-9, atol=1e-12)
    assert np.allclose(long, eager_long, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(events_strategy, st.data())
def test_replayed_event_ids_and_rejected_events_change_nothing(events, data):
    engine = _engine()
    engine.process_events(events)
    before = _state(engine)
    replay = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=10))
    report = engine.process_events(replay)
    assert report.applied == 0
    bad = [
        b"{not json",
        {"event_id": "x", "user_id": "u0", "item_id": "i1", "kind": "click"},
        {"event_id": "y", "user_id": "u0", "item_id": "i1", "ts": 5, "kind": "click"},
        {"event_id": "z", "user_id": "u0", "item_id": "i1", "ts": 10**12, "kind": "teleport"},
    ]
    report = engine.process(bad, now_ms=2 * 10**12)
    assert [r.reason for r in report.rejected] == [
        "not_json",
        "missing_field:ts",
        "ts_too_old",
        "unknown_kind",
    ]
    assert _state(engine) == before
    engine.flush()
    reference = _engine()
    reference.process_events(events)
    reference.flush()
    assert _state(engine) == _state(reference)
