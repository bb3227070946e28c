"""The root ``xsell`` Typer app, the ``bench`` group, and the consoles commands print to."""

from __future__ import annotations

import typer
from rich.console import Console

__all__ = ["app", "bench_app", "console", "err_console"]

app = typer.Typer(
    name="xsell",
    help="Real-time product association and cross-recommendation on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks: measure and report, write JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
