"""One real worker on the real broker: catalog → index, planted associations, dead letters."""

from __future__ import annotations

import base64
import csv
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from index import read_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AISLES = {"24": "fresh fruits", "41": "cat food care", "26": "coffee", "75": "laundry", "120": "yogurt", "27": "beers"}
PER_AISLE = 40
NOW_MS = int(time.time() * 1000)


def instacart_catalog(shared_data: Path) -> list[dict]:
    """Real product names of six aisles (40 each), as catalog upserts."""
    by_aisle: dict[str, list[dict]] = {aisle: [] for aisle in AISLES}
    with (shared_data / "instacart" / "products.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            aisle = row["aisle_id"]
            if aisle in by_aisle and len(by_aisle[aisle]) < PER_AISLE:
                by_aisle[aisle].append(
                    {
                        "item_id": f"ic{row['product_id']}",
                        "title": row["product_name"].replace("\\", ""),
                        "category": f"Grocery>{AISLES[aisle]}",
                        "in_stock": True,
                    }
                )
    return [item for items in by_aisle.values() for item in items]


def event(event_id: str, user: str, item: str, ts: int, **extra) -> dict:
    return {"event_id": event_id, "user_id": user, "item_id": item, "ts": ts, **extra}


def test_catalog_flows_into_the_index_and_similar_items_share_an_aisle(deployment, kafka_io, shared_data, until):
    catalog = instacart_catalog(shared_data)
    assert len(catalog) == PER_AISLE * len(AISLES)
    worker = deployment.worker("w1").wait_ready()
    kafka_io.produce_json(deployment.topic("catalog"), catalog, "item_id")
    until(lambda: worker.get("/healthz").json()["index_items"] == len(catalog), 180, message="catalog not indexed")

    aisle_of = {item["item_id"]: item["category"] for item in catalog}
    same = total = 0
    for item in catalog[::8]:
        response = worker.get(f"/items/{item['item_id']}/similar", k=5)
        assert response.status_code == 200
        neighbours = response.json()["similar"]
        assert len(neighbours) == 5 and item["item_id"] not in {n["item_id"] for n in neighbours}
        same += sum(aisle_of[n["item_id"]] == item["category"] for n in neighbours)
        total += len(neighbours)
    assert same / total >= 0.7, f"only {same}/{total} similar items share the aisle"

    assert worker.get("/items/nope/similar").status_code == 404
    assert worker.get(f"/items/{catalog[0]['item_id']}/similar", k="x").status_code == 400

    # A worker joining now reads the embeddings before it is ready and writes its index
    # snapshot then, not while it answers (writing one delays queries briefly).
    deployment.worker("w2").wait_ready()
    assert read_manifest(deployment.root / "w2" / "replica" / "index").count == len(catalog)


def test_planted_association_reaches_a_new_user_with_a_reason(deployment, kafka_io, until):
    worker = deployment.worker("w1").wait_ready()
    catalog = [
        {"item_id": "phone", "title": "Smartphone 128GB", "category": "Electronics>Phones"},
        {"item_id": "case", "title": "Shockproof phone case", "category": "Electronics>Accessories"},
        {"item_id": "tea", "title": "Green tea 20 bags", "category": "Grocery>Tea"},
        {"item_id": "soap", "title": "Lavender hand soap", "category": "Home>Bath"},
    ]
    kafka_io.produce_json(deployment.topic("catalog"), catalog, "item_id")
    events = []
    for user in range(40):
        base = NOW_MS - 3_600_000 + user * 60_000
        if user % 2 == 0:  # buyers of the phone later buy the case
            events += [event(f"a{user}", f"u{user}", "phone", base), event(f"b{user}", f"u{user}", "case", base + 5000)]
        else:
            events += [event(f"c{user}", f"u{user}", "tea", base), event(f"d{user}", f"u{user}", "soap", base + 5000)]
    kafka_io.produce_json(deployment.topic("purchases"), events, "user_id")

    def case_counted():
        # Users are applied as the event-time watermark passes them, so wait for all 20.
        response = worker.get("/items/phone/associations")
        if response.status_code != 200:
            return None
        rules = [rule for rule in response.json()["associations"] if rule["consequent"] == "case"]
        return rules and rules[0]["pair_count"] == 20 and rules[0]

    case = until(case_counted, 90, message="the phone's buyers were not all counted")
    assert case["lift"] > 1

    kafka_io.produce_json(deployment.topic("clicks"), [event("new-1", "newcomer", "phone", NOW_MS)], "user_id")

    def answered():
        found = [
            r
            for r in kafka_io.consume_json(deployment.topic("cross-recommendations"), idle_s=1)
            if r["trigger_event_id"] == "new-1"
        ]
        return found

    answer = until(answered, 60, message="the newcomer was not answered")[0]
    top = answer["items"][0]
    assert top["item_id"] == "case"
    assert any("phone" in reason and "lift" in reason for reason in top["reasons"]), top
    latest = worker.get("/users/newcomer/recommendations")
    assert latest.status_code == 200 and latest.json()["trigger_event_id"] == "new-1"
    assert worker.get("/users/nobody/recommendations").status_code == 404


MALFORMED = [
    (b"u-bad", b"not json", "not_json"),
    (b"u-bad", orjson.dumps({"event_id": "m1", "user_id": 3.5, "item_id": "i", "ts": NOW_MS}), "wrong_type:user_id"),
    (b"u-bad", orjson.dumps({"event_id": "m2", "item_id": "i", "ts": NOW_MS}), "missing_field:user_id"),
    (b"u-bad", orjson.dumps({"event_id": "m3", "user_id": "u", "ts": NOW_MS}), "missing_field:item_id"),
    (b"u-bad", b'{"event_id": "m4", "user_id": "u", "item_id": "' + b"x" * 100_000 + b'", "ts": 1}', "too_large"),
    (
        b"u-bad",
        orjson.dumps({"event_id": "m5", "user_id": "u", "item_id": "i", "ts": NOW_MS + 10 * 86_400_000}),
        "ts_in_future",
    ),
]


def test_malformed_messages_are_dead_lettered_and_change_nothing(deployment, kafka_io, until):
    worker = deployment.worker("w1").wait_ready()
    valid = [
        event("v1", "solo", "late-item", NOW_MS - 50_000),
        event("v2", "solo", "partner-item", NOW_MS - 40_000),
    ]
    kafka_io.produce(deployment.topic("purchases"), [(key, value) for key, value, _ in MALFORMED[:3]])
    kafka_io.produce_json(deployment.topic("purchases"), valid, "user_id")
    kafka_io.produce(deployment.topic("clicks"), [(key, value) for key, value, _ in MALFORMED[3:]])

    letters = until(
        lambda: (
            (found := kafka_io.consume_json(deployment.topic("dead-letter"), idle_s=1)) and len(found) >= 6 and found
        ),
        60,
        message="dead letters missing",
    )
    assert sorted(letter["reason"] for letter in letters) == sorted(reason for _, _, reason in MALFORMED)
    for letter in letters:
        assert letter["topic"] in {deployment.topic("purchases"), deployment.topic("clicks")}
        assert letter["partition"] >= 0 and letter["offset"] >= 0
        original = base64.b64decode(letter["original_base64"])
        assert original == next(value for _, value, reason in MALFORMED if reason == letter["reason"])[: len(original)]
    oversized = next(letter for letter in letters if letter["reason"] == "too_large")
    assert oversized["truncated"] and oversized["original_size"] > 100_000
    assert worker.get("/healthz").status_code == 200

    # Events for items the catalog does not know yet are valid: counted now, recommendable later.
    rules = until(lambda: worker.get("/items/late-item/associations").json().get("associations"), 60)
    assert [(r["consequent"], r["pair_count"], r["transactions"]) for r in rules] == [("partner-item", 1.0, 1.0)]
    answered = kafka_io.consume_json(deployment.topic("cross-recommendations"), idle_s=1)
    assert sorted(r["trigger_event_id"] for r in answered) == ["v1", "v2"], "malformed input was answered"
    kafka_io.produce_json(
        deployment.topic("catalog"), [{"item_id": "partner-item", "title": "Partner item", "in_stock": True}], "item_id"
    )
    until(lambda: worker.get("/items/partner-item/similar").status_code == 200 or None, 60)
    kafka_io.produce_json(deployment.topic("clicks"), [event("v3", "other", "late-item", NOW_MS)], "user_id")
    reply = until(
        lambda: [
            r
            for r in kafka_io.consume_json(deployment.topic("cross-recommendations"), idle_s=1)
            if r["trigger_event_id"] == "v3"
        ],
        60,
    )[0]
    assert reply["items"] and reply["items"][0]["item_id"] == "partner-item"
    counts = Counter(letter["reason"] for letter in letters)
    assert all(count == 1 for count in counts.values())
