"""The protocol on a hand-made log whose answers are worked out below, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from stream.evaluation import (
    EvaluationConfig,
    EvaluationError,
    LoggedEvent,
    Popularity,
    evaluate,
    load_events,
    split_point,
)

# (user, item, kind, ts seconds). n = 11, split 0.6: index floor(0.6 * 10) = 6, cut ts = 50 s,
# so the first 6 events warm the models and the last 5 are replayed.
HAND_LOG = [
    ("u1", "A", "click", 10),
    ("u2", "A", "click", 20),
    ("u5", "D", "click", 25),
    ("u2", "B", "click", 30),
    ("u5", "D", "click", 35),
    ("u3", "A", "click", 40),
    ("u1", "B", "cart", 50),  # discovery + conversion
    ("u3", "C", "click", 60),  # discovery
    ("u1", "A", "purchase", 70),  # conversion only (A was seen, never bought)
    ("u4", "C", "click", 80),  # no earlier event: no target
    ("u2", "C", "purchase", 90),  # discovery + conversion
]
# Popularity so far (events per item, ties to the item seen first: A, D, B, C):
#   at 50: A3 D2 B1        discovery list (minus A) = D B      -> B at 2; conversion list A D B -> B at 3
#   at 60: A3 D2 B2        C never seen                         -> miss
#   at 70: A3 D2 B2 C1     conversion list (minus B) = A D C    -> A at 1
#   at 90: A4 D2 B2 C2     discovery list (minus A, B) = D C    -> C at 2; conversion list A D B C -> C at 4
K = 3


def _events() -> list[LoggedEvent]:
    return [LoggedEvent(user, item, kind, ts * 1000) for user, item, kind, ts in HAND_LOG]


class Recording:
    """A ranker that always proposes the same list and records what it was asked."""

    def __init__(self, ranked: list[str]) -> None:
        self.ranked = ranked
        self.calls: list[tuple[str, int, int]] = []

    def rank(self, user: str, ts: int, depth: int) -> list[str]:
        self.calls.append((user, ts, depth))
        return self.ranked


def test_split_cut_is_the_timestamp_at_floor_split_times_n_minus_one() -> None:
    assert split_point(_events(), 0.6) == (50_000, 6)
    tied = [LoggedEvent("u", "i", "click", ts) for ts in (1, 2, 2, 2, 3)]
    # index floor(0.5 * 4) = 2 has ts 2: every event at ts 2 belongs to the test part
    assert split_point(tied, 0.5) == (2, 1)


def test_popularity_on_the_hand_log_matches_the_worked_answers() -> None:
    popularity = Popularity()
    result = evaluate(_events(), {"popularity": popularity}, [popularity], config=EvaluationConfig(split=0.6, k=K))
    assert (result.events, result.warm_events, result.cut_ts) == (11, 6, 50_000)
    assert (result.targets, result.conversion_targets) == (3, 3)
    assert result.scores["popularity"].discovery_ranks == [2, None, 2]
    assert result.target_users == ["u1", "u3", "u2"]  # one per discovery target, in the same order
    metrics = result.to_dict()["models"]["popularity"]  # type: ignore[index]
    assert metrics["hr@3"] == pytest.approx(2 / 3)
    assert metrics["ndcg@3"] == pytest.approx(2 * (1 / math.log2(3)) / 3)
    assert metrics["mrr@3"] == pytest.approx((1 / 2 + 1 / 2) / 3)
    assert metrics["conversion_hr@3"] == pytest.approx(2 / 3)  # ranks 3 and 1 hit, rank 4 misses


def test_targets_are_scored_before_they_are_applied_with_the_documented_depth() -> None:
    ranker = Recording(["A", "B", "C", "D"])
    result = evaluate(_events(), {"fixed": ranker}, [], config=EvaluationConfig(split=0.6, k=K))
    # asked once per event that is a target of either kind, depth = k + the user's earlier items
    assert ranker.calls == [("u1", 50_000, K + 1), ("u3", 60_000, K + 1), ("u1", 70_000, K + 2), ("u2", 90_000, K + 2)]
    # discovery lists: u1 minus {A} = B C D -> B at 1; u3 minus {A} -> C at 2; u2 minus {A, B} -> C at 1
    assert result.scores["fixed"].discovery_ranks == [1, 2, 1]
    # conversion lists: u1 at 50 (nothing bought) -> B at 2; u1 at 70 minus {B} -> A at 1; u2 -> C at 3
    assert result.scores["fixed"].conversion_hits == 3
    short = evaluate(_events(), {"fixed": Recording(["A", "B", "C", "D"])}, [], config=EvaluationConfig(split=0.6, k=1))
    assert short.scores["fixed"].discovery_ranks == [1, None, 1]
    assert short.scores["fixed"].conversion_hits == 1  # only u1's A at 70 is first


def test_the_generic_csv_gives_the_same_answers(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user,item,kind,ts\n" + "".join(f"{u},{i},{k},{t}\n" for u, i, k, t in reversed(HAND_LOG)))
    events = load_events(path, "generic")
    assert events == _events()  # sorted back into time order, seconds turned into milliseconds
    popularity = Popularity()
    result = evaluate(events, {"popularity": popularity}, [popularity], config=EvaluationConfig(split=0.6, k=K))
    assert result.scores["popularity"].discovery_ranks == [2, None, 2]


def test_unsorted_events_and_bad_settings_are_refused() -> None:
    events = _events()
    with pytest.raises(EvaluationError, match="sorted"):
        evaluate(list(reversed(events)), {}, [])
    with pytest.raises(EvaluationError, match="split"):
        EvaluationConfig(split=1.0)
    with pytest.raises(EvaluationError, match="k must"):
        EvaluationConfig(k=0)
    with pytest.raises(EvaluationError, match="at least 2"):
        split_point(events[:1], 0.5)
