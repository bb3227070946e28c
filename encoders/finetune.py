"""Contrastive fine-tuning of the encoder on pairs of items that belong together.

Pre-train → fine-tune: the pre-trained sentence encoder learns the shop's own notion of
"goes together" from behaviour pairs (bought or carted together, viewed one after the
other). The loss is the in-batch-negatives contrastive loss (InfoNCE, as sentence-
transformers' MultipleNegativesRankingLoss): for a batch of pairs ``(a_i, b_i)``, the cosine
similarities ``a_i · b_j`` scaled by ``scale`` are logits and ``b_i`` is the right answer for
``a_i``; the loss is symmetric (``a → b`` and ``b → a`` averaged). An in-batch "negative"
that is the same item as the positive is masked out, so popular items do not push
themselves away.

The result is a model directory the encoder loads like any other: weights and tokenizer,
the sentence-transformers configuration of the base model (same pooling, same sequence
length), and ``xsell_finetune.json``, a manifest of how it was trained. In LoRA mode
(parameter-efficient, through ``peft``) only low-rank adapters on the attention projections
are trained; they are merged into the weights before saving.

CPU cost is real (a step of 64 short pairs takes about a second or more on two cores), so
training is bounded by steps: ``max_steps`` caps whatever ``epochs`` would give.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from encoders.bert import default_model_dir, mean_pool, set_offline_defaults, validate_model_dir
from encoders.errors import TrainingDataError

__all__ = [
    "FINETUNE_MANIFEST",
    "FinetuneConfig",
    "FinetuneResult",
    "finetune",
    "pair_loss",
    "usable_pairs",
]

FINETUNE_MANIFEST = "xsell_finetune.json"
DEFAULT_EPOCHS = 1
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 2e-5
DEFAULT_LORA_LEARNING_RATE = 5e-4
DEFAULT_SEED = 0
DEFAULT_SCALE = 20.0
DEFAULT_TRAIN_MAX_SEQ_LENGTH = 64
DEFAULT_WARMUP_FRACTION = 0.1
DEFAULT_WEIGHT_DECAY = 0.01
DEFAULT_LORA_RANK = 8
DEFAULT_LORA_ALPHA = 16
DEFAULT_LORA_DROPOUT = 0.1
LORA_TARGET_MODULES = ("query", "key", "value")
SENTENCE_TRANSFORMERS_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """How to fine-tune. ``learning_rate=None`` picks the default of the mode (full or LoRA)."""

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float | None = None
    max_steps: int | None = None
    seed: int = DEFAULT_SEED
    scale: float = DEFAULT_SCALE
    max_seq_length: int = DEFAULT_TRAIN_MAX_SEQ_LENGTH
    warmup_fraction: float = DEFAULT_WARMUP_FRACTION
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    lora: bool = False
    lora_rank: int = DEFAULT_LORA_RANK
    lora_alpha: int = DEFAULT_LORA_ALPHA
    lora_dropout: float = DEFAULT_LORA_DROPOUT
    device: str | None = None

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "learning_rate": self.learning_rate is None or self.learning_rate > 0,
            "max_seq_length": self.max_seq_length >= 2,
            "lora_rank": self.lora_rank >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"invalid fine-tuning settings: {values} (batch_size >= 2, others >= 1)")

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LORA_LEARNING_RATE if self.lora else DEFAULT_LEARNING_RATE


@dataclass(frozen=True, kw_only=True)
class FinetuneResult:
    """Where the model went, how many steps ran, and the loss along the way."""

    out_dir: Path
    steps: int
    pairs: int
    losses: list[float]
    seconds: float
    manifest: dict[str, Any]


def usable_pairs(
    pairs: Sequence[tuple[str, str]], item_texts: Mapping[str, str]
) -> tuple[list[tuple[str, str]], int]:
    """Pairs whose two items are in the catalog and differ, and how many were dropped."""
    kept = [(a, b) for a, b in pairs if a != b and a in item_texts and b in item_texts]
    return kept, len(pairs) - len(kept)


def _pick_device(requested: str | None) -> str:
    import torch

    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def _load(model_dir: Path, device: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(device)
    return tokenizer, model


def _embed(model: Any, tokenizer: Any, texts: list[str], max_seq_length: int, device: str) -> Any:
    import torch

    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_seq_length, return_tensors="pt")
    batch = {key: value.to(device) for key, value in batch.items()}
    hidden = model(**batch).last_hidden_state
    return torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), p=2, dim=1)


def contrastive_loss(
    vectors_a: Any, vectors_b: Any, ids_a: Sequence[str], ids_b: Sequence[str], scale: float
) -> Any:
    """Symmetric in-batch-negatives loss; same-item negatives are masked out."""
    import torch

    logits = vectors_a @ vectors_b.T * scale
    size = logits.shape[0]
    eye = torch.eye(size, dtype=torch.bool, device=logits.device)
    codes = {item: code for code, item in enumerate(dict.fromkeys([*ids_a, *ids_b]))}
    a = torch.tensor([codes[item] for item in ids_a], device=logits.device)
    b = torch.tensor([codes[item] for item in ids_b], device=logits.device)
    # Column j is a false negative for row i when b_j is the same item as b_i (and rows alike).
    mask_rows = (b[None, :] == b[:, None]) & ~eye
    mask_columns = (a[None, :] == a[:, None]) & ~eye
    target = torch.arange(size, device=logits.device)
    forward = torch.nn.functional.cross_entropy(logits.masked_fill(mask_rows, float("-inf")), target)
    backward = torch.nn.functional.cross_entropy(logits.T.masked_fill(mask_columns, float("-inf")), target)
    return (forward + backward) / 2


def _batch_loss(
    model: Any,
    tokenizer: Any,
    item_texts: Mapping[str, str],
    batch: Sequence[tuple[str, str]],
    max_seq_length: int,
    scale: float,
    device: str,
) -> Any:
    ids_a, ids_b = [a for a, _ in batch], [b for _, b in batch]
    vectors_a = _embed(model, tokenizer, [item_texts[i] for i in ids_a], max_seq_length, device)
    vectors_b = _embed(model, tokenizer, [item_texts[i] for i in ids_b], max_seq_length, device)
    return contrastive_loss(vectors_a, vectors_b, ids_a, ids_b, scale)


def pair_loss(
    model_dir: str | Path,
    item_texts: Mapping[str, str],
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_seq_length: int = DEFAULT_TRAIN_MAX_SEQ_LENGTH,
    scale: float = DEFAULT_SCALE,
    device: str | None = None,
) -> float:
    """Mean contrastive loss of a model on pairs, batched in the given order (no training)."""
    import torch

    set_offline_defaults()
    device = _pick_device(device)
    tokenizer, model = _load(validate_model_dir(model_dir), device)
    model.eval()
    pairs, _ = usable_pairs(pairs, item_texts)
    total, weight = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(pairs) - 1, batch_size):
            batch = pairs[start : start + batch_size]
            if len(batch) < 2:
                break
            loss = _batch_loss(model, tokenizer, item_texts, batch, max_seq_length, scale, device)
            total += float(loss) * len(batch)
            weight += len(batch)
    if weight == 0:
        raise TrainingDataError("pair_loss needs at least two usable pairs")
    return total / weight


def _prepare_output(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise TrainingDataError(f"{out_dir}: the output path exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / FINETUNE_MANIFEST).is_file():
            raise TrainingDataError(f"{out_dir}: not empty and not a fine-tuned model directory; not writing")
    out_dir.mkdir(parents=True, exist_ok=True)


def _copy_sentence_transformers_config(base_dir: Path, out_dir: Path) -> None:
    for name in SENTENCE_TRANSFORMERS_FILES:
        source = base_dir / name
        if source.is_file():
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out_dir / name)


def finetune(
    item_texts: Mapping[str, str],
    pairs: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    base_model_dir: str | Path | None = None,
    config: FinetuneConfig | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
) -> FinetuneResult:
    """Fine-tune ``base_model_dir`` (default: the packaged MiniLM) on ``pairs``; save to ``out_dir``.

    ``item_texts`` maps item id → text (``Catalog.text_by_id()``); pairs whose items are not
    in it are dropped. ``on_step(step, total_steps, loss)`` is called after every step.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    config = config or FinetuneConfig()
    set_offline_defaults()
    base = validate_model_dir(default_model_dir() if base_model_dir is None else base_model_dir)
    out_dir = Path(out_dir)
    kept, dropped = usable_pairs(pairs, item_texts)
    if len(kept) < 2:
        raise TrainingDataError(
            f"only {len(kept)} usable pairs ({dropped} dropped: unknown items or an item with itself); need 2"
        )
    _prepare_output(out_dir)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = _pick_device(config.device)
    tokenizer, model = _load(base, device)
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=list(LORA_TARGET_MODULES), bias="none",
        )
        model = get_peft_model(model, lora)
    model.train()
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=config.effective_learning_rate, weight_decay=config.weight_decay
    )
    batch = min(config.batch_size, len(kept))
    steps_per_epoch = len(kept) // batch
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_fraction * total_steps), total_steps
    )
    shuffler = random.Random(config.seed)
    losses: list[float] = []
    started = time.perf_counter()
    step = 0
    while step < total_steps:
        order = list(kept)
        shuffler.shuffle(order)
        for start in range(0, steps_per_epoch * batch, batch):
            if step >= total_steps:
                break
            chunk = order[start : start + batch]
            loss = _batch_loss(
                model, tokenizer, item_texts, chunk, config.max_seq_length, config.scale, device
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, total_steps, losses[-1])
    seconds = time.perf_counter() - started
    if config.lora:
        model = model.merge_and_unload()
    model.eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    _copy_sentence_transformers_config(base, out_dir)
    manifest = {
        "base_model_dir": str(base),
        "pairs": len(kept),
        "pairs_dropped": dropped,
        "steps": step,
        "device": device,
        "seconds": round(seconds, 3),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {**asdict(config), "learning_rate": config.effective_learning_rate},
        **dict(extra_manifest or {}),
    }
    (out_dir / FINETUNE_MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return FinetuneResult(
        out_dir=out_dir, steps=step, pairs=len(kept), losses=losses, seconds=seconds, manifest=manifest
    )
