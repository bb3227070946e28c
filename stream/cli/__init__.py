"""The ``xsell`` command line: one entry point, one module per concern.

Each module under ``stream.cli`` registers its commands on ``app`` (or on the ``bench``
group) when imported; ``main`` imports them all. Commands are thin shells over library
functions: they parse flags, call the library, print with rich, and turn a library's
error into one line on stderr with exit code 2.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.22 vendors its own click
    from typer._click.exceptions import UsageError as ClickUsageError
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import UsageError as ClickUsageError  # type: ignore[assignment]  # same class, older home

from stream.cli.base import app, err_console
from stream.errors import XsellError

__all__ = ["app", "main"]

# Importing a command module registers its commands on `app` or `bench_app`.
COMMAND_MODULES = (
    "stream.cli.kafka",
    "stream.cli.rules",
    "stream.cli.embed",
    "stream.cli.index",
    "stream.cli.tools",
    "stream.cli.worker",
    "stream.cli.topics",
    "stream.cli.evaluate",
    "stream.cli.demo",
    "stream.cli.pipeline",
)


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; usage errors and xsell errors are one line and exit code 2."""
    _register_commands()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="xsell", standalone_mode=False)
    except ClickUsageError as exc:
        message = exc.format_message()
        if message:  # empty when a group printed its help for want of arguments
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            err_console.print(f"error: {where}{message}", markup=False, highlight=False)
        sys.exit(2)
    except XsellError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
