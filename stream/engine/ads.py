"""Ad targeting: user vectors against campaign vectors and category affinity, thresholded
and frequency-capped per user and campaign (by event time).

score = ``(1 − category_weight) · cosine(user, campaign) + category_weight · affinity``,
where affinity is the user's share of decayed weight in the campaign's categories (0..1).
A (user, campaign) pair is targeted when the score reaches ``threshold`` and the user has
received that campaign fewer than ``frequency_cap`` times in the last ``cap_window_ms``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["AdConfig", "AdTarget", "AdTargeter", "FrequencyCap"]

DEFAULT_AD_THRESHOLD = 0.35
DEFAULT_CATEGORY_WEIGHT = 0.3
DEFAULT_FREQUENCY_CAP = 3
DEFAULT_CAP_WINDOW_MS = 24 * 60 * 60 * 1000
DEFAULT_CAMPAIGNS_PER_USER = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class AdConfig:
    threshold: float = DEFAULT_AD_THRESHOLD
    category_weight: float = DEFAULT_CATEGORY_WEIGHT
    frequency_cap: int = DEFAULT_FREQUENCY_CAP
    cap_window_ms: int = DEFAULT_CAP_WINDOW_MS
    campaigns_per_user: int = DEFAULT_CAMPAIGNS_PER_USER


@dataclass(frozen=True, slots=True)
class AdTarget:
    user_id: str
    campaign_id: str
    score: float
    ts: int


class FrequencyCap:
    """Times each (user, campaign) was targeted, within a sliding event-time window."""

    def __init__(self, cap: int, window_ms: int) -> None:
        self.cap = cap
        self.window_ms = window_ms
        self.sent: dict[tuple[str, str], deque[int]] = {}

    def allow(self, user_id: str, campaign_id: str, ts: int) -> bool:
        """True (and recorded) when the pair is still under its cap at ``ts``."""
        times = self.sent.setdefault((user_id, campaign_id), deque())
        while times and times[0] <= ts - self.window_ms:
            times.popleft()
        if len(times) >= self.cap:
            return False
        times.append(ts)
        return True


class AdTargeter:
    """Campaign vectors in one matrix; ``target_many`` scores a batch of users at once."""

    def __init__(self, config: AdConfig | None = None) -> None:
        self.config = config or AdConfig()
        self.campaigns: dict[str, tuple[NDArray[np.float32], tuple[str, ...]]] = {}
        self.cap = FrequencyCap(self.config.frequency_cap, self.config.cap_window_ms)

    def upsert(
        self,
        campaign_id: str,
        vector: NDArray[np.floating],
        categories: Sequence[str] = (),
        *,
        active: bool = True,
    ) -> None:
        if not active:
            self.campaigns.pop(campaign_id, None)
            return
        unit = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(unit))
        self.campaigns[campaign_id] = (unit / norm if norm > 0 else unit, tuple(categories))

    def target_many(
        self,
        user_ids: Sequence[str],
        vectors: NDArray[np.floating],
        affinities: Sequence[Mapping[str, float]],
        timestamps: Sequence[int],
    ) -> list[AdTarget]:
        if not self.campaigns or not user_ids:
            return []
        names = list(self.campaigns)
        matrix = np.stack([self.campaigns[name][0] for name in names])
        users = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(users, axis=1, keepdims=True)
        cosine = (users / np.where(norms > 0, norms, 1.0)) @ matrix.T
        weight = self.config.category_weight
        targets = []
        for row, user_id in enumerate(user_ids):
            affinity = affinities[row]
            category_scores = np.array(
                [min(1.0, sum(affinity.get(c, 0.0) for c in self.campaigns[name][1])) for name in names]
            )
            scores = (1.0 - weight) * cosine[row] + weight * category_scores
            sent = 0
            for column in np.argsort(-scores, kind="stable"):
                if sent >= self.config.campaigns_per_user or scores[column] < self.config.threshold:
                    break
                if self.cap.allow(user_id, names[column], timestamps[row]):
                    targets.append(AdTarget(user_id, names[column], float(scores[column]), timestamps[row]))
                    sent += 1
        return targets
