"""Batch peers from the ``implicit`` library, trained once on the warm-up part.

Three models, as the issue fixes them: BM25 item-item (K=100), cosine item-item (K=100) and
ALS (64 factors, 15 iterations, regularisation 0.05). The training matrix is users × items
with the summed event weights (click 1, cart 3, purchase 5). At query time each model is fed
the user's *live* history (warm-up and every test event applied so far, same weights) as a
one-row matrix, so a user unseen in training still gets an answer; ALS recomputes the user's
factors from that row (``recalculate_user=True``). Items first seen after the cut are
unknown to the models and cannot be recommended. Every model scores all known items; the
protocol applies its exclusions afterwards (the ranking asks for ``k`` + the exclusions).
A history with no known item gets an empty list.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix

from stream.evaluation.protocol import LoggedEvent

__all__ = [
    "ALS_FACTORS",
    "ALS_ITERATIONS",
    "ALS_REGULARIZATION",
    "EVENT_WEIGHTS",
    "ITEM_NEIGHBOURS",
    "ImplicitPeers",
    "PeerRanker",
]

EVENT_WEIGHTS = {"click": 1.0, "cart": 3.0, "purchase": 5.0}
ITEM_NEIGHBOURS = 100
ALS_FACTORS = 64
ALS_ITERATIONS = 15
ALS_REGULARIZATION = 0.05
DEFAULT_THREADS = 1
DEFAULT_SEED = 0
PEER_NAMES = ("bm25", "cosine", "als")


class ImplicitPeers:
    """The live histories (an ``Observer``) and the three trained models."""

    def __init__(self, *, threads: int = DEFAULT_THREADS, seed: int = DEFAULT_SEED) -> None:
        self.threads = threads
        self.seed = seed
        self.item_codes: dict[str, int] = {}
        self.item_names: list[str] = []
        self.histories: dict[str, dict[int, float]] = {}
        self.models: dict[str, object] = {}

    def warm(self, events: Sequence[LoggedEvent]) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        user_codes: dict[str, int] = {}
        rows, columns, weights = [], [], []
        for event in events:
            rows.append(user_codes.setdefault(event.user, len(user_codes)))
            column = self.item_codes.setdefault(event.item, len(self.item_codes))
            if column == len(self.item_names):
                self.item_names.append(event.item)
            columns.append(column)
            weights.append(EVENT_WEIGHTS[event.kind])
            self._remember(event)
        shape = (max(len(user_codes), 1), max(len(self.item_codes), 1))
        user_items = csr_matrix((weights, (rows, columns)), shape=shape, dtype=np.float32)
        user_items.sum_duplicates()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit's notes on matrix formats and BLAS threads
            self.models = {
                "bm25": BM25Recommender(K=ITEM_NEIGHBOURS, num_threads=self.threads),
                "cosine": CosineRecommender(K=ITEM_NEIGHBOURS, num_threads=self.threads),
                "als": AlternatingLeastSquares(
                    factors=ALS_FACTORS,
                    iterations=ALS_ITERATIONS,
                    regularization=ALS_REGULARIZATION,
                    num_threads=self.threads,
                    random_state=self.seed,
                ),
            }
            for model in self.models.values():
                model.fit(user_items, show_progress=False)  # type: ignore[attr-defined]

    def _remember(self, event: LoggedEvent) -> None:
        column = self.item_codes.get(event.item)
        if column is None or column >= len(self.item_names):
            return
        history = self.histories.setdefault(event.user, {})
        history[column] = history.get(column, 0.0) + EVENT_WEIGHTS[event.kind]

    def apply(self, event: LoggedEvent) -> None:
        if event.item in self.item_codes:
            self._remember(event)

    def history_row(self, user: str) -> csr_matrix | None:
        """The user's live history over the known items, as a 1 × items matrix (None if empty)."""
        history = self.histories.get(user)
        if not history:
            return None
        columns = np.fromiter(history.keys(), dtype=np.int32, count=len(history))
        values = np.fromiter(history.values(), dtype=np.float32, count=len(history))
        order = np.argsort(columns)
        return csr_matrix(
            (values[order], columns[order], np.array([0, len(history)], dtype=np.int32)),
            shape=(1, len(self.item_names)),
        )

    def rankers(self) -> dict[str, PeerRanker]:
        return {name: PeerRanker(self, name) for name in PEER_NAMES}


class PeerRanker:
    """One trained ``implicit`` model answering from the live history."""

    def __init__(self, peers: ImplicitPeers, name: str) -> None:
        self.peers = peers
        self.name = name

    def rank(self, user: str, ts: int, depth: int) -> list[str]:
        row = self.peers.history_row(user)
        if row is None:
            return []
        model = self.peers.models[self.name]
        ids, scores = model.recommend(  # type: ignore[attr-defined]
            0,
            row,
            N=min(depth, len(self.peers.item_names)),
            filter_already_liked_items=False,
            recalculate_user=self.name == "als",
        )
        names = self.peers.item_names
        keep = (ids >= 0) & np.isfinite(scores)  # implicit pads short answers with -1 / -inf
        return [names[code] for code in ids[keep].tolist()]
