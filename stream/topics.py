"""xsell's topics: names, keys, compaction, and the start-up co-partitioning check.

| topic                  | key        | kind      | written by                     |
|------------------------|------------|-----------|--------------------------------|
| clicks, carts, purchases | user id  | input     | the shop's backend             |
| catalog                | item id    | compacted | the shop's backend             |
| ad-campaigns           | campaign   | compacted | ad managers                    |
| item-embeddings        | item:ID / campaign:ID | compacted, internal | the encoder agent |
| item-pairs             | pairs:<partition> | internal | the interactions agent  |
| item-associations      | item id    | compacted | the co-occurrence agent        |
| cross-recommendations  | user id    | output    | the interactions agent         |
| ad-targets             | user id    | output    | the interactions agent         |
| dead-letter            | origin key | output    | every agent                    |

Every name takes the optional ``topic_prefix`` setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.errors import ConfigError
from stream.settings import Settings

__all__ = [
    "EVENT_TOPICS",
    "TOPICS",
    "TopicSpec",
    "check_copartitioning",
    "create_topics",
    "ensure_topics",
    "partitioning_problem",
]

log = logging.getLogger(__name__)

EVENT_TOPICS = {"clicks": "click", "carts": "cart", "purchases": "purchase"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False
    internal: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("clicks"),
    TopicSpec("carts"),
    TopicSpec("purchases"),
    TopicSpec("catalog", compacted=True),
    TopicSpec("ad-campaigns", compacted=True),
    TopicSpec("item-embeddings", compacted=True, internal=True),
    TopicSpec("item-pairs", internal=True),
    TopicSpec("item-associations", compacted=True),
    TopicSpec("cross-recommendations"),
    TopicSpec("ad-targets"),
    TopicSpec("dead-letter"),
)


def topic_config(spec: TopicSpec) -> dict[str, str]:
    if spec.compacted:
        # Tombstones stay a day, so a replica snapshot younger than that sees every delete.
        return {"cleanup.policy": "compact", "delete.retention.ms": str(24 * 3600 * 1000)}
    return {}


async def create_topics(settings: Settings, changelogs: Sequence[str] = ()) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    ``changelogs``: the worker's table changelog topics (full names), created compacted with
    the same partitions. Faust would create them itself, but only after its consumer has
    fetched metadata without them; a table write then saw "0 partitions" and failed until the
    next metadata refresh (a CI run lost a co-occurrence batch to it).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **admin_security(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [(settings.topic(spec.name), topic_config(spec)) for spec in TOPICS]
        wanted += [(name, topic_config(TopicSpec(name, compacted=True))) for name in changelogs]
        missing = [
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=config,
            )
            for name, config in wanted
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        await admin.close()


DESCRIBE_TRIES = 10
DESCRIBE_RETRY_S = 0.3


async def check_copartitioning(settings: Settings, changelogs: Sequence[str] = ()) -> dict[str, int]:
    """The three event topics and item-pairs must have ``settings.partitions`` partitions each,
    and so must ``changelogs`` (the worker's table changelogs) where they exist.

    User state is partitioned with the user's events, which arrive on three topics read
    by one agent: a user's clicks and purchases must land in the same partition number.
    The interactions agent sends an item's pairs to the ``item-pairs`` partition that holds
    the item's co-occurrence state, and keys its per-partition table records, numbered over
    ``XSELL_PARTITIONS``: with more partitions than that, the worker would never find the
    key of a partition beyond it (it searched forever) and would write to changelog
    partitions that do not exist.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **admin_security(settings))
    await admin.start()
    try:
        names = [settings.topic(name) for name in (*EVENT_TOPICS, "item-pairs")]
        for _ in range(DESCRIBE_TRIES):  # a topic created moments ago may not be described yet
            described = await admin.describe_topics(names)
            if all(entry.get("partitions") for entry in described):
                break
            await asyncio.sleep(DESCRIBE_RETRY_S)
        described_changelogs = await admin.describe_topics(list(changelogs)) if changelogs else []
    finally:
        await admin.close()
    counts = _partition_counts(described)
    problem = partitioning_problem(counts, _partition_counts(described_changelogs), settings.partitions)
    if problem:
        raise ConfigError(problem)
    return counts


def _partition_counts(described: Sequence[dict[str, object]]) -> dict[str, int]:
    """Topic → partition count, of the described topics that exist."""
    return {str(entry["topic"]): len(entry["partitions"]) for entry in described if entry.get("partitions")}  # type: ignore[arg-type]


def partitioning_problem(counts: dict[str, int], changelogs: dict[str, int], partitions: int) -> str | None:
    """What is wrong with these partition counts, in one line, or None.

    ``counts``: the event topics and item-pairs; ``changelogs``: the table changelogs;
    ``partitions``: ``XSELL_PARTITIONS``, the count the worker numbers them all over.
    """

    def listed(found: dict[str, int]) -> str:
        return ", ".join(f"{name}={count}" for name, count in sorted(found.items()))

    if len(set(counts.values())) > 1:
        return f"event topics and item-pairs must be co-partitioned (same partition count): {listed(counts)}"
    if counts and (count := next(iter(counts.values()))) != partitions:
        return (
            f"the event topics and item-pairs have {count} partitions but XSELL_PARTITIONS is {partitions}: "
            f"set XSELL_PARTITIONS={count} (--partitions {count}), the count the worker numbers them over"
        )
    odd = {name: count for name, count in changelogs.items() if count != partitions}
    if odd:
        return (
            f"table changelogs must have XSELL_PARTITIONS={partitions} partitions, as the event topics: {listed(odd)}; "
            "they hold state partitioned by another count: start with a new XSELL_APP_ID (it names them) and replay"
        )
    return None


async def ensure_topics(settings: Settings, retry_every_s: float = 5.0, changelogs: Sequence[str] = ()) -> None:
    """Create missing topics (and ``changelogs``, see ``create_topics``) and check
    co-partitioning, retrying while Kafka is unreachable."""
    from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

    while True:
        try:
            created = await create_topics(settings, changelogs)
        except TopicAlreadyExistsError:
            continue  # another worker created one between our listing and creating
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            log.warning(
                "Kafka at %s unreachable (%s); retrying in %.0fs", settings.broker, exc, retry_every_s
            )
            await asyncio.sleep(retry_every_s)
            continue
        if created:
            log.info("created topics: %s", ", ".join(created))
        await check_copartitioning(settings, changelogs)
        return


def admin_security(settings: Settings) -> dict[str, object]:
    """aiokafka keyword arguments for the configured Kafka security."""
    if settings.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, object] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(cafile=settings.ssl_cafile or None)
    if settings.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    return options
