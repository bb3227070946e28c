"""The batched path (columns, one user table, numpy pairs) against the per-event path.

The reference is ``EngineConfig(batched=False)``: one ``UserActivity`` per user and one
``ItemUpdate`` per (event, item), as the stream agents run it. Both must leave the same
counts, sketches, transaction totals, reports and profiles.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import (
    AssociationEngine,
    CooccurrenceConfig,
    EngineConfig,
    Event,
    ProfileConfig,
    SessionConfig,
    read_taobao,
    validate_many,
)
from stream.engine.columns import Codebook, validate_columns

DIM = 4
VECTORS = np.random.default_rng(7).standard_normal((8, DIM))
ITEMS = [f"i{n}" for n in range(8)]
LATENESS = 50


def _config(batched, *, capacity, max_items, max_pairs, half_life):
    return EngineConfig(
        sessions=SessionConfig(
            session_gap_ms=40,
            allowed_lateness_ms=LATENESS,
            max_items_per_session=max_items,
            max_pairs_per_event=max_pairs,
            dedup_capacity=6,
        ),
        cooccurrence=CooccurrenceConfig(partner_capacity=capacity, half_life_ms=half_life, landmark_ms=0),
        profiles=ProfileConfig(dimension=DIM, short_half_life_ms=30, long_half_life_ms=900),
        batched=batched,
    )


def _close(left, right, exact):
    return left == right if exact else math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)


def assert_same_counts(batched, reference, exact=True):
    assert batched.store.items.keys() == reference.store.items.keys()
    for item_id, expected in reference.store.items.items():
        state = batched.store.items[item_id]
        assert state.occurrences.keys() == expected.occurrences.keys(), item_id
        for kind, value in expected.occurrences.items():
            assert _close(state.occurrences[kind], value, exact), (item_id, kind)
        assert state.partners.keys() == expected.partners.keys(), item_id
        for channel, sketch in expected.partners.items():
            mine = state.partners[channel]
            assert mine.counts.keys() == sketch.counts.keys(), (item_id, channel)
            for key, value in sketch.counts.items():
                assert _close(mine.counts[key], value, exact), (item_id, channel, key)
                assert _close(mine.errors[key], sketch.errors[key], exact), (item_id, channel, key)
            assert mine.evictions == sketch.evictions
    assert _close(batched.transactions(), reference.transactions(), exact)
    assert batched.evictions() == reference.evictions()


def _report(report):
    return (
        report.accepted,
        report.applied,
        report.duplicates,
        [(r.reason, r.index, r.raw) for r in report.rejected],
    )


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 2),  # user
        st.integers(0, 7),  # item
        st.sampled_from(["click", "click", "cart", "purchase"]),
        st.integers(0, 300),  # event time
        st.sampled_from([None, "o1", "o2"]),
        st.integers(0, 120),  # arrival delay: some beyond the lateness, so too late
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    rows_strategy,
    st.data(),
    st.sampled_from([None, 3]),  # partner capacity: exact, or evicting
    st.sampled_from([(None, None), (3, 2), (5, 1)]),  # session caps: unbounded, or hit
    st.booleans(),  # decay
)
def test_batched_path_equals_per_event_path(rows, data, capacity, caps, decay):
    _assert_same_replay(rows, data, capacity, caps, decay)


order_rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 1),  # user
        st.integers(0, 4),  # item
        st.sampled_from(["purchase", "purchase", "click"]),
        st.integers(0, 120),  # event time: sessions go on across batches
        st.sampled_from([None, "o1", "o2", "o3"]),
        st.integers(0, 60),
    ),
    min_size=2,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(order_rows_strategy, st.data())
def test_batched_path_equals_per_event_path_with_orders_across_batches(rows, data):
    """Named orders, few items, sessions that outlive a batch: where an order line and the
    session both emit purchase -> purchase and the earliest must win."""
    _assert_same_replay(rows, data, None, (None, None), False)


def _assert_same_replay(rows, data, capacity, caps, decay):
    events = [
        Event(f"e{n}", f"u{u}", ITEMS[i], kind, ts, order_id=order if kind == "purchase" else None)
        for n, (u, i, kind, ts, order, _) in enumerate(rows)
    ]
    arrival = sorted(range(len(events)), key=lambda n: events[n].ts + rows[n][5])
    stream = [events[n] for n in arrival]
    replays = data.draw(st.lists(st.sampled_from(events), max_size=8))  # duplicates, maybe too late
    for replay in replays:
        stream.insert(data.draw(st.integers(0, len(stream))), replay)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    flush_at = data.draw(st.sampled_from([None, *range(len(cuts) + 1)]))  # a forced flush mid-way
    read_at = data.draw(st.sampled_from([None, *range(len(cuts) + 1)]))  # counts read mid-way
    options = {"capacity": capacity, "max_items": caps[0], "max_pairs": caps[1]}
    options["half_life"] = 200.0 if decay else None
    engines = [
        AssociationEngine(
            _config(batched, **options), item_vectors=lambda ids: VECTORS[[int(i[1:]) for i in ids]]
        )
        for batched in (True, False)
    ]
    for number, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(stream)], strict=True)):
        reports = [engine.process_events(stream[start:end]) for engine in engines]
        assert _report(reports[0]) == _report(reports[1])
        if number == flush_at:
            assert _report(engines[0].flush()) == _report(engines[1].flush())
        if number == read_at:  # the batched store builds its objects here, then keeps counting
            assert engines[0].store.items.keys() == engines[1].store.items.keys()
    assert _report(engines[0].flush()) == _report(engines[1].flush())
    batched, reference = engines
    assert_same_counts(batched, reference, exact=not decay)
    assert batched.profiles.keys() == reference.profiles.keys()
    for user, profile in reference.profiles.items():
        mine = batched.profiles[user]
        assert mine.recent == profile.recent and list(mine.purchased) == list(profile.purchased)
        assert np.array_equal(mine.short, profile.short) and np.array_equal(mine.long, profile.long)


def test_raw_inputs_give_the_same_reports_and_counts():
    now = 2_000_000_000_000
    good = {"event_id": "a", "user_id": 1, "item_id": "x", "kind": "click", "ts": now - 10}
    raws = [
        good,
        {**good, "event_id": "b", "item_id": "y", "kind": "purchase", "order_id": 5, "quantity": 2},
        b'{"event_id": "c", "user_id": "1", "item_id": "z", "kind": "cart", "ts": 1999999999995}',
        {**good, "event_id": "d", "ts": "2033-05-18T03:33:19Z", "price": 3.5},
        {**good, "event_id": "e", "user_id": True},
        {**good, "event_id": "f", "kind": "teleport"},
        {**good, "event_id": "", "item_id": "w"},
        b"{broken",
        {**good, "event_id": "g", "ts": 5},
        good,
    ]
    engines = [
        AssociationEngine(EngineConfig(profiles=None, batched=batched), item_vectors=None)
        for batched in (True, False)
    ]
    reports = [engine.process(raws, now_ms=now) for engine in engines]
    assert _report(reports[0]) == _report(reports[1])
    assert [r.reason for r in reports[0].rejected] == [
        "wrong_type:user_id",
        "unknown_kind",
        "empty_field:event_id",
        "not_json",
        "ts_too_old",
    ]
    assert reports[0].duplicates == 1
    for engine in engines:
        engine.flush()
    assert_same_counts(*engines)


@pytest.mark.slow
def test_taobao_counts_equal_per_event_path(shared_data):
    """Every count of the real replay (default caps; bounded sketches that do evict)."""
    events, _ = read_taobao(shared_data / "taobao_userbehavior" / "UserBehavior_head84475.csv")
    now = events[-1]["ts"] + 1
    engines = []
    for batched in (True, False):
        engine = AssociationEngine(EngineConfig(profiles=None, batched=batched))
        for start in range(0, len(events), 5000):
            engine.process(events[start : start + 5000], now_ms=now)
        engine.flush()
        engines.append(engine)
    assert engines[1].evictions() > 0  # the capacity bites, so the sketches' order rules matter
    assert engines[1].transactions() == 14_122
    assert_same_counts(*engines)


@pytest.mark.parametrize("encode", [False, True], ids=["dicts", "json-bytes"])
@pytest.mark.parametrize(
    "extra",
    [{}, {"order_id": None}, {"order_id": "o7"}, {"session_id": None, "price": None}, {"note": "x"}],
    ids=["required-only", "order-none", "order", "optional-none", "unknown-field"],
)
def test_a_clean_batch_is_coded_like_record_by_record(encode, extra):
    """Column-wise checks of a clean batch: the same events and codes as one record at a time."""
    now = 2_000_000_000_000
    records = [
        {"event_id": f"e{n}", "user_id": f"u{n % 3}", "item_id": f"i{n % 5}", "kind": kind, "ts": now - n, **extra}
        for n, kind in enumerate(["click", "cart", "purchase", "click", "click", "cart"])
    ]
    raws = [orjson.dumps(record) for record in records] if encode else records
    expected, rejected = validate_many(raws, now_ms=now)
    assert not rejected
    books = {"users": Codebook(), "items": Codebook(), "orders": Codebook()}
    columns, rejected = validate_columns(raws, now_ms=now, **books)
    assert not rejected
    assert [columns.event(row) for row in range(len(columns))] == expected
    assert books["users"].names == ["u0", "u1", "u2"] and books["items"].names == ["i0", "i1", "i2", "i3", "i4"]
    assert columns.items.tolist() == [0, 1, 2, 3, 4, 0]
    bad = [*raws[:3], {**records[3], "ts": "yesterday"}, *raws[4:]]  # one bad record: per-record route
    columns, rejected = validate_columns(bad, now_ms=now, **books)
    assert [r.reason for r in rejected] == ["bad_format:ts"] and len(columns) == 5


def test_an_order_line_does_not_repeat_a_pair_its_session_counted_in_an_earlier_batch() -> None:
    """u0 buys Y (order o2), then X (o1): Y → X counted as purchase → purchase. In the next batch
    the session goes on with Y in order o1, whose basket also holds Y → X; the session
    already counted it, so nothing is added (the per-event path is the reference)."""
    options = {"capacity": None, "max_items": None, "max_pairs": None, "half_life": None}
    engines = [AssociationEngine(_config(batched, **options)) for batched in (True, False)]
    first = [
        Event("e0", "u0", "i1", "purchase", 0, order_id="o2"),
        Event("e1", "u0", "i2", "purchase", 1, order_id="o1"),
        Event("e3", "u0", "i3", "click", 55),  # moves the watermark past e0 and e1
    ]
    second = [
        Event("e2", "u0", "i1", "purchase", 20, order_id="o1"),  # continues the session
        Event("e4", "u0", "i3", "click", 200),
    ]
    for batch in (first, second):
        reports = [engine.process_events(batch) for engine in engines]
        assert _report(reports[0]) == _report(reports[1])
    batched, reference = engines
    assert_same_counts(batched, reference)
    assert reference.store.items["i1"].partners["purchase->purchase"].counts == {"i2": 1.0}
