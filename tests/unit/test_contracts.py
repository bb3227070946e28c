"""The JSON contracts: schema files are valid, builders obey them, validation agrees."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from stream import records
from stream.engine import InvalidEvent, validate_event

SCHEMAS = Path(__file__).resolve().parents[2] / "stream" / "schemas"
NOW_MS = 1_700_000_000_000


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.stem)
def test_schema_files_are_valid_draft_2020_12(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_dead_letter_builder_obeys_its_schema_and_cuts_oversized_originals() -> None:
    big = b"x" * (records.DEAD_LETTER_MAX_ORIGINAL_BYTES * 3)
    message = orjson.loads(
        records.dead_letter(topic="clicks", partition=2, offset=41, key=b"u1", value=big, reason="too_large")
    )
    validator("dead-letter").validate(message)
    assert message["original_size"] == len(big)
    assert message["truncated"] is True
    assert len(message["original_base64"]) < len(big)
    small = orjson.loads(
        records.dead_letter(topic="carts", partition=0, offset=0, key=None, value=b"{", reason="not_json")
    )
    validator("dead-letter").validate(small)
    assert small["truncated"] is False and small["original_size"] == 1


def test_output_builders_obey_their_schemas() -> None:
    recommendation = records.cross_recommendation(
        user_id="u1",
        trigger_event_id="e1",
        trigger_item_id="i1",
        ts=NOW_MS,
        items=[{"item_id": "i2", "score": 0.5, "reasons": ["bought together with i1 (lift 4.1)"]}],
        model="all-MiniLM-L6-v2@abc",
    )
    validator("cross-recommendation").validate(orjson.loads(recommendation))
    target = records.ad_target(user_id="u1", campaign_id="c1", score=0.7, ts=NOW_MS, trigger_event_id="e1")
    validator("ad-target").validate(orjson.loads(target))
    vector = np.random.default_rng(0).normal(size=384).astype(np.float32)
    embedding = orjson.loads(
        records.item_embedding(kind="item", id="i1", model="m", vector=vector, in_stock=True)
    )
    validator("item-embedding").validate(embedding)
    np.testing.assert_array_equal(records.decode_vector(embedding["vector_base64"], 384), vector)


VALID_EVENTS = [
    {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW_MS},
    {"event_id": "e2", "user_id": "u1", "item_id": "i1", "ts": "2023-11-14T22:13:20Z"},
    {
        "event_id": "e3",
        "user_id": "u1",
        "item_id": "i1",
        "ts": NOW_MS,
        "quantity": 2,
        "price": 9.5,
        "order_id": "o1",
    },
    {"event_id": "e4", "user_id": "u1", "item_id": "i1", "ts": NOW_MS, "session_id": "s1", "quantity": None},
    {"event_id": 5, "user_id": 17, "item_id": 123456, "ts": NOW_MS},
]
INVALID_EVENTS = [
    {"user_id": "u1", "item_id": "i1", "ts": NOW_MS},
    {"event_id": "e1", "item_id": "i1", "ts": NOW_MS},
    {"event_id": "e1", "user_id": "u1", "ts": NOW_MS},
    {"event_id": "e1", "user_id": "u1", "item_id": "i1"},
    {"event_id": "e1", "user_id": ["u1"], "item_id": "i1", "ts": NOW_MS},
    {"event_id": "e1", "user_id": 7.5, "item_id": "i1", "ts": NOW_MS},
    {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW_MS, "quantity": -1},
    {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW_MS, "quantity": "two"},
    {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW_MS, "price": -3},
    {"event_id": "e1", "user_id": "u1", "item_id": "x" * 300, "ts": NOW_MS},
    {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": 12},
    {"event_id": "", "user_id": "u1", "item_id": "i1", "ts": NOW_MS},
]


@pytest.mark.parametrize("event", VALID_EVENTS)
def test_valid_events_pass_both_the_schema_and_the_engine(event: dict) -> None:
    validator("event").validate(event)
    validate_event(orjson.dumps(event), kind="click", now_ms=NOW_MS + 10**10)


@pytest.mark.parametrize("event", INVALID_EVENTS)
def test_invalid_events_fail_both_the_schema_and_the_engine(event: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator("event").validate(event)
    with pytest.raises(InvalidEvent):
        validate_event(orjson.dumps(event), kind="click", now_ms=NOW_MS + 10**10)
