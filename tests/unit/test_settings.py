"""Worker settings: the ranking weights (``XSELL_RANK_*``) and what they turn into."""

from __future__ import annotations

import pytest

from stream.engine import ProfileConfig, RankingConfig
from stream.errors import ConfigError
from stream.settings import RANK_RECENT_ITEMS_MAX, Settings


def test_the_default_ranking_is_the_engines_default() -> None:
    assert Settings().ranking_config() == RankingConfig(top_k=Settings().recommendations)
    assert Settings().ranking_config(top_k=3) == RankingConfig(top_k=3)


def test_ranking_weights_come_from_the_environment() -> None:
    env = {
        "XSELL_RECOMMENDATIONS": "7",
        "XSELL_RANK_RECENT_ITEMS": "12",
        "XSELL_RANK_ASSOCIATION_WEIGHT": "0.5",
        "XSELL_RANK_SIMILARITY_WEIGHT": "0",
        "XSELL_RANK_TRENDING_WEIGHT": "1.5",
        "XSELL_RANK_MIN_LIFT": "2",
    }
    config = Settings.from_env(env).ranking_config()
    assert (config.top_k, config.recent_items_used) == (7, 12)
    assert (config.association_weight, config.similarity_weight, config.trending_weight, config.min_lift) == (
        0.5,
        0.0,
        1.5,
        2.0,
    )
    assert config.candidates_per_source == RankingConfig().candidates_per_source  # not a setting


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"XSELL_RANK_RECENT_ITEMS": "0"}, "rank_recent_items must be between 1 and 20"),
        ({"XSELL_RANK_RECENT_ITEMS": "21"}, "rank_recent_items must be between 1 and 20"),
        ({"XSELL_RANK_RECENT_ITEMS": "five"}, "XSELL_RANK_RECENT_ITEMS must be int, got 'five'"),
        ({"XSELL_RANK_ASSOCIATION_WEIGHT": "-0.1"}, "rank_association_weight must be a finite number >= 0"),
        ({"XSELL_RANK_SIMILARITY_WEIGHT": "inf"}, "rank_similarity_weight must be a finite number >= 0"),
        ({"XSELL_RANK_TRENDING_WEIGHT": "nan"}, "rank_trending_weight must be a finite number >= 0"),
        (
            {
                "XSELL_RANK_ASSOCIATION_WEIGHT": "0",
                "XSELL_RANK_SIMILARITY_WEIGHT": "0",
                "XSELL_RANK_TRENDING_WEIGHT": "0",
            },
            "at least one rank_\\*_weight must be above 0",
        ),
        ({"XSELL_RANK_MIN_LIFT": "0.5"}, "rank_min_lift must be a finite number >= 1"),
        ({"XSELL_RANK_MIN_LIFT": "inf"}, "rank_min_lift must be a finite number >= 1"),
    ],
)
def test_bad_ranking_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_recent_items_are_bounded_by_what_a_profile_keeps() -> None:
    assert RANK_RECENT_ITEMS_MAX == ProfileConfig().recent_capacity
    assert Settings(rank_recent_items=RANK_RECENT_ITEMS_MAX).ranking_config().recent_items_used == 20


def test_the_interactions_agent_ranks_with_the_settings_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_rank`` hands ``recommend_many`` the agent's ``RANKING`` (built from the worker's
    settings at import) with the list length of the call."""
    import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
    from stream.agents import interactions

    assert interactions.RANKING == interactions.settings.ranking_config()
    weights = RankingConfig(recent_items_used=7, association_weight=0.3, trending_weight=0.9, min_lift=1.5)
    monkeypatch.setattr(interactions, "RANKING", weights)
    received: list[RankingConfig] = []

    def recommend_many(requests: list[object], **sources: object) -> list[list[dict[str, object]]]:
        received.append(sources["config"])  # type: ignore[arg-type]
        return [[] for _ in requests]

    monkeypatch.setattr(interactions, "recommend_many", recommend_many)
    assert interactions._rank([], 4, []) == []
    assert received == [
        RankingConfig(top_k=4, recent_items_used=7, association_weight=0.3, trending_weight=0.9, min_lift=1.5)
    ]


def test_the_snapshot_interval_is_a_setting() -> None:
    assert Settings.from_env({}).snapshot_interval_s == 300.0
    assert Settings.from_env({"XSELL_SNAPSHOT_INTERVAL_S": "45"}).snapshot_interval_s == 45.0
    with pytest.raises(ConfigError, match="snapshot_interval_s must be > 0, got 0.0"):
        Settings.from_env({"XSELL_SNAPSHOT_INTERVAL_S": "0"})
