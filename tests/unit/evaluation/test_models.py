"""Popularity, the implicit peers and the stream's rankers wired correctly.

One log where item-item co-occurrence must win (popularity must lose), and the cosine peer
against a brute-force cosine item-item recount in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from stream.evaluation import EvaluationConfig, ImplicitPeers, LoggedEvent, build_models, evaluate

GROUPS = 3
USERS_PER_GROUP = 20
POPULAR_USERS = 30
MINUTE_MS = 60_000


def _cooccurrence_log() -> tuple[list[LoggedEvent], float]:
    """Warm-up: in group g, users click Xg then Yg a minute later; many others click only Z.

    Test: fresh users click Xg, then Yg. Z is the most popular item, but never co-occurs.
    """
    events: list[LoggedEvent] = []
    ts = 0
    for user in range(POPULAR_USERS):
        ts += MINUTE_MS
        events.append(LoggedEvent(f"p{user}", "Z", "click", ts))
    for group in range(GROUPS):
        for user in range(USERS_PER_GROUP):
            ts += 10 * MINUTE_MS
            events.append(LoggedEvent(f"g{group}u{user}", f"X{group}", "click", ts))
            events.append(LoggedEvent(f"g{group}u{user}", f"Y{group}", "click", ts + MINUTE_MS))
    warm = len(events)
    for group in range(GROUPS):
        for user in range(2):
            ts += 10 * MINUTE_MS
            events.append(LoggedEvent(f"new{group}-{user}", f"X{group}", "click", ts))
            events.append(LoggedEvent(f"new{group}-{user}", f"Y{group}", "cart", ts + MINUTE_MS))
    split = (warm + 0.5) / (len(events) - 1)  # the cut falls on the first test event
    return events, split


def test_item_item_cooccurrence_wins_and_popularity_loses() -> None:
    events, split = _cooccurrence_log()
    rankers, observers = build_models()
    result = evaluate(events, rankers, observers, config=EvaluationConfig(split=split, k=1))
    assert result.warm_events == POPULAR_USERS + GROUPS * USERS_PER_GROUP * 2
    assert (result.targets, result.conversion_targets) == (GROUPS * 2, GROUPS * 2)  # each Yg cart
    models = result.to_dict()["models"]
    for name in ("bm25", "cosine", "als", "cooccurrence", "hybrid"):
        assert models[name]["hr@1"] == 1.0, name  # type: ignore[index]
    assert models["popularity"]["hr@1"] == 0.0  # type: ignore[index]  # Z is always first
    # The conversion list keeps the clicked Xg (only carted or bought items are excluded), and
    # the peers may score Xg itself first; Yg is then second.
    rankers, observers = build_models()
    wider = evaluate(events, rankers, observers, config=EvaluationConfig(split=split, k=2)).to_dict()["models"]
    for name in ("bm25", "cosine", "als", "cooccurrence", "hybrid"):
        assert wider[name]["conversion_hr@2"] == 1.0, name  # type: ignore[index]
    assert wider["popularity"]["conversion_hr@2"] == 0.0  # type: ignore[index]  # Z, then Xg (or another X/Y)
    assert "embedding" not in models  # no catalog, no vector model


def test_items_seen_before_are_candidates_too() -> None:
    """Warm-up shoppers looked at Yg *before* Xg; test users look at Xg, then Yg. The counted
    pair is Yg → Xg only, so Yg reaches Xg's users through the rules read backwards, and the
    stream's models find it as the item-item peers (which ignore order) do."""
    events, split = _cooccurrence_log()
    warm = sum(1 for event in events if not event.user.startswith("new"))
    swapped = [
        event._replace(item=event.item.translate(str.maketrans("XY", "YX"))) if index < warm else event
        for index, event in enumerate(events)
    ]
    rankers, observers = build_models()
    models = evaluate(swapped, rankers, observers, config=EvaluationConfig(split=split, k=1)).to_dict()["models"]
    for name in ("bm25", "cosine", "als", "cooccurrence", "hybrid"):
        assert models[name]["hr@1"] == 1.0, name  # type: ignore[index]
    assert models["popularity"]["hr@1"] == 0.0  # type: ignore[index]


def test_the_embedding_model_follows_the_catalog_vectors() -> None:
    events, split = _cooccurrence_log()
    # Xg's nearest neighbour is Y((g + 1) mod 3): the embedding model must follow the vectors,
    # not the co-occurrences.
    ids = [f"X{g}" for g in range(GROUPS)] + [f"Y{g}" for g in range(GROUPS)] + ["Z"]
    angles = {f"X{g}": 2.0 * g for g in range(GROUPS)}
    angles.update({f"Y{(g + 1) % GROUPS}": 2.0 * g + 0.1 for g in range(GROUPS)})
    angles["Z"] = 1.0
    vectors = np.array([[np.cos(angles[item]), np.sin(angles[item])] for item in ids], dtype=np.float32)
    rankers, observers = build_models(item_ids=ids, item_vectors=vectors)
    result = evaluate(events, rankers, observers, config=EvaluationConfig(split=split, k=1))
    models = result.to_dict()["models"]
    assert models["embedding"]["hr@1"] == 0.0  # type: ignore[index]
    assert models["cooccurrence"]["hr@1"] == 1.0  # type: ignore[index]


def test_cosine_peer_matches_a_brute_force_item_item_recount() -> None:
    rng = np.random.default_rng(7)
    kinds = np.array(["click", "cart", "purchase"])
    weights = {"click": 1.0, "cart": 3.0, "purchase": 5.0}
    n_users, n_items = 60, 40
    events = [
        LoggedEvent(f"u{user}", f"i{item}", str(kinds[kind]), ts)
        for ts, (user, item, kind) in enumerate(
            zip(
                rng.integers(0, n_users, 600),
                rng.integers(0, n_items, 600),
                rng.choice(3, 600, p=[0.7, 0.2, 0.1]),
                strict=True,
            )
        )
    ]
    peers = ImplicitPeers()
    peers.warm(events)
    matrix = np.zeros((n_users, n_items))
    for event in events:
        matrix[int(event.user[1:]), int(event.item[1:])] += weights[event.kind]
    norms = np.linalg.norm(matrix, axis=0)
    similarity = (matrix.T @ matrix) / np.outer(norms, norms)
    cosine = peers.rankers()["cosine"]
    for user in range(0, n_users, 7):
        history = matrix[user]
        expected_scores = history @ similarity
        ranked = cosine.rank(f"u{user}", 0, n_items)
        unseen = [item for item in ranked if history[int(item[1:])] == 0]
        expected = sorted(
            (item for item in range(n_items) if history[item] == 0 and expected_scores[item] > 0),
            key=lambda item: -expected_scores[item],
        )
        assert [int(item[1:]) for item in unseen] == expected
        row = peers.history_row(f"u{user}")
        assert row is not None
        names = peers.item_names
        live = {names[column]: value for column, value in zip(row.indices, row.data, strict=True)}
        assert live == pytest.approx({f"i{item}": history[item] for item in np.flatnonzero(history)})


def test_peers_learn_from_the_live_history() -> None:
    events, split = _cooccurrence_log()
    peers = ImplicitPeers()
    warm = [event for event in events if not event.user.startswith("new")]
    peers.warm(warm)
    bm25 = peers.rankers()["bm25"]
    assert bm25.rank("new0-0", 0, 5) == []  # unknown user, nothing seen yet
    peers.apply(LoggedEvent("new0-0", "X0", "click", 0))
    assert set(bm25.rank("new0-0", 0, 5)) == {"X0", "Y0"}  # X0's only neighbours: itself and Y0
    peers.apply(LoggedEvent("new0-0", "unknown-item", "click", 0))  # first seen after the cut: ignored
    assert "unknown-item" not in peers.item_codes


def _trending_recount(events: list[LoggedEvent], depth: int) -> list[tuple[str, float]]:
    """Transactions per item by hand: a user's session ends after a 30-minute gap; an item
    counts once per session and kind; the most first, ties by item id."""
    gap_ms = 30 * MINUTE_MS
    last_ts: dict[str, int] = {}
    session: dict[str, int] = {}
    seen: set[tuple[str, int, str, str]] = set()
    totals: dict[str, float] = {}
    for event in events:
        if event.user not in last_ts or event.ts - last_ts[event.user] > gap_ms:
            session[event.user] = session.get(event.user, 0) + 1
        last_ts[event.user] = event.ts
        key = (event.user, session[event.user], event.item, event.kind)
        if key not in seen:
            seen.add(key)
            totals[event.item] = totals.get(event.item, 0.0) + 1.0
    return sorted(totals.items(), key=lambda entry: (-entry[1], entry[0]))[:depth]


def test_the_hybrids_trending_list_follows_every_applied_event() -> None:
    """The stream's replica ranks trending items once per (small) batch; the offline state
    must not lag hundreds of events behind: after each applied event its list is the recount
    of every event so far, including an item that turns popular inside the test part."""
    from stream.engine.retrieval import TRENDING_DEPTH
    from stream.evaluation import StreamState

    rng = np.random.default_rng(11)
    kinds = np.array(["click", "cart", "purchase"])
    events: list[LoggedEvent] = []
    ts = 0
    for step in range(900):
        ts += int(rng.integers(1, 20)) * MINUTE_MS // 4  # gaps of 15 s to 5 min; users come back later
        item = "burst" if step >= 700 and step % 3 == 0 else f"i{int(rng.integers(0, 60))}"
        events.append(
            LoggedEvent(f"u{int(rng.integers(0, 40))}", item, str(kinds[rng.choice(3, p=[0.7, 0.2, 0.1])]), ts)
        )
    state = StreamState()
    state.warm(events[:600])
    assert state.trending == _trending_recount(events[:600], TRENDING_DEPTH)
    for applied in range(600, len(events)):
        state.apply(events[applied])
        assert state.trending == _trending_recount(events[: applied + 1], TRENDING_DEPTH), applied
    assert state.trending[0][0] == "burst"  # the new leader, 200 events into the test part


def test_the_stream_models_take_the_workers_session_gap_and_ranking_weights() -> None:
    """``build_models(settings=...)`` gives the stream models a worker's settings: the same
    log, the co-occurrence model hits every target with the default 30-minute sessions and
    none when a 30-second gap splits each warm-up user's X and Y (a minute apart) into two
    sessions; the hybrid puts the trending Z first once associations weigh 0.05: Y's score is
    then 0.05 · (1 − 1/lift ≈ 4.3) + 0.2 · 20/30 (its own trending share) ≈ 0.17 against Z's
    0.2 (with the default weight 1, 0.77 + 0.13)."""
    from stream.settings import Settings

    events, split = _cooccurrence_log()
    config = EvaluationConfig(split=split, k=1)

    def hr(settings: Settings) -> dict[str, float]:
        rankers, observers = build_models(settings=settings)
        models = evaluate(events, rankers, observers, config=config).to_dict()["models"]
        return {name: models[name]["hr@1"] for name in ("cooccurrence", "hybrid")}  # type: ignore[index]

    assert hr(Settings()) == {"cooccurrence": 1.0, "hybrid": 1.0}
    assert hr(Settings(session_gap_s=30)) == {"cooccurrence": 0.0, "hybrid": 0.0}
    assert hr(Settings(rank_association_weight=0.05)) == {"cooccurrence": 1.0, "hybrid": 0.0}
