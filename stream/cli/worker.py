"""``xsell worker``: run one xsell worker (the Faust app of ``stream.app``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from stream.cli.base import app
from stream.settings import ENV_PREFIX, Settings


@app.command("worker")
def worker(
    broker: str = typer.Option(None, "--broker", help="Kafka bootstrap, e.g. kafka://127.0.0.1:9092."),
    web_port: int = typer.Option(None, "--web-port", min=1, max=65535, help="HTTP API and /metrics port."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local state: tables and index snapshots."),
    store: str = typer.Option(None, "--store", help="Table store: rocksdb or memory."),
    partitions: int = typer.Option(
        None, "--partitions", min=1, help="Partitions of the topics xsell creates; existing ones must have as many."
    ),
    topic_prefix: str = typer.Option(None, "--topic-prefix", help="Prefix of every topic name."),
    processing_guarantee: str = typer.Option(
        None,
        "--processing-guarantee",
        help="at_least_once (default) or exactly_once (state and offsets only; outputs stay at-least-once).",
    ),
    role: str = typer.Option(
        None, "--role", help="all (default), interactions (all but co-occurrence) or cooccurrence (only it)."
    ),
    log_level: str = typer.Option(None, "--log-level", help="debug, info, warning or error."),
) -> None:
    """Run a worker until stopped (Ctrl-C or SIGTERM stop it cleanly).

    Every option can also be set with its XSELL_* environment variable; options win.
    """
    settings = Settings.from_env(
        broker=broker,
        web_port=web_port,
        data_dir=data_dir,
        store=store,
        partitions=partitions,
        topic_prefix=topic_prefix,
        processing_guarantee=processing_guarantee,
        role=role,
        log_level=log_level,
    )
    # stream.app reads its settings from the environment, as `faust -A stream.app` does.
    for name, value in vars(settings).items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)
    from stream.app import app as faust_app

    sys.argv = ["xsell", "worker", "--loglevel", settings.log_level]
    faust_app.main()
