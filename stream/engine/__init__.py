"""The association engine: pure Python/numpy, shared by the stream workers and offline tools.

It imports neither Faust nor aiokafka, nor anything of ``stream`` but itself and
``stream.errors``. Modules: ``events`` (validation), ``sessions`` (per-user ordering,
sessions, pairs), ``cooccurrence`` and ``heavyhitters`` (per-item bounded counts),
``rules`` (support, confidence, lift, LLR), ``profiles`` (rolling user vectors),
``ranking``, ``ads``, ``baskets``, ``replay`` (file readers) and ``engine`` (all wired
together in one process). See ``docs/ENGINE.md``.
"""

from __future__ import annotations

from stream.engine.ads import AdConfig, AdTarget, AdTargeter, FrequencyCap
from stream.engine.baskets import BasketCounts, basket_counts, baskets_to_events
from stream.engine.cooccurrence import (
    CooccurrenceConfig,
    CooccurrenceStore,
    ItemAssociations,
    ItemCounts,
    TransactionTally,
    decay_weight,
)
from stream.engine.engine import AssociationEngine, BatchReport, EngineConfig
from stream.engine.errors import (
    EngineConfigError,
    EngineError,
    InputFormatError,
    InvalidEvent,
    StateFormatError,
)
from stream.engine.events import (
    KINDS,
    REJECTION_REASONS,
    Event,
    Rejection,
    ValidationConfig,
    validate_event,
    validate_many,
)
from stream.engine.heavyhitters import SpaceSaving
from stream.engine.profiles import ProfileConfig, UserProfile
from stream.engine.ranking import (
    DictCatalog,
    ExactSimilarity,
    ItemCatalog,
    ItemInfo,
    RankingConfig,
    RecommendationRequest,
    recommend,
    recommend_many,
)
from stream.engine.replay import read_baskets_csv, read_taobao, read_transactions
from stream.engine.rules import AssociationRule, association_metrics, log_likelihood_ratio, rank_rules
from stream.engine.sessions import CHANNELS, IngestResult, ItemUpdate, SessionConfig, UserActivity

__all__ = [
    "CHANNELS",
    "KINDS",
    "REJECTION_REASONS",
    "AdConfig",
    "AdTarget",
    "AdTargeter",
    "AssociationEngine",
    "AssociationRule",
    "BasketCounts",
    "BatchReport",
    "CooccurrenceConfig",
    "CooccurrenceStore",
    "DictCatalog",
    "EngineConfig",
    "EngineConfigError",
    "EngineError",
    "Event",
    "ExactSimilarity",
    "FrequencyCap",
    "IngestResult",
    "InputFormatError",
    "InvalidEvent",
    "ItemAssociations",
    "ItemCatalog",
    "ItemCounts",
    "ItemInfo",
    "ItemUpdate",
    "ProfileConfig",
    "RankingConfig",
    "RecommendationRequest",
    "Rejection",
    "SessionConfig",
    "SpaceSaving",
    "StateFormatError",
    "TransactionTally",
    "UserActivity",
    "UserProfile",
    "ValidationConfig",
    "association_metrics",
    "basket_counts",
    "baskets_to_events",
    "decay_weight",
    "log_likelihood_ratio",
    "rank_rules",
    "read_baskets_csv",
    "read_taobao",
    "read_transactions",
    "recommend",
    "recommend_many",
    "validate_event",
    "validate_many",
]
