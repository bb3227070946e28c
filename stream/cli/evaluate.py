"""``xsell evaluate``: offline quality of the stream's ranking against baselines on a real log."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from stream.cli.base import app, console, err_console
from stream.errors import ConfigError, UsageError

DEFAULT_FORMAT = "generic"
DEFAULT_SPLIT = 0.8
DEFAULT_K = 10
DEFAULT_THREADS = 1
# The worker settings the stream's models read offline (written to the JSON with the run).
EVALUATED_SETTINGS = (
    "session_gap_s",
    "rank_recent_items",
    "rank_association_weight",
    "rank_similarity_weight",
    "rank_trending_weight",
    "rank_min_lift",
)


@app.command("evaluate")
def evaluate_command(
    events: Annotated[Path, typer.Option("--events", help="The event log to replay.")],
    json_out: Annotated[Path, typer.Option("--json", help="Write the metrics as JSON to this file.")],
    format: Annotated[
        str, typer.Option("--format", help="generic (user,item,kind,ts in s) | taobao | retailrocket.")
    ] = DEFAULT_FORMAT,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="CSV with item_id,title (category, brand, description optional)."),
    ] = None,
    split: Annotated[float, typer.Option("--split", help="Share of the log (by time) that warms the models.")] = (
        DEFAULT_SPLIT
    ),
    k: Annotated[int, typer.Option("--k", help="List length for HR, NDCG and MRR.")] = DEFAULT_K,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG bar chart here.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Threads for the implicit models.")] = DEFAULT_THREADS,
    validation: Annotated[
        bool,
        typer.Option(
            "--validation",
            help="Evaluate the warm-up part alone (the events before the cut, split again): tune settings here.",
        ),
    ] = False,
) -> None:
    """Replay a log: every later event is scored, then applied; HR/NDCG/MRR@k per model.

    The stream's models take the session gap and ranking weights from the same ``XSELL_*``
    variables as a worker (``XSELL_SESSION_GAP_S``, ``XSELL_RANK_*``).
    """
    from encoders import CatalogError, EncoderError
    from stream.engine import InputFormatError
    from stream.evaluation import (
        FORMATS,
        EvaluationConfig,
        EvaluationError,
        catalog_vectors,
        compare_with_peers,
        load_events,
        plot_result,
        render_rows,
        run_evaluation,
        split_point,
    )

    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if not events.is_file():
        raise UsageError(f"--events: no such file: {events}")
    if catalog is not None and not catalog.is_file():
        raise UsageError(f"--catalog: no such file: {catalog}")
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    from stream.settings import Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    try:
        config = EvaluationConfig(split=split, k=k)
        logged = load_events(events, format)
        _, warm_count = split_point(logged, split)
        if validation:
            if warm_count < 2:
                raise UsageError(
                    f"--validation: the warm-up part holds {warm_count} event{'s' * (warm_count != 1)}; need at least 2"
                )
            logged = logged[:warm_count]
            _, warm_count = split_point(logged, split)
        item_ids: list[str] = []
        item_vectors = None
        if catalog is not None:
            with err_console.status("encoding the catalog"):
                item_ids, item_vectors = catalog_vectors(catalog)
        with (
            Progress(
                TextColumn("replaying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as progress,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # implicit's advice on BLAS threads and matrix formats
            task = progress.add_task("replay", total=len(logged) - warm_count)
            result = run_evaluation(
                logged,
                config=config,
                item_ids=item_ids,
                item_vectors=item_vectors,
                threads=threads,
                on_event=lambda count: progress.advance(task, count),
                settings=settings,
            )
    except (InputFormatError, EvaluationError, CatalogError, EncoderError) as exc:
        raise UsageError(str(exc)) from exc
    comparison = compare_with_peers(result)
    summary = result.to_dict()
    summary["part"] = "validation" if validation else "test"
    summary["settings"] = {name: getattr(settings, name) for name in EVALUATED_SETTINGS}
    if comparison is not None:
        summary["comparison"] = comparison.to_dict()
    try:
        json_out.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        if plot is not None:
            plot_result(result, plot, title=f"{events.name}: {result.targets} discovery targets, k={k}")
    except OSError as exc:
        raise UsageError(f"cannot write the output: {exc}") from exc
    columns, rows = render_rows(result)
    part = " (validation: the warm-up part alone)" if validation else ""
    table = Table(
        title=(
            f"{events.name}{part}: {result.events} events, {result.warm_events} warm-up, "
            f"{result.targets} discovery / {result.conversion_targets} conversion targets"
        )
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if comparison is not None:
        console.print(comparison.describe(k))
