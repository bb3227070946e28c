"""How sure a comparison of hit rates is: a paired bootstrap over users.

A log yields a few hundred or thousand discovery targets and, on sparse data, a handful of
hits per model, so "1.2× the best peer" can be one hit. ``compare_with_peers`` reports the
ratio of one model's discovery hits to the best batch peer's with a percentile interval from
resampling *users* (a user's targets are not independent: the same history ranks them all),
every model scored on the same resample, and the targets that only one of the two hit.

Conventions: the best peer is chosen again in every resample (the statistic is "against the
best peer", not against the peer that happened to win on the full log); a resample in which
the best peer hits nothing has ratio ``inf`` if the model hits something and 1 if neither
does. The interval's bounds are resampled values (no interpolation), so an infinite upper
bound is possible on tiny logs and is reported as ``None`` in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream.evaluation.protocol import EvaluationResult

__all__ = ["DEFAULT_RESAMPLES", "PEERS", "Comparison", "compare_with_peers", "hit_ratios"]

PEERS = ("bm25", "cosine", "als")
DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    model: str
    best_peer: str
    model_hits: int
    peer_hits: int
    ratio: float  # model hits / best peer's hits on the whole log (inf, or 1 for 0/0)
    low: float
    high: float
    confidence: float
    only_model: int  # discovery targets the model hit and the best peer missed
    only_peer: int
    users: int
    resamples: int

    def to_dict(self) -> dict[str, object]:
        def finite(value: float) -> float | None:
            return round(value, 4) if math.isfinite(value) else None

        return {
            "model": self.model,
            "best_peer": self.best_peer,
            "model_hits": self.model_hits,
            "peer_hits": self.peer_hits,
            "hr_ratio": finite(self.ratio),
            "interval": [finite(self.low), finite(self.high)],
            "confidence": self.confidence,
            "only_model_hit": self.only_model,
            "only_peer_hit": self.only_peer,
            "users": self.users,
            "resamples": self.resamples,
        }

    def describe(self, k: int) -> str:
        def times(value: float) -> str:
            return f"{value:.2f}×" if math.isfinite(value) else "∞"

        return (
            f"{self.model} / best batch peer ({self.best_peer}), discovery HR@{k}: {times(self.ratio)} "
            f"({self.model_hits} vs {self.peer_hits} hits); {self.confidence:.0%} interval "
            f"{times(self.low)}–{times(self.high)} ({self.users:,} users resampled {self.resamples:,} times); "
            f"targets only {self.model} hit: {self.only_model}, only {self.best_peer} hit: {self.only_peer}"
        )


def hit_ratios(model_hits: NDArray[np.integer], peer_hits: NDArray[np.integer]) -> NDArray[np.float64]:
    """``model_hits / max over peers`` along the last axis of ``peer_hits`` (inf for x/0, 1 for 0/0)."""
    model = np.asarray(model_hits, dtype=np.float64)
    best = np.asarray(peer_hits, dtype=np.float64).max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = model / best
    return np.where(best > 0, ratios, np.where(model > 0, np.inf, 1.0))


def _resampled_hits(per_user: NDArray[np.int64], resamples: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Each model's hits (columns) over ``resamples`` draws of the users with replacement,
    every model on the same draw; one draw at a time, so memory stays a few arrays of the
    users' length."""
    users = len(per_user)
    resampled = np.empty((resamples, per_user.shape[1]), dtype=np.int64)
    for row in range(resamples):
        drawn = np.bincount(rng.integers(0, users, size=users), minlength=users)  # times each user is drawn
        resampled[row] = drawn @ per_user
    return resampled


def compare_with_peers(
    result: EvaluationResult,
    *,
    model: str = "hybrid",
    peers: Sequence[str] = PEERS,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Comparison | None:
    """``model`` against the best of ``peers`` (those present); None without targets or models."""
    present = [peer for peer in peers if peer in result.scores]
    if model not in result.scores or not present or not result.target_users:
        return None
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples}, {confidence}")
    users: dict[str, int] = {}
    rows = np.array([users.setdefault(user, len(users)) for user in result.target_users])
    names = [model, *present]
    hit = np.array(
        [[rank is not None for rank in result.scores[name].discovery_ranks] for name in names], dtype=np.int64
    )  # models × targets
    per_user = np.zeros((len(users), len(names)), dtype=np.int64)
    np.add.at(per_user, rows, hit.T)
    totals = per_user.sum(axis=0)
    best = 1 + int(np.argmax(totals[1:]))  # the first peer in ``peers`` order wins ties
    resampled = _resampled_hits(per_user, resamples, np.random.default_rng(seed))
    ratios = hit_ratios(resampled[:, 0], resampled[:, 1:])
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1.0 - tail], method="inverted_cdf")
    return Comparison(
        model=model,
        best_peer=names[best],
        model_hits=int(totals[0]),
        peer_hits=int(totals[best]),
        ratio=float(hit_ratios(totals[0], totals[1:])),
        low=float(low),
        high=float(high),
        confidence=confidence,
        only_model=int(np.sum(hit[0] & (1 - hit[best]))),
        only_peer=int(np.sum(hit[best] & (1 - hit[0]))),
        users=len(users),
        resamples=resamples,
    )
