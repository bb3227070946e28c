"""The replica's index of "which items list X as a partner" (``PrecededBy``) follows records
as they are replaced and deleted: after every step it equals a scan of the records it holds.
And the ranking's rules read through it: an item seen only *before* X is a candidate for X."""

from __future__ import annotations

import random
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from stream.metrics import Metrics
from stream.replica import Replica
from stream.settings import Settings

ITEMS = [f"i{n}" for n in range(15)]
CHANNELS = ("click->click", "click->cart", "cart->purchase")


def new_replica() -> Replica:
    return Replica(Settings.from_env({}), Metrics(CollectorRegistry()))


def random_record(rng: random.Random, item: str) -> dict[str, Any]:
    others = [other for other in ITEMS if other != item]
    return {
        "item_id": item,
        "occurrences": {"click": float(rng.randint(3, 9)), "cart": 2.0, "purchase": 1.0},
        "opened": 1.0,
        "partners": {
            channel: [[other, float(rng.randint(1, 2))] for other in rng.sample(others, rng.randint(0, 4))]
            for channel in rng.sample(CHANNELS, rng.randint(0, 3))
        },
    }


def scanned(replica: Replica, item: str) -> dict[str, list[tuple[str, float]]]:
    """Every record the replica holds, scanned for ``item`` among its partners: holder →
    its (channel, pair count) pairs with ``item``."""
    found: dict[str, list[tuple[str, float]]] = {}
    for holder, record in replica.associations.items():
        for channel, partners in record["partners"].items():
            for partner, count in partners:
                if partner == item:
                    found.setdefault(holder, []).append((channel, count))
    return found


def test_the_index_follows_replaced_and_deleted_records() -> None:
    rng = random.Random(3)
    replica = new_replica()
    index = replica.preceded_by
    assert index is not None  # a worker that ranks (role "all") keeps it
    for step in range(400):
        item = rng.choice(ITEMS)
        if rng.random() < 0.15:  # a tombstone read from the topic
            replica._association(item.encode(), None)
        else:
            replica._association(item.encode(), orjson.dumps(random_record(rng, item)))
        for other in ITEMS:
            expected = scanned(replica, other)
            assert sorted(index.of(other)) == sorted(expected), (step, other)  # each holder once
            partners_of = lambda holder: replica.associations[holder]["partners"]  # noqa: E731
            assert dict(index.before(other, partners_of)) == expected
    assert len(index) > 0


def test_ranking_rules_offer_the_items_seen_before() -> None:
    replica = new_replica()
    # Shoppers looked at the case, then the phone: only the case's record names the pair.
    replica.apply_association(
        "case",
        {"occurrences": {"click": 4.0}, "opened": 4.0, "partners": {"click->click": [["phone", 3.0]]}},
    )
    replica.apply_association("phone", {"occurrences": {"click": 5.0}, "opened": 6.0, "partners": {}})
    assert replica.rules("phone") == []  # the association rules of the phone: none after it
    (rule,) = replica.rules_many(["phone"], preceding=True)[0]
    assert (rule.antecedent, rule.consequent, rule.channel, rule.preceded) == ("phone", "case", "click->click", True)
    # N = 10 transactions: lift = 3·10 / (5·4) = 1.5; confidence from the phone's side 3/5
    assert (rule.lift, rule.confidence, rule.support) == (1.5, 0.6, 0.3)
    (forward,) = replica.rules("case")
    assert (forward.lift, forward.confidence) == (1.5, 0.75)  # the same lift, read the counted way
    replica._association(b"case", None)  # the case's record deleted: nothing left to read backwards
    assert replica.rules_many(["phone"], preceding=True) == [[]]


def test_a_worker_that_only_counts_keeps_no_backward_index() -> None:
    replica = Replica(Settings.from_env({"XSELL_ROLE": "cooccurrence"}), Metrics(CollectorRegistry()))
    replica.apply_association(
        "case", {"occurrences": {"click": 4.0}, "opened": 4.0, "partners": {"click->click": [["phone", 3.0]]}}
    )
    assert replica.preceded_by is None
    assert replica.rules_many(["phone"], preceding=True) == [[]]  # it never ranks; nothing to read backwards
    assert [rule.consequent for rule in replica.rules("case")] == ["phone"]
