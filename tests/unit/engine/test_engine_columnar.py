"""``CodedCounts`` against a plain dictionary recount: sums, distinct partners, overflow and take.

The recent run is made tiny here so that the merges into the large run happen on every few
batches (on the real replay they happen only past 65,536 keys).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import columnar
from stream.engine.columnar import CodedCounts
from stream.engine.events import KINDS
from stream.engine.sessions import CHANNELS

NAMES = [f"i{n}" for n in range(12)]

batches = st.lists(
    st.lists(  # one batch: (antecedent, channel, consequent, weight)
        st.tuples(st.integers(0, 11), st.integers(0, len(CHANNELS) - 1), st.integers(0, 11), st.integers(1, 3)),
        max_size=30,
    ),
    min_size=1,
    max_size=8,
)


def _key(antecedent: int, channel: int, consequent: int) -> int:
    return int(CodedCounts.pair_keys(np.array([antecedent]), np.array([channel]), np.array([consequent]))[0])


def _add(coded: CodedCounts, batch: list[tuple[int, int, int, int]]) -> None:
    sums: dict[int, float] = defaultdict(float)
    for antecedent, channel, consequent, weight in batch:
        sums[_key(antecedent, channel, consequent)] += weight
    keys = np.array(sorted(sums), dtype=np.int64)
    values = np.array([sums[key] for key in keys.tolist()], dtype=np.float64)
    items = np.array(sorted({a for a, _, _, _ in batch}), dtype=np.int64)  # each antecedent occurs as a click
    at, found = coded.locate(keys)
    coded.add(items, np.zeros_like(items), np.ones(items.shape[0]), keys, values, at, found)


@settings(max_examples=150, deadline=None)
@given(batches, st.sampled_from([2, 5, None]))
def test_columns_equal_a_dictionary_recount(history, capacity):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(columnar, "_RECENT_RUN", 4)  # merge the recent run into the large one often
        _check(history, capacity)


def _sums_of(taken) -> dict[tuple[int, int, int], float]:
    return {
        (NAMES.index(name), CHANNELS.index(channel), NAMES.index(partner)): value
        for name, _, sketches in taken
        for channel, sketch in sketches.items()
        for partner, value in sketch.counts.items()
    }


def _check(history, capacity):
    """Feed the batches as ``CooccurrenceStore.apply_coded`` does: an item that a batch would
    push past the capacity is taken out first (it becomes an object) and its keys go elsewhere."""
    coded = CodedCounts(capacity)
    coded.use(NAMES)
    expected: dict[tuple[int, int, int], float] = defaultdict(float)
    occurrences: dict[int, float] = defaultdict(float)
    objects: set[int] = set()
    for batch in history:
        batch = [row for row in batch if row[0] not in objects]
        keys = {(a, c, b) for a, c, b, _ in batch}
        fresh_groups = {(a, c) for a, c, b in keys if (a, c, b) not in expected}
        partners = defaultdict(set)
        for a, c, b in [*expected, *keys]:
            partners[a, c].add(b)
        over = {a for a, c in fresh_groups if capacity is not None and len(partners[a, c]) > capacity}
        keys_array = np.array(sorted(_key(a, c, b) for a, c, b in keys), dtype=np.int64)
        assert set(coded.overflowing(keys_array, coded.locate(keys_array)[1]).tolist()) == over
        if over:  # what the store adopts: exactly the sums so far of those items
            taken = coded.take(np.array(sorted(over)))
            assert {NAMES.index(name) for name, _, _ in taken} == over & set(occurrences)
            assert _sums_of(taken) == {key: value for key, value in expected.items() if key[0] in over}
            objects |= over
            for key in [key for key in expected if key[0] in over]:
                del expected[key]
            for item in over:
                occurrences.pop(item, None)
            batch = [row for row in batch if row[0] not in over]
        _add(coded, batch)
        for a, c, b, weight in batch:
            expected[a, c, b] += weight
        for a in {a for a, _, _, _ in batch}:
            occurrences[a] += 1.0
    taken = coded.take()
    assert {name: kinds for name, kinds, _ in taken} == {NAMES[a]: {KINDS[0]: n} for a, n in occurrences.items()}
    assert _sums_of(taken) == dict(expected)
    for _, _, sketches in taken:
        for sketch in sketches.values():
            assert sketch.total == sum(sketch.counts.values()) and sketch.evictions == 0
            assert set(sketch.errors.values()) <= {0.0}
            assert capacity is None or len(sketch.counts) <= capacity
    assert len(coded) == 0 and coded.take() == []
