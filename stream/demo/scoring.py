"""How well the associations xsell discovered recover the pairs the simulator planted.

Two figures, both on one behaviour channel (``purchase->purchase`` by default: the planted
pairs are bought together):

- **recovered**: for each planted anchor bought at least ``min_anchor_count`` times, is each
  of its planted complements among the anchor's top ``top_k`` partners ranked by
  Dunning's log-likelihood ratio? (LLR, not lift: lift ranks a partner seen once with a
  rare item above a partner seen twenty times; LLR weighs the evidence.)
- **precision of the top discovered**: of the ``len(planted)`` strongest associations by
  LLR over all items (an unordered pair counted once), how many are planted pairs.

Pure: it reads association records as the ``item-associations`` topic carries them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_MIN_ANCHOR_COUNT",
    "DEFAULT_TOP_K",
    "Discovered",
    "PlantedRecovery",
    "anchor_partners",
    "discovered_associations",
    "score_planted",
    "strongest",
]

DEFAULT_CHANNEL = "purchase->purchase"
DEFAULT_TOP_K = 3
DEFAULT_MIN_ANCHOR_COUNT = 3


@dataclass(frozen=True, slots=True)
class Discovered:
    """One discovered association rule (antecedent → consequent) with its metrics."""

    antecedent: str
    consequent: str
    channel: str
    count: float
    support: float
    confidence: float
    lift: float
    llr: float


@dataclass(frozen=True)
class PlantedRecovery:
    """The summary's comparison of discovered and planted pairs."""

    channel: str
    top_k: int
    planted_pairs: int
    evaluated_pairs: int  # pairs whose anchor was bought at least min_anchor_count times
    recovered_pairs: int
    top_discovered: int
    top_discovered_planted: int
    misses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def recovered_share(self) -> float:
        return self.recovered_pairs / self.evaluated_pairs if self.evaluated_pairs else 0.0

    @property
    def precision(self) -> float:
        return self.top_discovered_planted / self.top_discovered if self.top_discovered else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recovered_share": self.recovered_share, "precision": self.precision}


def discovered_associations(records: Mapping[str, Mapping[str, Any]], channel: str | None = None) -> list[Discovered]:
    """Every rule in the latest ``item-associations`` records (one record per item)."""
    found: list[Discovered] = []
    for item_id, record in records.items():
        for name, rules in (record.get("channels") or {}).items():
            if channel is not None and name != channel:
                continue
            found.extend(
                Discovered(
                    antecedent=item_id,
                    consequent=str(rule["item_id"]),
                    channel=name,
                    count=float(rule.get("count", 0.0)),
                    support=float(rule.get("support", 0.0)),
                    confidence=float(rule.get("confidence", 0.0)),
                    lift=float(rule.get("lift", 0.0)),
                    llr=float(rule.get("llr", 0.0)),
                )
                for rule in rules
            )
    return found


def strongest(rules: Iterable[Discovered], limit: int, *, min_count: float = 2.0) -> list[Discovered]:
    """The strongest positive associations by LLR, an unordered pair once, seen at least ``min_count`` times."""
    best: dict[frozenset[str], Discovered] = {}
    for rule in sorted(rules, key=lambda r: (-r.llr, -r.lift, r.antecedent, r.consequent)):
        if rule.lift <= 1.0 or rule.count < min_count:
            continue
        best.setdefault(frozenset((rule.antecedent, rule.consequent)), rule)
        if len(best) >= limit:
            break
    return list(best.values())


def score_planted(
    records: Mapping[str, Mapping[str, Any]],
    planted: Mapping[str, Iterable[str]],
    *,
    channel: str = DEFAULT_CHANNEL,
    top_k: int = DEFAULT_TOP_K,
    min_anchor_count: int = DEFAULT_MIN_ANCHOR_COUNT,
) -> PlantedRecovery:
    """Compare the discovered associations in ``records`` with the ``planted`` anchor → complements."""
    kind = channel.split("->")[0]
    rules = discovered_associations(records, channel)
    by_antecedent: dict[str, list[Discovered]] = {}
    for rule in rules:
        by_antecedent.setdefault(rule.antecedent, []).append(rule)
    pairs = [(anchor, complement) for anchor, complements in planted.items() for complement in complements]
    evaluated = recovered = 0
    misses: list[tuple[str, str]] = []
    for anchor, complement in pairs:
        occurrences = (records.get(anchor) or {}).get("occurrences") or {}
        if float(occurrences.get(kind, 0.0)) < min_anchor_count:
            continue
        evaluated += 1
        ranked = sorted(by_antecedent.get(anchor, []), key=lambda r: (-r.llr, -r.lift, r.consequent))
        if complement in {rule.consequent for rule in ranked[:top_k]}:
            recovered += 1
        else:
            misses.append((anchor, complement))
    planted_set = {frozenset(pair) for pair in pairs}
    top = strongest(rules, len(planted_set))
    return PlantedRecovery(
        channel=channel,
        top_k=top_k,
        planted_pairs=len(pairs),
        evaluated_pairs=evaluated,
        recovered_pairs=recovered,
        top_discovered=len(top),
        top_discovered_planted=sum(frozenset((r.antecedent, r.consequent)) in planted_set for r in top),
        misses=misses,
    )


def anchor_partners(
    records: Mapping[str, Mapping[str, Any]], planted: Mapping[str, Iterable[str]], *, channel: str = DEFAULT_CHANNEL
) -> dict[str, dict[str, Any]]:
    """Each planted anchor's count and every discovered partner in ``channel``, as the records say.

    Raw material for anyone who wants to check ``score_planted`` (the summary's JSON carries it).
    """
    kind = channel.split("->")[0]
    details: dict[str, dict[str, Any]] = {}
    for anchor, complements in planted.items():
        record = records.get(anchor) or {}
        details[anchor] = {
            "complements": list(complements),
            "count": float((record.get("occurrences") or {}).get(kind, 0.0)),
            "partners": [
                {key: rule[key] for key in ("item_id", "count", "lift", "llr") if key in rule}
                for rule in (record.get("channels") or {}).get(channel, [])
            ],
        }
    return details
