"""The candidate sources of the stream's ranking, as pure functions of counts and vectors.

The stream's workers (``stream.replica.Replica``, ``stream.agents.interactions``) and the
offline evaluation (``stream.evaluation``) both call these, so "the hybrid that the stream
runs" is the same code in both places:

* ``best_lift_rules``: an item's association rules across every behaviour channel, metrics
  from the latest counts, one rule per consequent (the one with the best lift);
* ``trending_items``: the items in the most transactions, over all kinds;
* ``blend_query_vector``: a user's query vector, the profile's vector blended with the
  items not yet folded into it.

The depths the stream uses live here as named constants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from stream.engine.rules import AssociationRule, association_metrics

__all__ = [
    "ASSOCIATION_DEPTH",
    "PUBLISHED_PARTNERS",
    "TRENDING_DEPTH",
    "best_lift_rules",
    "blend_query_vector",
    "trending_items",
]

PUBLISHED_PARTNERS = 20  # partners per channel in an item-associations record
ASSOCIATION_DEPTH = 50  # rules read per recent item when ranking
TRENDING_DEPTH = 50  # trending items offered to the ranking

ConsequentCount = Callable[[str, str], float]


def best_lift_rules(
    item_id: str,
    *,
    occurrences: Mapping[str, float],
    partners: Mapping[str, Sequence[Sequence[object]]],
    consequent_count: ConsequentCount,
    transactions: float,
    top_k: int = 20,
    channels: tuple[str, ...] | None = None,
) -> list[AssociationRule]:
    """The item's rules across channels, best lift first, one per consequent.

    ``occurrences`` are the item's own transaction counts per kind, ``partners`` per channel
    ``(partner, pair count)`` pairs, ``consequent_count(partner, kind)`` a partner's count
    as that kind, and ``transactions`` is N. A partner's count is raised to at least the
    pair count (a partner's own record may lag behind the pair count in the stream).
    """
    n = float(transactions)
    found: list[AssociationRule] = []
    for channel, channel_partners in partners.items():
        if channels is not None and channel not in channels:
            continue
        antecedent_kind, consequent_kind = channel.split("->")
        n_a = float(occurrences.get(antecedent_kind, 0.0))
        if not channel_partners or n_a <= 0 or n <= 0:
            continue
        names = [str(partner[0]) for partner in channel_partners]
        n_ab = np.array([float(partner[1]) for partner in channel_partners], dtype=np.float64)  # type: ignore[arg-type]
        n_b = np.array([consequent_count(name, consequent_kind) for name in names], dtype=np.float64)
        n_b = np.maximum(n_b, n_ab)
        metrics = association_metrics(n_ab, np.full_like(n_ab, n_a), n_b, n)
        found.extend(
            AssociationRule(
                antecedent=item_id,
                consequent=name,
                channel=channel,
                support=float(metrics["support"][row]),
                confidence=float(metrics["confidence"][row]),
                lift=float(metrics["lift"][row]),
                llr=float(metrics["llr"][row]),
                pair_count=float(n_ab[row]),
                antecedent_count=n_a,
                consequent_count=float(n_b[row]),
                transactions=n,
            )
            for row, name in enumerate(names)
        )
    best: dict[str, AssociationRule] = {}
    for rule in sorted(found, key=lambda r: (-r.lift, -r.confidence, r.consequent)):
        best.setdefault(rule.consequent, rule)
    return list(best.values())[:top_k]


def trending_items(occurrences: Iterable[tuple[str, Mapping[str, float]]], k: int) -> list[tuple[str, float]]:
    """The ``k`` items in the most transactions (all kinds summed), ties by item id."""
    totals = ((item, sum(kinds.values())) for item, kinds in occurrences)
    return sorted(totals, key=lambda pair: (-pair[1], pair[0]))[:k]


def blend_query_vector(
    profile_vector: NDArray[np.floating], fresh_vectors: NDArray[np.floating]
) -> NDArray[np.float32]:
    """The profile's unit vector blended with the mean of fresh item vectors (NaN rows skipped).

    Fresh items are those the profile has not absorbed yet (buffered events, the triggers).
    Without any known fresh vector the profile's vector is returned unchanged.
    """
    fresh_rows = np.asarray(fresh_vectors)
    known = fresh_rows[~np.isnan(fresh_rows).any(axis=1)] if fresh_rows.size else fresh_rows
    if len(known) == 0:
        return np.asarray(profile_vector)  # type: ignore[return-value]
    fresh = known.mean(axis=0)
    blend = fresh / (np.linalg.norm(fresh) or 1.0) + profile_vector
    return (blend / (np.linalg.norm(blend) or 1.0)).astype(np.float32)
