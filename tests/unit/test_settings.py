"""Worker settings: the ranking weights (``XSELL_RANK_*``) and what they turn into."""

from __future__ import annotations

import pytest

from stream.engine import RankingConfig
from stream.errors import ConfigError
from stream.settings import Settings


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
    ("variable", "raw", "message"),
    [
        ("XSELL_RANK_RECENT_ITEMS", "0", "rank_recent_items must be >= 1, got 0"),
        ("XSELL_RANK_RECENT_ITEMS", "five", "XSELL_RANK_RECENT_ITEMS must be int, got 'five'"),
        ("XSELL_RANK_ASSOCIATION_WEIGHT", "-0.1", "rank_association_weight must be a finite number >= 0"),
        ("XSELL_RANK_SIMILARITY_WEIGHT", "inf", "rank_similarity_weight must be a finite number >= 0"),
        ("XSELL_RANK_TRENDING_WEIGHT", "nan", "rank_trending_weight must be a finite number >= 0"),
        ("XSELL_RANK_MIN_LIFT", "-1", "rank_min_lift must be a finite number >= 0"),
    ],
)
def test_bad_ranking_settings_are_refused(variable: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({variable: raw})


def test_the_interactions_agent_ranks_with_the_settings_weights() -> None:
    import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
    from stream.agents import interactions

    assert interactions.RANKING == interactions.settings.ranking_config()
