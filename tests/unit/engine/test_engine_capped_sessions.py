"""Capped sessions with numpy (``_capped_vectorised``) against ``UserActivity._apply`` itself.

A session where the item cap or the per-event pair cap binds used to go event by event
through the sequential generator; it now goes through the dense recency window unless it has
order ids or times that go backwards. The reference here is ``_sequential``, which runs
``UserActivity._apply`` on the same rows.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine.columns import NO_ORDER
from stream.engine.pairs import _capped_vectorised, _sequential
from stream.engine.sessions import SessionConfig


def _emitted(columns):
    occurrences = sorted(zip(*(column.tolist() for column in columns[:3]), strict=True))
    pairs = sorted(zip(*(column.tolist() for column in columns[3:]), strict=True))
    return occurrences, pairs


sessions = st.lists(
    st.tuples(st.integers(0, 11), st.integers(0, 2), st.integers(0, 3)),  # item, kind, time step
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(sessions, st.sampled_from([None, 1, 3, 6]), st.sampled_from([None, 1, 2, 4]), st.integers(0, 5))
def test_capped_sessions_match_the_sequential_generator(rows, max_items, max_pairs, offset):
    items = np.array([100 + item for item, _, _ in rows], dtype=np.int64)
    kinds = np.array([kind for _, kind, _ in rows], dtype=np.int64)
    ts = 1_000 + np.cumsum([step for _, _, step in rows]).astype(np.int64)  # ties included
    orders = np.full(len(rows), NO_ORDER, dtype=np.int64)
    config = SessionConfig(session_gap_ms=10**9, max_items_per_session=max_items, max_pairs_per_event=max_pairs)
    session = np.arange(offset, offset + len(rows), dtype=np.int64)  # rows of a larger batch
    padded = [np.r_[np.zeros(offset, dtype=np.int64), column] for column in (items, kinds, ts, orders)]
    vectorised = _capped_vectorised(session, *padded[:3], config)
    assert vectorised is not None
    assert _emitted(vectorised) == _emitted(_sequential(session, *padded, config))


def test_a_session_too_large_for_the_dense_window_is_left_to_the_sequential_route():
    size = 2_100  # 2,100 events x 2,100 distinct items > the dense window's 4,000,000 cells
    rows = np.arange(size, dtype=np.int64)
    config = SessionConfig(max_items_per_session=None, max_pairs_per_event=50)
    assert _capped_vectorised(rows, rows + 1, np.zeros(size, dtype=np.int64), rows, config) is None
