"""The start-up check of partition counts (``stream.topics.partitioning_problem``), on counts given by hand."""

from __future__ import annotations

from stream.partitions import partition_for
from stream.topics import partitioning_problem

EVENTS = ("clicks", "carts", "purchases", "item-pairs")


def counts(count: int, **odd: int) -> dict[str, int]:
    found = {name: count for name in EVENTS}
    found.update({name.replace("_", "-"): value for name, value in odd.items()})
    return found


def test_matching_counts_pass() -> None:
    assert partitioning_problem(counts(4), {"xsell-user-state-changelog": 4}, 4) is None
    assert partitioning_problem(counts(4), {}, 4) is None  # changelogs not created yet


def test_topics_that_disagree_are_named_with_their_counts() -> None:
    problem = partitioning_problem(counts(4, item_pairs=2), {}, 4)

    assert problem is not None and "co-partitioned" in problem
    assert "item-pairs=2" in problem and "clicks=4" in problem


def test_co_partitioned_topics_must_have_the_workers_count() -> None:
    problem = partitioning_problem(counts(8), {}, 4)

    assert problem is not None
    assert "have 8 partitions but XSELL_PARTITIONS is 4" in problem and "XSELL_PARTITIONS=8" in problem
    # Why it matters: every key a worker draws numbers over 4 partitions, so none lands in 4..7.
    assert {partition_for(f"key-{n}".encode(), 4) for n in range(1_000)} == {0, 1, 2, 3}


def test_a_changelog_with_another_count_is_named() -> None:
    problem = partitioning_problem(counts(4), {"xsell-user-state-changelog": 4, "xsell-cooccurrence-changelog": 2}, 4)

    assert problem is not None
    assert "xsell-cooccurrence-changelog=2" in problem and "user-state" not in problem


def test_every_problem_is_one_line() -> None:
    problems = [
        partitioning_problem(counts(4, carts=3), {}, 4),
        partitioning_problem(counts(3), {}, 4),
        partitioning_problem(counts(4), {"c": 1}, 4),
    ]
    assert all(problem and "\n" not in problem for problem in problems)
