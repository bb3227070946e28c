"""The candidate sources shared by the stream and the evaluation, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from stream.engine.retrieval import best_lift_rules, blend_query_vector, blend_query_vectors, trending_items


def test_best_lift_rules_keeps_the_best_channel_per_consequent() -> None:
    counts = {("B", "click"): 2.0, ("B", "cart"): 1.0, ("C", "click"): 4.0}
    rules = best_lift_rules(
        "A",
        occurrences={"click": 4.0},
        partners={"click->click": [("B", 2.0), ("C", 1.0)], "click->cart": [("B", 1.0)]},
        consequent_count=lambda item, kind: counts.get((item, kind), 0.0),
        transactions=10.0,
    )
    # lift = n_ab · N / (n_a · n_b): A→B click 2·10/(4·2) = 2.5, cart 1·10/(4·1) = 2.5 (tie; the
    # click rule has the higher confidence, 0.5 against 0.25), A→C 1·10/(4·4) = 0.625
    assert [(rule.consequent, rule.channel) for rule in rules] == [("B", "click->click"), ("C", "click->click")]
    assert [rule.lift for rule in rules] == pytest.approx([2.5, 0.625])
    assert rules[0].confidence == pytest.approx(0.5)
    only_cart = best_lift_rules(
        "A",
        occurrences={"click": 4.0},
        partners={"click->click": [("B", 2.0)], "click->cart": [("B", 1.0)]},
        consequent_count=lambda item, kind: counts.get((item, kind), 0.0),
        transactions=10.0,
        channels=("click->cart",),
    )
    assert [rule.channel for rule in only_cart] == ["click->cart"]


def test_trending_and_query_vector() -> None:
    assert trending_items([("a", {"click": 1.0}), ("b", {"click": 1.0, "cart": 2.0}), ("c", {"cart": 1.0})], 2) == [
        ("b", 3.0),
        ("a", 1.0),
    ]
    profile = np.array([1.0, 0.0], dtype=np.float32)
    assert np.array_equal(blend_query_vector(profile, np.full((1, 2), np.nan)), profile)
    blended = blend_query_vector(profile, np.array([[0.0, 2.0], [np.nan, np.nan]]))
    assert blended == pytest.approx(np.array([1.0, 1.0]) / np.sqrt(2.0))


def test_blending_a_batch_gives_each_user_its_own_blend() -> None:
    """Each user's rows alone, against the blend worked out here: the mean of its known fresh
    vectors, normalised, plus its profile vector, normalised; no known row: the profile as is."""
    rng = np.random.default_rng(3)
    profiles = rng.normal(size=(4, 6)).astype(np.float32)
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    counts = [2, 0, 1, 3]  # the second user has no fresh item, the third only an unknown one
    fresh = rng.normal(size=(6, 6)).astype(np.float32)
    fresh[2] = np.nan
    fresh[4] = np.nan
    blended = blend_query_vectors(profiles, fresh, counts)
    assert blended.dtype == np.float32

    def expected(profile: np.ndarray, rows: np.ndarray) -> np.ndarray:
        known = [row for row in rows if not np.isnan(row).any()]
        if not known:
            return profile
        mean = np.mean(known, axis=0, dtype=np.float64)
        blend = mean / np.linalg.norm(mean) + profile
        return blend / np.linalg.norm(blend)

    starts = np.cumsum([0, *counts])
    for user in range(4):
        rows = fresh[starts[user] : starts[user + 1]]
        assert blended[user] == pytest.approx(expected(profiles[user], rows), abs=1e-6)
        assert np.array_equal(blended[user], blend_query_vector(profiles[user], rows))  # alone: the same
    assert np.array_equal(blended[1], profiles[1]) and np.array_equal(blended[2], profiles[2])
    with pytest.raises(ValueError, match="counts add up to 5"):
        blend_query_vectors(profiles, fresh, [2, 0, 1, 2])


def test_published_rules_of_many_items_match_a_per_rule_recount() -> None:
    """Many items in one vectorised pass: each rule's metrics against the textbook formulas,
    llr against scipy's G-test, order and truncation as the record contract says."""
    from scipy.stats import chi2_contingency

    from stream.engine.retrieval import published_channel_rules

    rng = np.random.default_rng(3)
    n = 500.0
    names = [f"p{i}" for i in range(30)]
    own = {(name, kind): float(rng.integers(5, 60)) for name in names for kind in ("click", "cart")}
    items = []
    for _ in range(40):
        occurrences = {"click": float(rng.integers(5, 80)), "cart": float(rng.integers(5, 20)) * (rng.random() < 0.8)}
        partners = {
            channel: [(str(name), float(rng.integers(1, 5))) for name in rng.choice(names, rng.integers(0, 12), False)]
            for channel in ("click->click", "click->cart", "cart->cart")
        }
        items.append((occurrences, partners))
    top_k = 4
    tables = published_channel_rules(
        items, consequent_count=lambda name, kind: own[(name, kind)], transactions=n, top_k=top_k
    )
    assert len(tables) == len(items)
    checked = 0
    for (occurrences, partners), table in zip(items, tables, strict=True):
        for channel, channel_partners in partners.items():
            antecedent, consequent = channel.split("->")
            n_a = occurrences[antecedent]
            if not channel_partners or n_a <= 0:
                assert channel not in table
                continue
            expected = []
            for name, n_ab in channel_partners:
                n_b = max(own[(name, consequent)], n_ab)
                observed = np.array([[n_ab, n_a - n_ab], [n_b - n_ab, n - n_a - n_b + n_ab]])
                g = chi2_contingency(observed, correction=False, lambda_="log-likelihood")[0]
                expected.append((name, n_ab, n_ab / n, n_ab / n_a, n_ab * n / (n_a * n_b), g))
            expected.sort(key=lambda rule: (-rule[4], -rule[3], rule[0]))
            got = table[channel]
            assert [rule[0] for rule in got] == [rule[0] for rule in expected[:top_k]]
            assert np.array(got)[:, 1:].astype(float) == pytest.approx(
                np.array([rule[1:] for rule in expected[:top_k]]), rel=1e-9, abs=1e-9
            )
            checked += len(got)
    assert checked > 100


def test_best_lift_rules_of_many_items_match_a_per_rule_recount() -> None:
    """Many items in one pass (what a ranking batch asks): per item, one rule per consequent (its
    best channel), metrics against the textbook formulas and scipy's G-test, best lift first."""
    from scipy.stats import chi2_contingency

    from stream.engine.retrieval import best_lift_rules_many

    rng = np.random.default_rng(5)
    n = 400.0
    names = [f"p{i}" for i in range(25)]
    own = {(name, kind): float(rng.integers(5, 50)) for name in names for kind in ("click", "cart")}
    items = [("lonely", {"click": 3.0}, {})]
    for number in range(30):
        occurrences = {"click": float(rng.integers(5, 60)), "cart": float(rng.integers(5, 15)) * (rng.random() < 0.7)}
        partners = {
            channel: [(str(name), float(rng.integers(1, 5))) for name in rng.choice(names, rng.integers(0, 10), False)]
            for channel in ("click->click", "click->cart", "cart->cart")
        }
        items.append((f"i{number}", occurrences, partners))
    top_k = 6
    found = best_lift_rules_many(
        items, consequent_count=lambda name, kind: own[(name, kind)], transactions=n, top_k=top_k
    )
    assert len(found) == len(items) and found[0] == []
    checked = 0
    for (item_id, occurrences, partners), rules in zip(items, found, strict=True):
        best: dict[str, tuple] = {}
        for channel, channel_partners in partners.items():
            antecedent, consequent = channel.split("->")
            n_a = occurrences[antecedent]
            for name, n_ab in channel_partners if n_a > 0 else ():
                n_b = max(own[(name, consequent)], n_ab)
                observed = np.array([[n_ab, n_a - n_ab], [n_b - n_ab, n - n_a - n_b + n_ab]])
                g = chi2_contingency(observed, correction=False, lambda_="log-likelihood")[0]
                rule = (name, channel, n_ab * n / (n_a * n_b), n_ab / n_a, n_ab / n, g)
                if name not in best or (-rule[2], -rule[3], channel) < (-best[name][2], -best[name][3], best[name][1]):
                    best[name] = rule
        expected = sorted(best.values(), key=lambda rule: (-rule[2], -rule[3], rule[0]))[:top_k]
        assert [(rule.antecedent, rule.consequent, rule.channel) for rule in rules] == [
            (item_id, name, channel) for name, channel, *_ in expected
        ]
        got = [(rule.lift, rule.confidence, rule.support, rule.llr) for rule in rules]
        assert got == [pytest.approx(metrics, rel=1e-9, abs=1e-9) for _, _, *metrics in expected]
        checked += len(rules)
    assert checked > 100


def test_rules_read_backwards_match_a_per_rule_recount() -> None:
    """The ranking's rules of an item with a short record also offer the items seen *before*
    it: for each item X that others list as a partner, every (A, channel) with A → X counted
    becomes a candidate A for X, with X's and A's counts swapped in the textbook formulas
    (scipy's G-test for the llr). One rule per candidate, forward or backward, whichever has
    the better lift. An item whose record lists ``BACKWARD_BELOW`` partners or more keeps
    its forward rules only."""
    from scipy.stats import chi2_contingency

    from stream.engine.retrieval import BACKWARD_BELOW, best_lift_rules_many

    rng = np.random.default_rng(9)
    n = 500.0
    names = [f"p{i}" for i in range(24)]
    kinds = ("click", "cart")
    channels = ("click->click", "click->cart", "cart->cart")
    own = {(name, kind): float(rng.integers(8, 40)) for name in names for kind in kinds}
    records: dict[str, tuple[dict[str, float], dict[str, list[tuple[str, float]]]]] = {}
    for number, name in enumerate(names):  # every item lists some of the others as partners seen after it
        others = [other for other in names if other != name]
        per_channel = (lambda: 8) if number % 4 == 0 else (lambda: int(rng.integers(0, 6)))  # 24 ≥ 20, or short
        records[name] = (
            {kind: own[(name, kind)] for kind in kinds},
            {
                channel: [(str(other), float(rng.integers(1, 8))) for other in rng.choice(others, per_channel(), False)]
                for channel in channels
            },
        )
    items = [(name, *records[name]) for name in names]

    # The brute-force "who lists X": every record scanned, not PrecededBy.
    def pairs_with(other: str, name: str) -> list[tuple[str, float]]:
        return [(channel, n_ab) for channel, ps in records[other][1].items() for p, n_ab in ps if p == name]

    def preceding(name: str) -> list[tuple[str, dict[str, float], list[tuple[str, float]]]]:
        return [(other, records[other][0], pairs_with(other, name)) for other in names if pairs_with(other, name)]

    top_k = 8
    found = best_lift_rules_many(
        items, consequent_count=lambda item, kind: own[(item, kind)], transactions=n, top_k=top_k, preceding=preceding
    )
    forward_only = best_lift_rules_many(items, consequent_count=lambda item, kind: own[(item, kind)], transactions=n)
    Row = tuple[str, str, bool, float, float, float, float]  # candidate, channel, backward, lift, conf, support, llr

    def row(candidate: str, channel: str, backward: bool, n_ab: float, n_a: float, n_b: float) -> Row:
        observed = np.array([[n_ab, n_a - n_ab], [n_b - n_ab, n - n_a - n_b + n_ab]])
        g = chi2_contingency(observed, correction=False, lambda_="log-likelihood")[0]
        return (candidate, channel, backward, n_ab * n / (n_a * n_b), n_ab / n_a, n_ab / n, g)

    backward_seen = full_records = 0
    for name, rules, plain in zip(names, found, forward_only, strict=True):
        occurrences, partners = records[name]
        short = sum(len(channel_partners) for channel_partners in partners.values()) < BACKWARD_BELOW
        full_records += not short
        candidates: list[Row] = []
        for channel, channel_partners in partners.items():
            antecedent, consequent = channel.split("->")
            for other, n_ab in channel_partners:
                candidates.append(
                    row(other, channel, False, n_ab, occurrences[antecedent], max(own[(other, consequent)], n_ab))
                )
        for other in names if short else ():
            for channel, channel_partners in records[other][1].items():
                antecedent, consequent = channel.split("->")
                for partner, n_ab in channel_partners:
                    if partner == name:  # other → name was counted: name's count first, then other's
                        n_name = max(own[(name, consequent)], n_ab)
                        candidates.append(row(other, channel, True, n_ab, n_name, records[other][0][antecedent]))
        best: dict[str, Row] = {}
        for candidate in candidates:  # forward rows first, so a tie keeps the forward rule
            current = best.get(candidate[0])
            if current is None or (-candidate[3], -candidate[4]) < (-current[3], -current[4]):
                best[candidate[0]] = candidate
        expected = sorted(best.values(), key=lambda rule: (-rule[3], -rule[4], rule[0]))[:top_k]
        assert [(rule.antecedent, rule.consequent, rule.channel, rule.preceded) for rule in rules] == [
            (name, candidate, channel, backward) for candidate, channel, backward, *_ in expected
        ]
        got = [(rule.lift, rule.confidence, rule.support, rule.llr) for rule in rules]
        assert got == [pytest.approx(rule[3:], rel=1e-9, abs=1e-9) for rule in expected]
        assert all(not rule.preceded for rule in plain)
        backward_seen += sum(rule.preceded for rule in rules)
    assert backward_seen > 10  # the backward rows took part, so the comparison means something
    assert full_records == 6
