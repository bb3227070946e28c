"""The fine-tuning benchmark's pieces: history pairs never use a user's last item, and the hit
rate agrees with a brute-force recount."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.benchmark import QUERY_MODES, history_pairs, hit_rate_at_k


def test_history_pairs_use_only_earlier_items() -> None:
    sequences = [(["a", "b", "b", "c"], "z"), (["d"], "y"), (["e", "f"], "x")]
    assert history_pairs(sequences) == [("a", "b"), ("b", "c"), ("e", "f")]


@pytest.mark.parametrize("query", QUERY_MODES)
def test_hit_rate_matches_a_brute_force_recount(query: str) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 6)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"i{n}" for n in range(60)]
    index = {name: row for row, name in enumerate(names)}
    users = []
    for _ in range(300):
        picked = rng.choice(60, size=int(rng.integers(2, 7)), replace=False)
        users.append(([names[p] for p in picked[:-1]], names[picked[-1]]))
    hits = 0
    for history, last in users:
        rows = [index[item] for item in history]
        if query == "mean":
            q = vectors[rows].mean(axis=0)
            q = q / np.linalg.norm(q)
        else:
            q = vectors[rows[-1]]
        ranked = sorted((row for row in range(60) if row not in rows), key=lambda row: -float(vectors[row] @ q))
        hits += index[last] in ranked[:10]
    assert hit_rate_at_k(vectors, index, users, 10, query=query) == pytest.approx(hits / len(users))
