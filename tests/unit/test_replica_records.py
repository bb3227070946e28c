"""The replica parses an item-associations record without its published rules: what it keeps
equals the whole record parsed by orjson with ``channels`` removed (the reference), its
partner pairs kept as tuples the garbage collector stops walking."""

from __future__ import annotations

import gc
from typing import Any

import orjson
import pytest

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents.cooccurrence import COOCCURRENCE, association_records
from stream.engine import ItemAssociations, ItemUpdate
from stream.replica import parse_association_record


def reference(value: bytes) -> dict[str, Any]:
    record = orjson.loads(value)
    record.pop("channels", None)
    return record


def as_json(record: dict[str, Any]) -> Any:
    """The record as JSON reads it back: tuples become lists, as the reference has them."""
    return orjson.loads(orjson.dumps(record))


def published_records(item_ids: list[str]) -> list[bytes]:
    """Records as the co-occurrence agent publishes them, for items bought together."""
    states = []
    for item_id in item_ids:
        state = ItemAssociations(item_id)
        partners = tuple((other, "click->click") for other in item_ids if other != item_id)
        updates = [ItemUpdate(item_id, f"e-{item_id}-{n}", 1_000 + n, "click", partners, "", True) for n in range(3)]
        state.apply(updates, COOCCURRENCE)
        states.append(state)
    return association_records(states)


def test_a_published_record_is_kept_whole_but_for_its_rules() -> None:
    values = published_records(["a", "b", 'c,"channels":{"x":1}', "d\\"])
    for value in values:
        full = orjson.loads(value)
        assert full["channels"]["click->click"], "the records carry rules: the test would prove nothing"
        assert list(full)[-1] == "channels"  # last, where the replica's quick parse expects them
        kept = parse_association_record(value)
        assert as_json(kept) == reference(value)
        assert kept["partners"] and kept["occurrences"]
        assert all(isinstance(pairs, tuple) for pairs in kept["partners"].values())


@pytest.mark.parametrize(
    "record",
    [
        {"channels": {"click->click": [{"item_id": "b"}]}, "occurrences": {"click": 2.0}, "partners": {}, "opened": 1},
        {"occurrences": {"click": 2.0}, "channels": {"c": []}, "partners": {"click->click": [["b", 1]]}, "opened": 1},
        {"occurrences": {"click": 2.0}, "partners": {}, "opened": 1.0},
        {"item_id": "x", "occurrences": {}, "partners": {}, "channels": {"c": [{"item_id": ',"channels":'}]}},
    ],
    ids=["rules-first", "rules-before-counts", "no-rules", "rules-last-without-a-count"],
)
def test_other_key_orders_are_parsed_whole(record: dict[str, Any]) -> None:
    value = orjson.dumps(record)
    assert as_json(parse_association_record(value)) == reference(value)


def test_partner_pairs_leave_the_collector_at_its_first_young_collection() -> None:
    """A replica holds every record for the worker's life: pairs the collector keeps walking
    made its young collections 15-50 ms long (docs/benchmarks/pipeline.md)."""
    value = published_records(["a", "b", "c", "d"])[0]
    as_lists = orjson.loads(value)["partners"]["click->click"]
    kept = parse_association_record(value)["partners"]["click->click"]
    assert len(kept) == len(as_lists) == 3

    gc.collect(0)

    assert all(gc.is_tracked(pair) for pair in as_lists), "orjson's lists stay: the test would prove nothing"
    assert not any(gc.is_tracked(pair) for pair in kept)


@pytest.mark.parametrize(
    "partners",
    [5, {"click->click": 5}, {"click->click": [1, 2]}, {"click->click": ["ab"]}, {"click->click": [["b", 1, 2]]}],
    ids=["number", "channel-number", "pair-number", "pair-string", "triple"],
)
def test_partners_that_are_not_lists_of_pairs_are_an_error(partners: Any) -> None:
    value = orjson.dumps({"occurrences": {"click": 1.0}, "partners": partners, "opened": 1, "channels": {}})
    with pytest.raises(ValueError, match="partners"):
        parse_association_record(value)


def test_null_partners_are_none() -> None:
    """As before tuples: a record may say it has no partners with null."""
    value = orjson.dumps({"occurrences": {"click": 1.0}, "partners": None, "opened": 1, "channels": {}})
    assert parse_association_record(value)["partners"] == {}


@pytest.mark.parametrize("value", [b"[1, 2]", b'{"occurrences": ', b'{"a":1,"channels":{"c":[}'])
def test_a_record_that_is_no_object_is_an_error(value: bytes) -> None:
    with pytest.raises(ValueError):
        parse_association_record(value)
