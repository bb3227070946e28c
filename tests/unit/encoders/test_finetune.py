"""Fine-tuning on real co-purchase pairs (Instacart orders) lowers held-out contrastive loss."""

from __future__ import annotations

import csv
import itertools
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from encoders import BertEncoder, TrainingDataError, default_model_dir
from encoders.finetune import FINETUNE_MANIFEST, FinetuneConfig, contrastive_loss, finetune, pair_loss

ITEMS_PER_ORDER = 6


@pytest.fixture(scope="module")
def instacart_pairs(shared_data: Path) -> tuple[dict[str, str], list[tuple[str, str]], list[tuple[str, str]]]:
    """Product names, and disjoint train / held-out pairs of products bought in one order."""
    base = shared_data / "instacart"
    with (base / "products.csv").open(encoding="utf-8", newline="") as handle:
        names = {row["product_id"]: row["product_name"].replace("\\", "") for row in csv.DictReader(handle)}
    orders: dict[str, list[str]] = defaultdict(list)
    with (base / "order_products__prior_head10000.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            orders[row["order_id"]].append(row["product_id"])
    pairs = sorted(
        {pair for items in orders.values() for pair in itertools.combinations(items[:ITEMS_PER_ORDER], 2)}
    )
    random.Random(0).shuffle(pairs)
    return names, pairs[:400], pairs[-96:]


def test_contrastive_loss_matches_a_brute_force_recount() -> None:
    import torch

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    ids_a, ids_b = ["p", "q", "r", "s"], ["x", "y", "x", "z"]  # rows 0 and 2 share their positive
    loss = float(contrastive_loss(torch.tensor(a), torch.tensor(b), ids_a, ids_b, 20.0))

    def cross_entropy(logits: np.ndarray, keep: list[list[bool]]) -> float:
        total = 0.0
        for row in range(4):
            kept = [logits[row, col] for col in range(4) if keep[row][col]]
            total += -logits[row, row] + np.log(np.sum(np.exp(kept)))
        return total / 4

    logits = 20.0 * a @ b.T
    keep_forward = [[col == row or ids_b[col] != ids_b[row] for col in range(4)] for row in range(4)]
    keep_backward = [[col == row or ids_a[col] != ids_a[row] for col in range(4)] for row in range(4)]
    expected = (cross_entropy(logits, keep_forward) + cross_entropy(logits.T, keep_backward)) / 2
    assert loss == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_a_few_steps_lower_held_out_loss_and_the_model_loads(
    tmp_path: Path, instacart_pairs, encoder
) -> None:
    names, train, held_out = instacart_pairs
    before = pair_loss(default_model_dir(), names, held_out)
    steps: list[tuple[int, int, float]] = []
    result = finetune(
        names, train, tmp_path / "tuned",
        config=FinetuneConfig(max_steps=10, batch_size=16, learning_rate=5e-5, seed=0),
        on_step=lambda step, total, loss: steps.append((step, total, loss)),
    )
    after = pair_loss(tmp_path / "tuned", names, held_out)
    assert after < before, f"held-out loss did not drop: {before:.4f} -> {after:.4f}"
    assert result.steps == 10 and [s for s, _, _ in steps] == list(range(1, 11))
    manifest = json.loads((tmp_path / "tuned" / FINETUNE_MANIFEST).read_text())
    assert manifest["steps"] == 10 and manifest["config"]["batch_size"] == 16 and manifest["pairs"] == 400
    tuned = BertEncoder(tmp_path / "tuned")
    assert tuned.max_seq_length == encoder.max_seq_length == 256  # the base's sentence-transformers config
    assert tuned.model_version != encoder.model_version and tuned.model_version.startswith("tuned@")
    vectors = tuned.encode(["Organic Bananas", "Whole Milk", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors, encoder.encode(["Organic Bananas", "Whole Milk", ""]), atol=1e-3)


@pytest.mark.slow
def test_lora_mode_saves_a_merged_model(tmp_path: Path, instacart_pairs, encoder) -> None:
    from safetensors import safe_open

    names, train, _ = instacart_pairs
    finetune(names, train, tmp_path / "lora", config=FinetuneConfig(max_steps=3, batch_size=8, lora=True))
    with safe_open(str(tmp_path / "lora" / "model.safetensors"), framework="np") as weights:
        keys = list(weights.keys())
    assert keys and not any("lora" in key for key in keys)
    tuned = BertEncoder(tmp_path / "lora")
    assert tuned.encode(["Organic Bananas"]).shape == (1, 384)
    assert json.loads((tmp_path / "lora" / FINETUNE_MANIFEST).read_text())["config"]["lora"] is True


def test_unusable_pairs_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="usable pairs"):
        finetune({"1": "Milk"}, [("1", "2"), ("1", "1")], tmp_path / "out")


def test_refuses_to_overwrite_an_unrelated_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(TrainingDataError, match="not writing"):
        finetune({"1": "Milk", "2": "Bread", "3": "Eggs"}, [("1", "2"), ("2", "3")], tmp_path)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size=1"):
        FinetuneConfig(batch_size=1)
