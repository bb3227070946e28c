"""1⇒1 rules on Groceries against mlxtend (the reference), through the library and `xsell rules`."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder

from stream.engine import (
    AssociationEngine,
    CooccurrenceConfig,
    EngineConfig,
    SessionConfig,
    baskets_to_events,
    read_transactions,
)

EXACT = EngineConfig(
    sessions=SessionConfig(max_items_per_session=None, max_pairs_per_event=None),
    cooccurrence=CooccurrenceConfig(partner_capacity=None, dedup_capacity=0),
    profiles=None,
)


@pytest.fixture(scope="module")
def baskets(shared_data):
    return read_transactions(shared_data / "groceries" / "groceries.csv")


@pytest.fixture(scope="module")
def frame(baskets):
    encoder = TransactionEncoder()
    return pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)


def _reference(frame, min_support, min_confidence=0.0):
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=2)
    rules = association_rules(itemsets, metric="confidence", min_threshold=min_confidence)
    return {
        (next(iter(a)), next(iter(c))): (s, conf, lift)
        for a, c, s, conf, lift in zip(
            rules.antecedents, rules.consequents, rules.support, rules.confidence, rules.lift, strict=True
        )
    }


def test_groceries_has_169_items(baskets):
    assert len(baskets) == 9835
    assert len({item for basket in baskets for item in basket}) == 169


def test_rules_equal_mlxtend_at_support_0_001(baskets, frame):
    reference = _reference(frame, 0.001)
    engine = AssociationEngine(EXACT)
    engine.add_baskets(baskets)
    mine = {(r.antecedent, r.consequent): r for r in engine.rules(min_support=0.001)}
    assert set(mine) == set(reference)
    assert len(reference) > 5000
    for key, (support, confidence, lift) in reference.items():
        rule = mine[key]
        assert rule.support == pytest.approx(support, abs=1e-9)
        assert rule.confidence == pytest.approx(confidence, abs=1e-9)
        assert rule.lift == pytest.approx(lift, abs=1e-9)


def test_textbook_463_rules_and_the_150_single_item_ones(frame):
    itemsets = fpgrowth(frame, min_support=0.006, use_colnames=True)
    rules = association_rules(itemsets, metric="confidence", min_threshold=0.25)
    single_consequent = rules[rules.consequents.map(len) == 1]
    assert len(rules) == 467
    assert len(single_consequent) == 463
    one_to_one = single_consequent[single_consequent.antecedents.map(len) == 1]
    assert len(one_to_one) == 150


def test_xsell_rules_reproduces_the_150_rules(xsell, shared_data, frame, tmp_path):
    out = tmp_path / "rules.json"
    completed = xsell(
        "rules",
        "--transactions",
        str(shared_data / "groceries" / "groceries.csv"),
        "--min-support",
        "0.006",
        "--min-confidence",
        "0.25",
        "--json",
        str(out),
    )
    assert completed.returncode == 0, completed.stderr
    rules = orjson.loads(out.read_bytes())
    reference = _reference(frame, 0.006, 0.25)
    assert len(reference) == 150
    assert {(r["antecedent"], r["consequent"]) for r in rules} == set(reference)
    for rule in rules:
        support, confidence, lift = reference[(rule["antecedent"], rule["consequent"])]
        assert abs(rule["support"] - support) < 1e-9
        assert abs(rule["confidence"] - confidence) < 1e-9
        assert abs(rule["lift"] - lift) < 1e-9
    keys = [(-r["lift"], -r["confidence"]) for r in rules]
    assert keys == sorted(keys)
    assert set(rules[0]) == {"antecedent", "consequent", "support", "confidence", "lift", "llr"}


def test_baskets_csv_and_bad_input(xsell, tmp_path):
    good = tmp_path / "b.csv"
    good.write_text("basket_id,item_id\n1,a\n1,b\n2,a\n2,b\n3,a\n")
    out = tmp_path / "r.json"
    completed = xsell("rules", "--baskets", str(good), "--json", str(out), timeout=60)
    assert completed.returncode == 0, completed.stderr
    rules = {(r["antecedent"], r["consequent"]): r for r in orjson.loads(out.read_bytes())}
    assert rules[("a", "b")]["confidence"] == pytest.approx(2 / 3)
    assert rules[("b", "a")]["confidence"] == pytest.approx(1.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("order,item\n1,a\n")
    completed = xsell("rules", "--baskets", str(bad), timeout=60)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "basket_id,item_id" in completed.stderr


def test_vectorised_baskets_equal_streamed_events(baskets):
    sample = baskets[:1500]
    batched = AssociationEngine(EXACT)
    batched.add_baskets(sample, batch_size=400)
    streamed = AssociationEngine(EXACT)
    streamed.process_events(baskets_to_events(sample))
    streamed.flush()

    def as_dict(engine):
        return {
            (r.antecedent, r.consequent): (r.pair_count, r.antecedent_count, r.consequent_count)
            for r in engine.rules()
        }

    assert as_dict(batched) == as_dict(streamed)
    assert batched.transactions() == streamed.transactions() == 1500
