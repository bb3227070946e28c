"""Reading pairs files and mining pairs from behaviour events (checked by hand-made recounts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoders import TrainingDataError
from encoders.pairs import MiningConfig, mine_pairs, read_pairs


def test_read_pairs_drops_self_pairs(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("item_a,item_b\n1,2\n3,3\n2,5\n", encoding="utf-8")
    assert read_pairs(path) == [("1", "2"), ("2", "5")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "item_a,item_b"),
        ("item_a,item_b\n1,\n", ":2: a pair needs both"),
        ("item_a,item_b\n", "no pairs"),
    ],
)
def test_bad_pairs_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TrainingDataError, match=message):
        read_pairs(path)


def test_mining_pairs_baskets_and_consecutive_views(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(
        "user,item,kind,ts\n"
        # user u: one session with views A,B,B,C, then D and E carted and F bought
        "u,A,click,0\nu,B,click,10\nu,B,click,20\nu,C,click,30\nu,D,cart,40\nu,E,cart,50\nu,F,purchase,60\n"
        # a second session of u (gap > 30 min): view C then A, buy G and then H
        "u,C,click,5000\nu,A,click,5010\nu,G,purchase,5020\nu,H,purchase,5030\n"
        # user v, out of order in the file: views X then Y by time
        "v,Y,click,100\nv,X,click,50\n",
        encoding="utf-8",
    )
    pairs = mine_pairs(events)
    expected = {
        ("A", "B"), ("B", "C"),  # consecutive distinct views of session 1 (B after B is no pair)
        ("D", "F"), ("E", "F"),  # carted, then bought (cart->purchase); two carts alone are no basket
        ("A", "C"),  # consecutive views of session 2
        ("G", "H"),  # bought together (purchase->purchase)
        ("X", "Y"),
    }
    assert set(pairs) == expected and len(pairs) == len(expected)


def test_views_pair_only_with_the_previous_distinct_view(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("user,item,kind,ts\nu,A,click,0\nu,B,click,1\nu,C,click,2\nu,A,click,3\n", encoding="utf-8")
    # A→B, B→C, C→A: A and C are consecutive at the end; A and B never again
    assert set(mine_pairs(events)) == {("A", "B"), ("B", "C"), ("A", "C")}


def test_mining_respects_the_session_gap(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,kind,ts\nu,A,purchase,0\nu,B,purchase,100\n", encoding="utf-8")
    assert mine_pairs(events) == [("A", "B")]
    with pytest.raises(TrainingDataError, match="no pairs"):
        mine_pairs(events, MiningConfig(session_gap_seconds=50))


def test_lines_of_one_order_pair_both_ways(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(
        "user,item,kind,ts,order_id\nu,A,purchase,0,o1\nu,B,purchase,1,o1\nu,C,purchase,2,o2\n",
        encoding="utf-8",
    )
    # A and B (one order) count in both directions, so they come first; C, bought after both
    # in the same session, pairs once with each.
    pairs = mine_pairs(events)
    assert pairs[0] == ("A", "B") and set(pairs[1:]) == {("A", "C"), ("B", "C")}


def test_bad_event_kind_names_the_line(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("user,item,kind,ts\nu,A,view,0\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=":2: kind must be click, cart or purchase"):
        mine_pairs(events)
