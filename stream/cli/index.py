"""``xsell index build``, ``xsell index query`` and ``xsell bench index``.

Thin shells over the ``index`` library: read the files, call the library, show progress on
stderr, print a summary, write ``--json OUT`` for machines, and turn any ``ItemIndexError``
(or a bad file) into a one-line usage error with exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stream.cli.base import app, bench_app, console, err_console
from stream.errors import UsageError

__all__ = ["bench_index_command", "index_app", "index_build_command", "index_query_command"]

index_app = typer.Typer(help="Build and query the HNSW item index.", no_args_is_help=True)
app.add_typer(index_app, name="index")

BUILD_CHUNK = 5_000
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the result as JSON to this file.")]


@contextmanager
def _as_usage_errors() -> Iterator[None]:
    """Library errors become one-line usage errors (exit code 2)."""
    from encoders.errors import EncoderError
    from index import ItemIndexError

    try:
        yield
    except (ItemIndexError, EncoderError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from exc


def _write_json(path: Path | None, result: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--json {path}: cannot write ({exc.strerror})") from exc


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value}")
    return value


@index_app.command("build")
def index_build_command(
    vectors: Annotated[Path, typer.Option("--vectors", help="Directory written by `xsell embed`.")],
    out: Annotated[Path, typer.Option("--out", help="Index directory to write (an atomic snapshot).")],
    m: Annotated[int, typer.Option("--m", help="HNSW links per node (M).")] = 16,
    ef_construction: Annotated[int, typer.Option("--ef-construction", help="Build-time search depth.")] = 100,
    ef: Annotated[int, typer.Option("--ef", help="Query-time search depth saved in the manifest.")] = 64,
    json_out: JsonOption = None,
) -> None:
    """Build an item index from embedded vectors and save it as a snapshot.

    Example: xsell index build --vectors out/embeddings --out out/index --m 16 --ef-construction 100
    """
    from encoders.catalog import load_embeddings
    from index import ItemIndex

    for name, value in (("--m", m), ("--ef-construction", ef_construction), ("--ef", ef)):
        _positive(name, value)
    if not vectors.is_dir():
        raise UsageError(f"--vectors {vectors}: not a directory")
    with _as_usage_errors():
        matrix, ids, manifest = load_embeddings(vectors)
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise UsageError(f"--vectors {vectors}: vectors.npy must be a non-empty (n, dim) array")
        model_version = manifest.get("model")
        index = ItemIndex(
            int(matrix.shape[1]),
            m=m,
            ef_construction=ef_construction,
            ef=ef,
            initial_capacity=int(matrix.shape[0]),
            model_version=model_version,
        )
        with _progress() as progress:
            task = progress.add_task("indexing", total=len(ids))
            for start in range(0, len(ids), BUILD_CHUNK):
                index.upsert(ids[start : start + BUILD_CHUNK], matrix[start : start + BUILD_CHUNK])
                progress.advance(task, min(BUILD_CHUNK, len(ids) - start))
        generation = index.save(out)
    summary = {
        "out": str(out),
        "snapshot": generation.name,
        "count": len(index),
        "dim": index.dim,
        "model_version": model_version,
        "m": m,
        "ef_construction": ef_construction,
        "ef": ef,
    }
    console.print(f"indexed {len(index)} items of dimension {index.dim} into {out} (model {model_version})")
    _write_json(json_out, summary)


@index_app.command("query")
def index_query_command(
    index_dir: Annotated[Path, typer.Option("--index", help="Index directory written by `xsell index build`.")],
    vectors: Annotated[Path, typer.Option("--vectors", help="Query vectors: a .npy file of shape (q, dim).")],
    k: Annotated[int, typer.Option("--k", help="Neighbours per query.")] = 10,
    ef: Annotated[int | None, typer.Option("--ef", help="Search depth (default: the index's own).")] = None,
    model: Annotated[
        str | None, typer.Option("--expected-model", help="Refuse an index built with another model version.")
    ] = None,
    json_out: JsonOption = None,
) -> None:
    """Nearest items for each query vector, best first, scores as cosine similarity.

    Writes {"ids": [[...], ...], "scores": [[...], ...]} (one row per query) to --json, or to
    stdout without it. Example: xsell index query --index out/index --vectors q.npy --k 10 --json hits.json
    """
    from index import ItemIndex

    _positive("--k", k)
    if ef is not None:
        _positive("--ef", ef)
    try:
        queries = np.load(vectors, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--vectors {vectors}: not a readable .npy file ({exc})") from exc
    with _as_usage_errors():
        settings = {} if ef is None else {"ef": ef}
        index = ItemIndex.load(index_dir, expected_model_version=model, **settings)
        if queries.ndim == 1:
            queries = queries[np.newaxis, :]
        if queries.ndim != 2 or queries.shape[1] != index.dim:
            raise UsageError(f"--vectors {vectors}: shape {queries.shape}, the index needs (q, {index.dim})")
        found = index.query_arrays(queries, k)
    result = {"ids": found.ids.tolist(), "scores": found.scores.tolist()}
    if json_out is None:
        console.print_json(data=result)
    else:
        _write_json(json_out, result)
        console.print(f"{len(found)} queries answered ({found.report.path} search) into {json_out}")


@bench_app.command("index")
def bench_index_command(
    n: Annotated[int, typer.Option("--n", help="Items to index (clustered synthetic vectors).")] = 100_000,
    dim: Annotated[int, typer.Option("--dim", help="Dimension of the synthetic vectors.")] = 384,
    vectors: Annotated[
        Path | None, typer.Option("--vectors", help="Use real embeddings from an `xsell embed` directory.")
    ] = None,
    queries: Annotated[int, typer.Option("--queries", help="Held-out query vectors.")] = 1_000,
    m: Annotated[int, typer.Option("--m", help="HNSW links per node (M).")] = 16,
    ef_construction: Annotated[int, typer.Option("--ef-construction", help="Build-time search depth.")] = 100,
    ef_values: Annotated[str, typer.Option("--ef-values", help="Comma-separated ef values to measure.")] = (
        "16,32,64,128"
    ),
    repeats: Annotated[int, typer.Option("--repeats", help="Best of this many timings.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic vectors.")] = 0,
    json_out: JsonOption = None,
) -> None:
    """Benchmark the index against raw hnswlib and numpy exact search (never fails on speed).

    Example: xsell bench index --n 100000 --dim 384 --json out/bench-index.json
    """
    from index.benchmark import BenchmarkSettings, run_index_benchmark

    for name, value in (("--n", n), ("--dim", dim), ("--queries", queries), ("--m", m)):
        _positive(name, value)
    _positive("--ef-construction", ef_construction)
    _positive("--repeats", repeats)
    try:
        efs = tuple(int(value) for value in ef_values.split(",") if value.strip())
    except ValueError as exc:
        raise UsageError(f"--ef-values {ef_values!r}: expected comma-separated integers") from exc
    if not efs or min(efs) < 1:
        raise UsageError(f"--ef-values {ef_values!r}: expected positive integers")
    matrix = None
    data = "clustered"
    if vectors is not None:
        from encoders.catalog import load_embeddings

        with _as_usage_errors():
            matrix, _, manifest = load_embeddings(vectors)
        data = f"embeddings from {vectors} ({manifest.get('model')})"
        if matrix.shape[0] <= queries:
            raise UsageError(f"--vectors {vectors}: {matrix.shape[0]} vectors, need more than --queries {queries}")
    settings = BenchmarkSettings(
        n=n, dim=dim, queries=queries, m=m, ef_construction=ef_construction, ef_values=efs,
        repeats=repeats, seed=seed, data=data,
    )  # fmt: skip
    with _progress() as progress:
        task = progress.add_task("benchmark", total=len(efs) + 4)

        def step(description: str) -> None:
            progress.update(task, description=description, advance=1)

        with _as_usage_errors():
            report = run_index_benchmark(settings, vectors=matrix, progress=step)
    _print_benchmark(report)
    _write_json(json_out, report)


def _print_benchmark(report: dict[str, Any]) -> None:
    from rich.table import Table

    settings, exact, build = report["settings"], report["exact"], report["build"]
    console.print(
        f"{settings['n']} items x {settings['dim']} ({settings['data']}); build: wrapper "
        f"{build['wrapper_s']:.1f} s, raw hnswlib {build['raw_hnswlib_s']:.1f} s; exact numpy "
        f"{exact['batch_queries_per_s']:.0f} q/s batched, {exact['single_queries_per_s']:.0f} q/s single"
    )
    # "vs raw": the wrapper's time over raw hnswlib's on the same graph, minus one; arrays =
    # query_arrays, rows = query / query_one, floor = a lock, the search and the id lookup only.
    table = Table(
        "ef", "recall@10", "batch q/s", "x exact", "vs raw: arrays", "rows",
        "single q/s", "x exact", "vs raw: arrays", "rows", "floor",
    )  # fmt: skip
    for row in report["by_ef"]:
        table.add_row(
            str(row["ef"]),
            f"{row['recall_at_10']:.4f}",
            f"{row['wrapper_batch_queries_per_s']:.0f}",
            f"{row['batch_speedup_over_exact']:.1f}",
            f"{row['arrays_batch_overhead']:+.1%}",
            f"{row['wrapper_batch_overhead']:+.1%}",
            f"{row['wrapper_single_queries_per_s']:.0f}",
            f"{row['single_speedup_over_exact']:.1f}",
            f"{row['arrays_single_overhead']:+.1%}",
            f"{row['wrapper_single_overhead']:+.1%}",
            f"{row['floor_single_overhead']:+.1%}",
        )
    console.print(table)
    console.print(f"goals: {report['goals']}")
