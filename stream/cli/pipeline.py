"""``xsell bench pipeline``: xsell's full path through Kafka against a plain aiokafka loop
and a naive Faust agent, and its latency at a fixed rate (``stream.benchmarks.pipeline``).

A thin shell: parse the flags, run the library with a progress bar on stderr, print one
table, write ``--json OUT``. Never fails on speed; a run that cannot go on is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stream.cli.base import bench_app, console, err_console
from stream.errors import UsageError

__all__ = ["bench_pipeline_command"]

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@bench_app.command("pipeline")
def bench_pipeline_command(
    events: Annotated[
        int, typer.Option("--events", min=1, help="Events produced up front for the throughput phases.")
    ] = 50_000,
    items: Annotated[int, typer.Option("--items", min=1, help="Catalog items in the index.")] = 50_000,
    rate: Annotated[float, typer.Option("--rate", min=0.001, help="Offered events/s in the latency phase.")] = 1_000.0,
    latency_seconds: Annotated[
        float, typer.Option("--latency-seconds", min=0, help="Length of the latency phase (0: skip it).")
    ] = 20.0,
    guarantee: Annotated[
        list[str] | None,
        typer.Option("--guarantee", help="at_least_once and/or exactly_once (repeat the flag); default at_least_once."),
    ] = None,
    broker: Annotated[
        str | None, typer.Option("--broker", help="Use this Kafka (host:port) instead of starting a local one.")
    ] = None,
    partitions: Annotated[int, typer.Option("--partitions", min=1, help="Partitions of every topic.")] = 4,
    store: Annotated[str, typer.Option("--store", help="The worker's table store: rocksdb or memory.")] = "rocksdb",
    lateness_s: Annotated[
        float, typer.Option("--lateness-s", min=0, help="The worker's allowed lateness (the replay squeezes time).")
    ] = 86_400.0,
    worker_setting: Annotated[
        list[str] | None,
        typer.Option(
            "--worker-setting", help="XSELL_NAME=VALUE for the xsell worker, e.g. XSELL_BATCH_SIZE=2000 (repeatable)."
        ),
    ] = None,
    split_roles: Annotated[
        bool,
        typer.Option(
            "--split-roles",
            help="Run xsell as two workers: XSELL_ROLE=interactions and XSELL_ROLE=cooccurrence.",
        ),
    ] = False,
    data: Annotated[Path, typer.Option("--data", help="The shared datasets directory.")] = SHARED_DATA,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Run directory: broker, worker logs (default: a temp dir).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON to this file.")] = None,
) -> None:
    """Events/s of xsell's full path against a plain aiokafka loop and a naive Faust agent,
    latency at a fixed offered rate, and memory per user and item. Never fails on speed."""
    from stream.benchmarks import BenchmarkError
    from stream.benchmarks.pipeline import PipelineConfig, run_pipeline_benchmark

    if not (data / "taobao_userbehavior").is_dir():
        raise UsageError(f"--data {data}: no taobao_userbehavior directory there")
    try:
        config = PipelineConfig(
            events=events,
            items=items,
            rate=rate,
            latency_seconds=latency_seconds,
            partitions=partitions,
            guarantees=tuple(dict.fromkeys(guarantee or ["at_least_once"])),
            broker=broker,
            shared_data=data,
            work_dir=work_dir,
            store=store,
            lateness_s=lateness_s,
            worker_settings=tuple(_setting(entry) for entry in worker_setting or ()),
            split_roles=split_roles,
        )
    except BenchmarkError as exc:
        raise UsageError(str(exc)) from exc
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM unwinds: workers and broker stop
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        ) as progress:
            tasks: dict[str, Any] = {}

            def step(description: str, done: int, total: int) -> None:
                if description not in tasks:
                    tasks[description] = progress.add_task(description, total=total)
                progress.update(tasks[description], completed=done, total=total)

            report = run_pipeline_benchmark(config, step)
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(_table(report))
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--json {json_out}: cannot write ({exc.strerror})") from exc


def _setting(entry: str) -> tuple[str, str]:
    name, equals, value = entry.partition("=")
    if not equals:
        raise UsageError(f"--worker-setting {entry!r}: expected XSELL_NAME=VALUE")
    return name.strip(), value


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _table(report: dict[str, Any]) -> Table:
    table = Table(title="xsell bench pipeline", show_lines=False)
    for column in ("guarantee", "measure", "value", "goal"):
        table.add_column(column)
    client = report.get("client_ceiling", {})
    table.add_row("-", "client ceiling (aiokafka loop), events/s", _number(client.get("events_per_s")), "")
    for guarantee, run in report["runs"].items():
        if "error" in run:
            table.add_row(guarantee, "error", run["error"], "")
            continue
        latency, memory, ratios, goals = run["latency"], run["memory"], run["ratios"], run["goals"]
        throughput_goal = goals["throughput_vs_framework"]
        rows = [
            ("framework ceiling (naive Faust agent), events/s", _number(run["framework_ceiling"]["events_per_s"]), ""),
            (f"xsell full path ({run['worker_processes']} worker processes), events/s",
             _number(run["xsell"]["events_per_s"]), ""),
            ("xsell / framework", f"{ratios['xsell_over_framework']:.2f}x",
             f"{throughput_goal['target']}: {'reached' if throughput_goal['reached'] else 'NOT reached'}"),
            ("xsell / client", f"{ratios['xsell_over_client']:.3f}x", ""),
            ("events per CPU second: framework / xsell (all its workers)",
             f"{_number(run['framework_ceiling']['events_per_cpu_s'])} / {_number(run['xsell']['events_per_cpu_s'])}",
             ""),
            ("xsell / framework, per CPU second", f"{ratios['xsell_over_framework_per_cpu_s']:.2f}x", ""),
            ("co-occurrence caught up, s after the last answer",
             _number(run["xsell"]["pairs_counted_after_last_answer_s"], 1), ""),
            ("unanswered / duplicate answers",
             f"{run['xsell']['unanswered']} / {run['xsell']['duplicate_answers']}", ""),
        ]
        if latency:
            p99_goal = goals["p99_latency"]
            rows += [
                (f"latency at {latency['offered_rate']:g}/s: p50 / p99 / max ms",
                 f"{_number(latency['p50_ms'], 1)} / {_number(latency['p99_ms'], 1)} / {_number(latency['max_ms'], 1)}",
                 f"{p99_goal['target']}: {'reached' if p99_goal['reached'] else 'NOT reached'}"),
                ("latency: answered / offered", f"{latency['answered']} / {latency['events']}", ""),
                ("latency phase: CPU ms per event; busy", _cpu_of(latency), ""),
            ]
        framework_latency = run["framework_ceiling"].get("latency")
        if framework_latency:
            rows.append(
                (f"framework ceiling latency at {framework_latency['offered_rate']:g}/s: p50 / p99 / max ms",
                 f"{_number(framework_latency['p50_ms'], 1)} / {_number(framework_latency['p99_ms'], 1)} / "
                 f"{_number(framework_latency['max_ms'], 1)} ({framework_latency['answered']} / "
                 f"{framework_latency['events']} forwarded)", "")
            )
            rows.append(("framework ceiling latency phase: CPU ms per event; busy", _cpu_of(framework_latency), ""))
        rows += [
            ("user state, serialised bytes (mean)", _number(memory["user_state_serialised_bytes_mean"]), ""),
            ("item associations, serialised / parsed bytes (mean)",
             f"{_number(memory['item_associations_serialised_bytes_mean'])} / "
             f"{_number(memory['item_associations_parsed_bytes_mean'])}", ""),
            ("worker RSS growth per user+item, bytes", _number(memory["rss_growth_per_user_and_item_bytes"]), ""),
        ]
        for measure, value, goal in rows:
            table.add_row(guarantee, measure, value, goal)
    return table


def _cpu_of(latency: dict[str, Any]) -> str:
    """CPU milliseconds per offered event, and each worker's busy fraction, of a latency phase."""
    busy = ", ".join(f"{name} {fraction:.0%}" for name, fraction in latency["busy"].items())
    return f"{_number(latency['cpu_ms_per_event'], 2)}; {busy}"
