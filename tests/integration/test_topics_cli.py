"""``xsell topics create|check`` on the real broker: partition counts that cannot work are refused."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.errors import ConfigError
from stream.settings import Settings
from stream.topics import check_copartitioning, ensure_topics

pytestmark = pytest.mark.integration


def create(bootstrap: str, partitions: dict[str, int]) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, num_partitions=count, replication_factor=1) for name, count in partitions.items()]
            )
        finally:
            await admin.close()

    asyncio.run(run())


@pytest.mark.parametrize("odd_topic", ["carts", "item-pairs"])
def test_a_topic_with_another_partition_count_is_refused_in_one_line(xsell, kafka_broker, odd_topic: str) -> None:
    """A user's events meet in one partition number of the three event topics, and a
    co-occurrence worker's items in the one of ``item-pairs``: all four need one count."""
    prefix = f"copart-{uuid.uuid4().hex[:8]}."
    create(kafka_broker.bootstrap, {f"{prefix}{odd_topic}": 2})

    created = xsell(
        "topics", "create", "--broker", kafka_broker.bootstrap, "--partitions", "4", "--topic-prefix", prefix
    )
    checked = xsell("topics", "check", "--broker", kafka_broker.bootstrap, "--topic-prefix", prefix)

    for result in (created, checked):
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "co-partitioned" in lines[0], result.stderr
        assert f"{prefix}{odd_topic}=2" in lines[0] and f"{prefix}clicks=4" in lines[0]


def test_co_partitioned_topics_pass_the_check(xsell, kafka_broker) -> None:
    prefix = f"copart-{uuid.uuid4().hex[:8]}."
    created = xsell(
        "topics", "create", "--broker", kafka_broker.bootstrap, "--partitions", "3", "--topic-prefix", prefix
    )
    checked = xsell(
        "topics", "check", "--broker", kafka_broker.bootstrap, "--partitions", "3", "--topic-prefix", prefix
    )

    assert created.returncode == 0 and checked.returncode == 0, created.stderr + checked.stderr
    assert checked.stdout.split() == [
        f"{prefix}carts=3,",
        f"{prefix}clicks=3,",
        f"{prefix}item-pairs=3,",
        f"{prefix}purchases=3",
    ]


def test_topics_with_another_count_than_the_workers_are_refused(xsell, kafka_broker) -> None:
    """Co-partitioned, but not with ``XSELL_PARTITIONS`` (4 by default): a worker numbers
    its per-partition keys and item-pairs partitions over that count, and hung on the
    first event of a partition beyond it."""
    prefix = f"copart-{uuid.uuid4().hex[:8]}."
    created = xsell(
        "topics", "create", "--broker", kafka_broker.bootstrap, "--partitions", "6", "--topic-prefix", prefix
    )
    assert created.returncode == 0, created.stderr

    checked = xsell("topics", "check", "--broker", kafka_broker.bootstrap, "--topic-prefix", prefix)

    assert checked.returncode == 2, checked.stdout + checked.stderr
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1, checked.stderr
    assert "have 6 partitions but XSELL_PARTITIONS is 4" in lines[0] and "XSELL_PARTITIONS=6" in lines[0]


def test_a_changelog_with_another_count_stops_the_worker_start(kafka_broker) -> None:
    """The check a worker runs at start (``ensure_topics``) covers its tables' changelogs:
    one left from an earlier deployment with another count cannot hold the partitions'
    state."""
    app_id = f"copart-{uuid.uuid4().hex[:8]}"
    changelog = f"{app_id}-user-state-changelog"  # as Faust names it: the app id, not the topic prefix
    create(kafka_broker.bootstrap, {changelog: 2})
    settings = Settings.from_env(
        {}, broker=kafka_broker.bootstrap, partitions=4, topic_prefix=f"{app_id}.", app_id=app_id
    )

    refused = rf"changelogs must have XSELL_PARTITIONS=4 .*{changelog}=2.*new XSELL_APP_ID"
    with pytest.raises(ConfigError, match=refused):
        asyncio.run(ensure_topics(settings, changelogs=[changelog]))

    # The event topics were created, with the workers' count: only the changelog is wrong.
    assert asyncio.run(check_copartitioning(settings)) == {
        settings.topic(name): 4 for name in ("clicks", "carts", "purchases", "item-pairs")
    }
