"""The interactions agent's cache of decoded user states (what it keeps, and when it forgets),
and the stock its ranking reads from the index replica."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents import interactions
from stream.agents.interactions import SESSIONS, UserCache, UserState
from stream.engine import Event, ProfileConfig, UserActivity, UserProfile

CONFIG = ProfileConfig(dimension=4)


def _state(config: ProfileConfig = CONFIG) -> UserState:
    return UserState(UserActivity(SESSIONS), UserProfile(config))


def _click(user: str, item: str, ts: int) -> Event:
    return Event(event_id=f"{user}-{ts}", user_id=user, item_id=item, kind="click", ts=ts)


def test_the_least_recently_used_state_goes_first() -> None:
    cache = UserCache(2)
    a, b, c = _state(), _state(), _state()
    cache.keep(b"a", a)
    cache.keep(b"b", b)
    assert cache.get(b"a", CONFIG) is a  # a is now the most recent
    cache.keep(b"c", c)
    assert len(cache) == 2
    assert cache.get(b"b", CONFIG) is None
    assert cache.get(b"a", CONFIG) is a
    assert cache.get(b"c", CONFIG) is c


def test_size_zero_keeps_nothing() -> None:
    cache = UserCache(0)
    cache.keep(b"a", _state())
    assert len(cache) == 0
    assert cache.get(b"a", CONFIG) is None


def test_a_state_of_another_profile_dimension_is_read_again() -> None:
    cache = UserCache(4)
    cache.keep(b"a", _state(ProfileConfig(dimension=8)))
    assert cache.get(b"a", CONFIG) is None
    assert len(cache) == 0


class _CountingTable(dict):
    """Stands for the user-state table: bytes values, counts reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().get(key, default)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[_CountingTable]:
    fake = _CountingTable()
    monkeypatch.setattr(interactions, "user_state_table", fake)
    monkeypatch.setattr(interactions, "_user_cache", UserCache(8))
    yield fake


def test_a_cached_state_is_not_read_or_decoded_again(table: _CountingTable) -> None:
    written = _state()
    written.activity.ingest([_click("u", "i1", 1_000)])
    table[b"u"] = written.to_bytes()
    first = interactions._load_state(b"u", CONFIG)
    assert table.reads == 1
    assert [event.item_id for _, _, event in first.activity.pending] == ["i1"]
    assert interactions._load_state(b"u", CONFIG) is first
    assert table.reads == 1


def test_a_failed_batch_forgets_the_states_it_may_have_changed(table: _CountingTable) -> None:
    table[b"u"] = _state().to_bytes()
    changed = interactions._load_state(b"u", CONFIG)
    changed.activity.ingest([_click("u", "i1", 1_000)])  # a batch changes it, then fails before writing
    interactions._forget_unwritten()
    again = interactions._load_state(b"u", CONFIG)
    assert again is not changed
    assert again.activity.pending == []
    assert table.reads == 2


def test_a_revocation_forgets_every_cached_state(table: _CountingTable) -> None:
    table[b"u"] = _state().to_bytes()
    interactions._load_state(b"u", CONFIG)
    asyncio.run(interactions._forget_partitions(None, set()))
    assert len(interactions._user_cache) == 0
    interactions._load_state(b"u", CONFIG)
    assert table.reads == 2


def test_the_rankings_catalog_reads_stock_from_the_index_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of stock (``in_stock`` false) is ruled out; in stock, no stock field or an item the
    index does not know (None) is kept, as ``recommend_many`` reads an ``ItemInfo``."""
    from index import ItemIndex

    index = ItemIndex(dim=3)
    index.upsert(
        ["in", "out", "silent"],
        np.eye(3),
        [{"in_stock": True, "category": "c"}, {"in_stock": False}, {"category": "c"}],
    )
    monkeypatch.setattr(interactions.replica, "index", index)
    infos = interactions._IndexCatalog().lookup(["in", "out", "silent", "unknown"])
    assert [None if info is None else info.in_stock and not info.deleted for info in infos] == [
        True,
        False,
        True,
        None,
    ]
    monkeypatch.setattr(interactions.replica, "index", None)
    assert interactions._IndexCatalog().lookup(["in"]) == [None]
