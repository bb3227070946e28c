"""``xsell kafka up|down|status``: the local single-node KRaft broker."""

from __future__ import annotations

from pathlib import Path

import typer

from stream.cli.base import app, console
from stream.localkafka import DEFAULT_DATA_DIR, DEFAULT_HEAP, DEFAULT_PORT, LocalKafka

kafka_app = typer.Typer(help="Start, stop and inspect a local Kafka broker (KRaft).", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")

DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Where the broker keeps its logs and data.")


@kafka_app.command("up")
def kafka_up(
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Client port."),
    data_dir: Path = DataDir,
    heap: str = typer.Option(DEFAULT_HEAP, "--heap", help="Maximum JVM heap, e.g. 512m."),
) -> None:
    """Start a broker, wait until it accepts clients, print its bootstrap address."""
    bootstrap = LocalKafka(data_dir=data_dir, port=port, heap=heap).start()
    print(bootstrap)


@kafka_app.command("down")
def kafka_down(data_dir: Path = DataDir) -> None:
    """Stop the broker recorded under --data-dir and wait for it to exit."""
    stopped = LocalKafka(data_dir=data_dir).stop()
    console.print("stopped" if stopped else "not running")


@kafka_app.command("status")
def kafka_status(data_dir: Path = DataDir) -> None:
    """Say whether the broker recorded under --data-dir runs (exit 0) or not (exit 1)."""
    broker = LocalKafka(data_dir=data_dir)
    pid = broker.running_pid()
    if pid is None:
        console.print("not running")
        raise typer.Exit(1)
    console.print(f"running pid={pid} bootstrap={broker.recorded_bootstrap()}")
