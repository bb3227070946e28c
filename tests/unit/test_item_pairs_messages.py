"""Parsing one item-pairs message: a malformed partner fails that message (it is dead-lettered
alone, ``bad_pairs``), never the co-occurrence batch it arrived in."""

from __future__ import annotations

import orjson
import pytest

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents.cooccurrence import _updates_of


def test_an_update_and_its_partners_are_read() -> None:
    value = orjson.dumps({"updates": [["a", "e1", 5, "click", [["b", "click->click"]], 1], ["b", "e2", 6, None, []]]})
    first, second = _updates_of(value)
    assert (first.item_id, first.event_id, first.ts, first.occurrence, first.opens) == ("a", "e1", 5, "click", True)
    assert list(first.partners) == [("b", "click->click")]
    assert second.opens is False and list(second.partners) == []  # a five-field update (before ``opens``)


@pytest.mark.parametrize(
    "updates",
    [
        [["a", "e1", 5, "click", [["b"]], 1]],  # a partner without its channel
        [["a", "e1", "soon", "click", [], 0]],  # a time that is no number
        [["a", "e1", 5]],  # too few fields
    ],
)
def test_a_malformed_update_fails_its_message(updates) -> None:
    with pytest.raises((ValueError, TypeError)):
        _updates_of(orjson.dumps({"updates": updates}))
