"""Benchmarks of the encoders on real data: speed against sentence-transformers, and the
value of fine-tuning. They measure and report (a dict, written as JSON by the CLI); they
never fail on speed or on a missed goal.

- ``bench_encoder``: items/s of ``BertEncoder.encode`` against sentence-transformers'
  ``encode`` on the same real product names (Instacart), same model directory, batch size,
  device, precision and sequence length, timed alternately in the same run (best of
  ``repeats``); the row-wise cosine between the two outputs is reported beside the speed so
  the speed is known to hold at settings where the results agree.
- ``bench_finetune``: hit rate at k of next-item prediction on the Amazon "Video Games"
  sequences, base model against the model fine-tuned on pairs mined from the users'
  earlier items only (consecutive items of each history; never a user's last item). A
  user's query is the normalised mean of the title embeddings of their earlier items; the
  ranking is over every catalog item by cosine, with the user's own earlier items excluded.
"""

from __future__ import annotations

import csv
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from encoders.bert import BertEncoder
from encoders.finetune import FinetuneConfig, finetune

__all__ = [
    "DEFAULT_ENCODER_ITEMS",
    "DEFAULT_FINETUNE_STEPS",
    "DEFAULT_FINETUNE_USERS",
    "bench_encoder",
    "bench_finetune",
    "hit_rate_at_k",
    "machine_info",
]

DEFAULT_ENCODER_ITEMS = 2000
DEFAULT_ENCODER_BATCH_SIZE = 64
DEFAULT_REPEATS = 3
DEFAULT_FINETUNE_STEPS = 300
DEFAULT_FINETUNE_BATCH_SIZE = 32
DEFAULT_FINETUNE_USERS = 5000
DEFAULT_FINETUNE_LEARNING_RATE = 1e-4
"""Full fine-tuning rate for the benchmark: 2e-5 barely moved the model in 150 CPU steps."""
DEFAULT_HIT_K = 10
ENCODER_GOAL_RATIO = 1.0
FINETUNE_GOAL_RATIO = 1.3
SCORING_CHUNK_USERS = 256
INSTACART_PRODUCTS = Path("instacart") / "products.csv"
GAMES_ITEMS = Path("amazon_videogames_unisrec") / "Games.item"
GAMES_SEQUENCES = Path("amazon_videogames_unisrec") / "Games.test.inter"

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: reports long phases to the CLI's progress bar."""


def machine_info() -> dict[str, Any]:
    """CPU count, memory, CPU model, accelerator, versions and the date (for the record)."""
    import torch

    cpu_model = ""
    memory_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": memory_gib,
        "cpu_model": cpu_model or platform.processor(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def instacart_product_names(data_dir: Path, count: int, seed: int = 0) -> list[str]:
    """A seeded random sample of real Instacart product names (stray backslashes removed)."""
    path = data_dir / INSTACART_PRODUCTS
    with path.open(encoding="utf-8", newline="") as handle:
        names = [row["product_name"].replace("\\", "") for row in csv.DictReader(handle)]
    random.Random(seed).shuffle(names)
    return names[:count]


def _timed(function: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def bench_encoder(
    data_dir: str | Path,
    *,
    items: int = DEFAULT_ENCODER_ITEMS,
    batch_size: int = DEFAULT_ENCODER_BATCH_SIZE,
    repeats: int = DEFAULT_REPEATS,
    model_dir: str | Path | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Items/s of this encoder and of sentence-transformers on the same texts, same run."""
    from sentence_transformers import SentenceTransformer

    texts = instacart_product_names(Path(data_dir), items)
    encoder = BertEncoder(model_dir, device=device)
    reference = SentenceTransformer(str(encoder.model_dir), device=encoder.device, local_files_only=True)
    reference.max_seq_length = encoder.max_seq_length
    if encoder.half:
        reference.half()
    warmup = texts[:batch_size]
    encoder.encode(warmup, batch_size=batch_size)
    reference.encode(warmup, batch_size=batch_size, normalize_embeddings=True)
    ours_seconds, reference_seconds = [], []
    ours = theirs = np.empty(0)
    for repeat in range(repeats):
        seconds, ours = _timed(lambda: encoder.encode(texts, batch_size=batch_size))
        ours_seconds.append(seconds)
        seconds, theirs = _timed(
            lambda: np.asarray(reference.encode(texts, batch_size=batch_size, normalize_embeddings=True))
        )
        reference_seconds.append(seconds)
        if progress is not None:
            progress("timing", repeat + 1, repeats)
    cosines = np.sum(ours * theirs.astype(np.float32), axis=1)
    ours_rate, reference_rate = len(texts) / min(ours_seconds), len(texts) / min(reference_seconds)
    return {
        "benchmark": "encoder",
        "data": str(INSTACART_PRODUCTS),
        "items": len(texts),
        "batch_size": batch_size,
        "repeats": repeats,
        "model": encoder.model_version,
        "device": encoder.device,
        "precision": "float16" if encoder.half else "float32",
        "max_seq_length": encoder.max_seq_length,
        "xsell_items_per_s": round(ours_rate, 1),
        "sentence_transformers_items_per_s": round(reference_rate, 1),
        "ratio": round(ours_rate / reference_rate, 3),
        "goal_ratio": ENCODER_GOAL_RATIO,
        "goal_reached": ours_rate / reference_rate >= ENCODER_GOAL_RATIO,
        "xsell_seconds": [round(value, 3) for value in ours_seconds],
        "sentence_transformers_seconds": [round(value, 3) for value in reference_seconds],
        "min_row_cosine_vs_sentence_transformers": float(cosines.min()),
        "machine": machine_info(),
    }


def read_games(data_dir: Path) -> tuple[dict[str, str], list[tuple[list[str], str]]]:
    """Item id → title, and per user (earlier items in order, last item)."""
    with (data_dir / GAMES_ITEMS).open(encoding="utf-8") as handle:
        next(handle)
        titles = dict(line.rstrip("\n").split("\t", 1) for line in handle if line.strip())
    sequences = []
    with (data_dir / GAMES_SEQUENCES).open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            _, history, last = line.rstrip("\n").split("\t")
            sequences.append((history.split(), last))
    return titles, sequences


def history_pairs(sequences: list[tuple[list[str], str]]) -> list[tuple[str, str]]:
    """Consecutive distinct items of each user's earlier items (the last item never appears)."""
    return [
        (first, second)
        for history, _ in sequences
        for first, second in zip(history, history[1:], strict=False)
        if first != second
    ]


QUERY_MODES = ("mean", "last")
"""How a user's earlier items become the query: their mean vector, or the latest one alone."""


def hit_rate_at_k(
    item_vectors: np.ndarray,
    item_index: dict[str, int],
    users: list[tuple[list[str], str]],
    k: int = DEFAULT_HIT_K,
    *,
    query: str = "mean",
) -> float:
    """Share of users whose last item is in the top k by cosine to the query of their history.

    ``query="mean"``: the normalised mean of the earlier items' vectors; ``query="last"``: the
    latest earlier item's vector. Either way all the user's earlier items are excluded.
    """
    if query not in QUERY_MODES:
        raise ValueError(f"query must be one of {', '.join(QUERY_MODES)}, got {query!r}")
    hits = 0
    for start in range(0, len(users), SCORING_CHUNK_USERS):
        chunk = users[start : start + SCORING_CHUNK_USERS]
        histories = [[item_index[i] for i in history] for history, _ in chunk]
        if query == "mean":
            queries = np.stack([item_vectors[rows].mean(axis=0) for rows in histories])
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        else:
            queries = item_vectors[[rows[-1] for rows in histories]]
        scores = queries @ item_vectors.T
        for row, rows in enumerate(histories):
            scores[row, rows] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        targets = np.array([item_index[last] for _, last in chunk])
        hits += int((top == targets[:, None]).any(axis=1).sum())
    return hits / len(users)


def _hit_rates(
    item_vectors: np.ndarray, item_index: dict[str, int], users: list[tuple[list[str], str]], k: int
) -> dict[str, float]:
    return {mode: hit_rate_at_k(item_vectors, item_index, users, k, query=mode) for mode in QUERY_MODES}


def bench_finetune(
    data_dir: str | Path,
    *,
    steps: int = DEFAULT_FINETUNE_STEPS,
    batch_size: int = DEFAULT_FINETUNE_BATCH_SIZE,
    users: int = DEFAULT_FINETUNE_USERS,
    learning_rate: float | None = None,
    lora: bool = False,
    seed: int = 0,
    k: int = DEFAULT_HIT_K,
    model_dir: str | Path | None = None,
    device: str | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Hit rate at k, base model vs fine-tuned on history pairs, on the same evaluation users."""
    titles, sequences = read_games(Path(data_dir))
    item_ids = list(titles)
    item_index = {item: row for row, item in enumerate(item_ids)}
    evaluated = random.Random(seed).sample(sequences, min(users, len(sequences)))
    pairs = history_pairs(sequences)

    def embed_all(encoder: BertEncoder, phase: str) -> np.ndarray:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(phase, done, len(item_ids))

        return encoder.encode([titles[i] for i in item_ids], batch_size=64, on_batch=advance)

    base = BertEncoder(model_dir, device=device)
    base_rates = _hit_rates(embed_all(base, "embedding (base)"), item_index, evaluated, k)
    if learning_rate is None and not lora:
        learning_rate = DEFAULT_FINETUNE_LEARNING_RATE
    config = FinetuneConfig(
        max_steps=steps, batch_size=batch_size, learning_rate=learning_rate, lora=lora, seed=seed,
        device=device,
    )
    with tempfile.TemporaryDirectory(prefix="xsell-finetune-") as scratch:
        target = Path(out_dir) if out_dir is not None else Path(scratch) / "model"
        result = finetune(
            titles, pairs, target, base_model_dir=base.model_dir, config=config,
            on_step=(lambda step, total, _loss: progress("fine-tuning", step, total)) if progress else None,
        )
        tuned = BertEncoder(target, device=device)
        tuned_rates = _hit_rates(embed_all(tuned, "embedding (fine-tuned)"), item_index, evaluated, k)
    ratios = {
        mode: round(tuned_rates[mode] / base_rates[mode], 3) if base_rates[mode] > 0 else None
        for mode in QUERY_MODES
    }
    return {
        "benchmark": "finetune",
        "data": str(GAMES_ITEMS.parent),
        "items": len(item_ids),
        "users_evaluated": len(evaluated),
        "training_pairs_available": len(pairs),
        "training_pairs_seen": result.steps * min(batch_size, len(pairs)),
        "steps": result.steps,
        "batch_size": batch_size,
        "learning_rate": config.effective_learning_rate,
        "lora": lora,
        "seed": seed,
        "k": k,
        "training_seconds": round(result.seconds, 1),
        "first_loss": result.losses[0],
        "last_loss": result.losses[-1],
        "query_modes": {
            mode: {
                f"base_hit_rate_at_{k}": round(base_rates[mode], 4),
                f"finetuned_hit_rate_at_{k}": round(tuned_rates[mode], 4),
                "ratio": ratios[mode],
            }
            for mode in QUERY_MODES
        },
        f"base_hit_rate_at_{k}": round(base_rates["mean"], 4),
        f"finetuned_hit_rate_at_{k}": round(tuned_rates["mean"], 4),
        "ratio": ratios["mean"],
        "goal_ratio": FINETUNE_GOAL_RATIO,
        "goal_reached": (ratios["mean"] or 0) >= FINETUNE_GOAL_RATIO,
        "model": base.model_version,
        "device": base.device,
        "machine": machine_info(),
    }
