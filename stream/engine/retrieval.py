"""The candidate sources of the stream's ranking, as pure functions of counts and vectors.

The stream's workers (``stream.replica.Replica``, ``stream.agents.interactions``) and the
offline evaluation (``stream.evaluation``) both call these, so "the hybrid that the stream
runs" is the same code in both places:

* ``best_lift_rules``: an item's association rules across every behaviour channel, metrics
  from the latest counts, one rule per consequent (the one with the best lift);
  ``channel_rules`` the same rules per channel (what an ``item-associations`` record lists);
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
    "channel_rules",
    "trending_items",
]

PUBLISHED_PARTNERS = 20  # partners per channel in an item-associations record
ASSOCIATION_DEPTH = 50  # rules read per recent item when ranking
TRENDING_DEPTH = 50  # trending items offered to the ranking

ConsequentCount = Callable[[str, str], float]


def channel_rules(
    item_id: str,
    *,
    occurrences: Mapping[str, float],
    partners: Mapping[str, Sequence[Sequence[object]]],
    consequent_count: ConsequentCount,
    transactions: float,
    channels: tuple[str, ...] | None = None,
) -> dict[str, list[AssociationRule]]:
    """Every partner's rule, per channel, best lift first (then confidence, then name).

    Arguments as for ``best_lift_rules``. The metrics of all channels are computed in one
    vectorised pass: an item has a few dozen partners, so numpy's per-call overhead, not
    the arithmetic, is what a per-channel loop would spend.
    """
    n = float(transactions)
    rows: list[tuple[str, str, float, float, float]] = []  # channel, partner, n_ab, n_a, n_b
    for channel, channel_partners in partners.items():
        if channels is not None and channel not in channels:
            continue
        antecedent_kind, consequent_kind = channel.split("->")
        n_a = float(occurrences.get(antecedent_kind, 0.0))
        if not channel_partners or n_a <= 0 or n <= 0:
            continue
        for partner in channel_partners:
            name = str(partner[0])
            n_ab = float(partner[1])  # type: ignore[arg-type]
            rows.append((channel, name, n_ab, n_a, max(consequent_count(name, consequent_kind), n_ab)))
    if not rows:
        return {}
    n_ab, n_a, n_b = (np.array([row[column] for row in rows], dtype=np.float64) for column in (2, 3, 4))
    metrics = association_metrics(n_ab, n_a, n_b, n)
    support, confidence, lift, llr = (metrics[name].tolist() for name in ("support", "confidence", "lift", "llr"))
    by_channel: dict[str, list[AssociationRule]] = {}
    for row, (channel, name, pair_count, antecedent_count, partner_count) in enumerate(rows):
        by_channel.setdefault(channel, []).append(
            AssociationRule(
                antecedent=item_id,
                consequent=name,
                channel=channel,
                support=support[row],
                confidence=confidence[row],
                lift=lift[row],
                llr=llr[row],
                pair_count=pair_count,
                antecedent_count=antecedent_count,
                consequent_count=partner_count,
                transactions=n,
            )
        )
    for rules in by_channel.values():
        rules.sort(key=_rule_order)
    return by_channel


def _rule_order(rule: AssociationRule) -> tuple[float, float, str]:
    return (-rule.lift, -rule.confidence, rule.consequent)


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
    per_channel = channel_rules(
        item_id,
        occurrences=occurrences,
        partners=partners,
        consequent_count=consequent_count,
        transactions=transactions,
        channels=channels,
    )
    best: dict[str, AssociationRule] = {}
    for rule in sorted((rule for rules in per_channel.values() for rule in rules), key=_rule_order):
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
