"""``xsell embed``, ``xsell finetune``, ``xsell bench encoder`` and ``xsell bench finetune``.

Thin shells over the ``encoders`` library: parse flags, show a progress bar on stderr,
print a summary, write ``--json OUT`` for machines, and turn any ``EncoderError`` (or a bad
setting) into a one-line usage error with exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stream.cli.base import app, bench_app, console, err_console
from stream.errors import UsageError

__all__ = ["bench_encoder_command", "bench_finetune_command", "embed_command", "finetune_command"]

SHARED_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
"""``../shared/data`` relative to the repository: the real datasets the benchmarks read."""

JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the result as JSON to this file.")]
ModelOption = Annotated[
    Path | None, typer.Option("--model", help="Model directory (default: the packaged all-MiniLM-L6-v2).")
]
DeviceOption = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda if present).")]
DataOption = Annotated[Path, typer.Option("--data", help="The shared datasets directory.")]


@contextmanager
def _as_usage_errors() -> Iterator[None]:
    """Library errors and bad settings become one-line usage errors (exit code 2)."""
    from encoders.errors import EncoderError

    try:
        yield
    except EncoderError as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from exc


def _progress(*extra: Any) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *extra, TimeElapsedColumn(),
        console=err_console, transient=True,
    )


def _write_json(path: Path | None, result: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=1, ensure_ascii=False, default=str)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--json {path}: cannot write ({exc.strerror})") from exc


def _data_dir(path: Path) -> Path:
    if not path.is_dir():
        raise UsageError(f"--data {path}: no such directory (the shared datasets)")
    return path


@app.command("embed")
def embed_command(
    catalog: Annotated[Path, typer.Option("--catalog", help="CSV (item_id,title,...) or JSON lines.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for vectors.npy, ids.json, manifest.json.")],
    model: ModelOption = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    device: DeviceOption = None,
    reuse: Annotated[bool, typer.Option(help="Reuse vectors of unchanged items from OUT.")] = True,
    json_out: JsonOption = None,
) -> None:
    """Embed a catalog: one L2-normalised vector per item, re-encoding only changed items."""
    from encoders import BertEncoder
    from encoders.catalog import embed_catalog, read_catalog

    with _as_usage_errors():
        items = read_catalog(catalog)
        encoder = BertEncoder(model, device=device)
        with _progress() as progress:
            task = progress.add_task("embedding", total=len(items))
            result = embed_catalog(
                items, out, encoder, batch_size=batch_size, reuse=reuse,
                on_batch=lambda count: progress.advance(task, count),
            )
    summary = {key: value for key, value in result.manifest.items() if key != "text_hashes"}
    summary["out"] = str(result.out_dir)
    console.print(
        f"embedded {result.count} items into {result.out_dir} "
        f"({result.encoded} encoded, {result.reused} reused; model {result.model_version})"
    )
    _write_json(json_out, summary)


@app.command("finetune")
def finetune_command(
    catalog: Annotated[Path, typer.Option("--catalog", help="CSV (item_id,title,...) or JSON lines.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the fine-tuned model.")],
    pairs: Annotated[Path | None, typer.Option("--pairs", help="CSV item_a,item_b.")] = None,
    events: Annotated[Path | None, typer.Option("--events", help="Events CSV user,item,kind,ts.")] = None,
    model: ModelOption = None,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    learning_rate: Annotated[float | None, typer.Option(help="Default 2e-5, or 5e-4 with --lora.")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps.")] = None,
    seed: int = 0,
    lora: Annotated[bool, typer.Option(help="Parameter-efficient LoRA (merged on save).")] = False,
    lora_rank: Annotated[int, typer.Option(min=1)] = 8,
    max_seq_length: Annotated[int, typer.Option(min=2, help="Truncation while training.")] = 64,
    device: DeviceOption = None,
    json_out: JsonOption = None,
) -> None:
    """Fine-tune the encoder contrastively on pairs of items that belong together."""
    from encoders.catalog import read_catalog
    from encoders.finetune import FinetuneConfig, finetune
    from encoders.pairs import mine_pairs, read_pairs

    if (pairs is None) == (events is None):
        raise UsageError("finetune: give exactly one of --pairs FILE or --events FILE")
    with _as_usage_errors():
        config = FinetuneConfig(
            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, max_steps=max_steps,
            seed=seed, lora=lora, lora_rank=lora_rank, max_seq_length=max_seq_length, device=device,
        )
        items = read_catalog(catalog)
        if pairs is not None:
            training_pairs = read_pairs(pairs)
        else:
            assert events is not None
            training_pairs = mine_pairs(events)
        source = {"catalog": str(catalog), "pairs_file": str(pairs) if pairs else None,
                  "events_file": str(events) if events else None}
        with _progress(TextColumn("loss {task.fields[loss]}")) as progress:
            task = progress.add_task("fine-tuning", total=None, loss="-")

            def on_step(step: int, total: int, loss: float) -> None:
                progress.update(task, completed=step, total=total, loss=f"{loss:.4f}")

            result = finetune(
                items.text_by_id(), training_pairs, out, base_model_dir=model, config=config,
                on_step=on_step, extra_manifest=source,
            )
    console.print(
        f"fine-tuned {result.steps} steps on {result.pairs} pairs in {result.seconds:.1f} s; "
        f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}; model saved to {result.out_dir}"
    )
    _write_json(json_out, {**result.manifest, "out": str(result.out_dir)})


def _phase_progress(progress: Progress) -> Any:
    tasks: dict[str, Any] = {}

    def report(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total)
        progress.update(tasks[phase], completed=done, total=total)

    return report


@bench_app.command("encoder")
def bench_encoder_command(
    items: Annotated[int, typer.Option(min=1, help="How many real product names to encode.")] = 2000,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Timed rounds; the best counts.")] = 3,
    model: ModelOption = None,
    device: DeviceOption = None,
    data: DataOption = SHARED_DATA_DIR,
    json_out: JsonOption = None,
) -> None:
    """Items/s of xsell's encoder vs sentence-transformers on the same texts, same run."""
    from encoders.benchmark import bench_encoder

    with _as_usage_errors(), _progress() as progress:
        result = bench_encoder(
            _data_dir(data), items=items, batch_size=batch_size, repeats=repeats, model_dir=model,
            device=device, progress=_phase_progress(progress),
        )
    console.print(
        f"encoder on {result['device']} ({result['precision']}, max_seq_length {result['max_seq_length']}, "
        f"batch {batch_size}, {result['items']} items): xsell {result['xsell_items_per_s']} items/s, "
        f"sentence-transformers {result['sentence_transformers_items_per_s']} items/s, "
        f"ratio {result['ratio']} (goal >= {result['goal_ratio']}); "
        f"min cosine {result['min_row_cosine_vs_sentence_transformers']:.6f}"
    )
    _write_json(json_out, result)


@bench_app.command("finetune")
def bench_finetune_command(
    steps: Annotated[int, typer.Option(min=1, help="Fine-tuning steps.")] = 300,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    users: Annotated[int, typer.Option(min=1, help="Users evaluated (a seeded sample).")] = 5000,
    learning_rate: Annotated[float | None, typer.Option(help="Default 1e-4, or 5e-4 with --lora.")] = None,
    lora: bool = False,
    seed: int = 0,
    model: ModelOption = None,
    device: DeviceOption = None,
    data: DataOption = SHARED_DATA_DIR,
    json_out: JsonOption = None,
) -> None:
    """Hit rate at 10 for each user's last item, base vs fine-tuned (Amazon Video Games)."""
    from encoders.benchmark import bench_finetune

    with _as_usage_errors(), _progress() as progress:
        result = bench_finetune(
            _data_dir(data), steps=steps, batch_size=batch_size, users=users, learning_rate=learning_rate,
            lora=lora, seed=seed, model_dir=model, device=device, progress=_phase_progress(progress),
        )
    k = result["k"]
    for mode, rates in result["query_modes"].items():
        console.print(
            f"hit rate at {k} ({mode} of earlier items, {result['users_evaluated']} users): "
            f"base {rates[f'base_hit_rate_at_{k}']}, fine-tuned {rates[f'finetuned_hit_rate_at_{k}']} "
            f"({result['steps']} steps x {batch_size} pairs), ratio {rates['ratio']} "
            f"(goal >= {result['goal_ratio']})"
        )
    _write_json(json_out, result)
