"""``xsell topics create|check``: xsell's topics with the right partitions and compaction."""

from __future__ import annotations

import asyncio

import typer

from stream.cli.base import app, console
from stream.settings import Settings
from stream.topics import TOPICS, check_copartitioning, ensure_topics

topics_app = typer.Typer(help="Create and check xsell's topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def topics_create(
    broker: str = typer.Option(None, "--broker", help="Kafka bootstrap (default: XSELL_BROKER)."),
    partitions: int = typer.Option(None, "--partitions", min=1, help="Partitions of new topics."),
    topic_prefix: str = typer.Option(None, "--topic-prefix", help="Prefix of every topic name."),
) -> None:
    """Create the missing topics (waits for Kafka), then check the event topics' and item-pairs' partition counts."""
    settings = Settings.from_env(broker=broker, partitions=partitions, topic_prefix=topic_prefix)
    asyncio.run(ensure_topics(settings))
    console.print(" ".join(settings.topic(spec.name) for spec in TOPICS))


@topics_app.command("check")
def topics_check(
    broker: str = typer.Option(None, "--broker", help="Kafka bootstrap (default: XSELL_BROKER)."),
    partitions: int = typer.Option(
        None, "--partitions", min=1, help="The count the workers run with (default: XSELL_PARTITIONS)."
    ),
    topic_prefix: str = typer.Option(None, "--topic-prefix", help="Prefix of every topic name."),
) -> None:
    """Say whether the event topics and item-pairs have the workers' partition count (exit 2 when not)."""
    settings = Settings.from_env(broker=broker, partitions=partitions, topic_prefix=topic_prefix)
    counts = asyncio.run(check_copartitioning(settings))
    console.print(", ".join(f"{name}={count}" for name, count in sorted(counts.items())))
