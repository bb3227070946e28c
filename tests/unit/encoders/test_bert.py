"""BertEncoder against sentence-transformers (the independent reference), and its contract."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from encoders import BertEncoder, ModelNotFoundError

LONG_TEXT = " ".join(f"word{i} product description with details" for i in range(200))


def varied_texts(shared_data: Path) -> list[str]:
    """64 texts: real product names, long ones past 256 tokens, empty, Unicode, duplicates."""
    import csv

    with (shared_data / "instacart" / "products.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:40]
    names = [row["product_name"].replace("\\", "") for row in rows]
    special = [
        "",
        " ",
        LONG_TEXT,
        "Stainless steel water bottle " * 60,
        "有机牛奶 全脂 1升",
        "抹茶チョコレート 12個入り",
        "Crème brûlée café au lait – édition spéciale",
        "Молоко пастеризованное 3,2%",
        "حليب طازج",
        "🍌 bananas 🍌",
        "a",
        "USB-C cable 2m (black) #2024!",
        names[0],
        names[1],
        names[0],
        "有机牛奶 全脂 1升",
        "",
        LONG_TEXT,
        "PlayStation 4 - Persona 5 - Standard Edition",
        "x" * 3000,
        "The quick brown fox",
        "the QUICK brown fox",
        "Organic Baby Spinach",
        "Κρέμα γάλακτος",
    ]
    texts = names + special
    assert len(texts) == 64
    return texts


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    return varied_texts(shared_data)


@pytest.fixture(scope="module")
def ours(encoder, texts) -> np.ndarray:
    """The encoder's vectors of ``texts`` at the default batch size."""
    return encoder.encode(texts)


@pytest.mark.slow
def test_matches_sentence_transformers_row_by_row(ours, encoder, reference_model, texts) -> None:
    reference = reference_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32
    assert ours.shape == (64, encoder.dimension) == reference.shape
    cosines = np.sum(ours * reference, axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert cosines.min() >= 0.999, f"worst row {int(cosines.argmin())}: {cosines.min()}"


def test_rows_are_unit_length_and_unnormalised_are_not(encoder, texts) -> None:
    normalised = encoder.encode(texts[:8])
    np.testing.assert_allclose(np.linalg.norm(normalised, axis=1), 1.0, atol=1e-5)
    raw = encoder.encode(texts[:8], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)


@pytest.mark.slow
def test_results_do_not_depend_on_batch_size(ours, encoder, texts) -> None:
    for batch_size in (1, 13):
        np.testing.assert_allclose(encoder.encode(texts, batch_size=batch_size), ours, atol=2e-5)


def test_order_is_preserved(ours, encoder, texts) -> None:
    forward = ours
    permutation = np.random.default_rng(0).permutation(len(texts))
    shuffled = encoder.encode([texts[i] for i in permutation], batch_size=16)
    np.testing.assert_allclose(shuffled, forward[permutation], atol=2e-5)
    # Each row is its own text's vector, as encoding it alone gives.
    for row in (0, 2, 44, 63):
        np.testing.assert_allclose(encoder.encode([texts[row]])[0], forward[row], atol=2e-5)
    # Duplicates get the same vector.
    np.testing.assert_allclose(forward[40], forward[56], atol=1e-6)


def test_empty_input_gives_zero_rows(encoder) -> None:
    assert encoder.encode([]).shape == (0, encoder.dimension)
    assert encoder.encode([]).dtype == np.float32


def test_defaults_come_from_the_model_directory(encoder) -> None:
    assert encoder.max_seq_length == 256  # sentence_bert_config.json, not the tokenizer's 512
    assert encoder.dimension == 384
    assert encoder.device == "cpu"
    assert encoder.model_version.startswith("all-MiniLM-L6-v2@")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_long_texts_are_truncated_at_max_seq_length(encoder) -> None:
    assert len(encoder.tokenize([LONG_TEXT])[0]) == 256
    # Past the limit nothing changes: the text and a longer version of it encode the same.
    np.testing.assert_allclose(
        encoder.encode([LONG_TEXT])[0], encoder.encode([LONG_TEXT + " more words"])[0], atol=1e-6
    )


def test_a_single_string_is_rejected(encoder) -> None:
    with pytest.raises(TypeError):
        encoder.encode("hello")


def test_missing_model_directory_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError) as caught:
        BertEncoder(missing)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)


def test_directory_without_model_files_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError) as caught:
        BertEncoder(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message and "model.safetensors" in message and "\n" not in message


def test_hub_like_name_is_never_looked_up() -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        BertEncoder("sentence-transformers/all-MiniLM-L6-v2")


def test_loading_draws_no_progress_bar_and_keeps_the_callers_setting(capfd: pytest.CaptureFixture[str]) -> None:
    """A worker logs stderr: transformers' "Loading weights" bar became two WARNING lines at
    every start."""
    from transformers.utils import logging as transformers_logging

    assert transformers_logging.is_progress_bar_enabled()
    BertEncoder()
    assert "Loading weights" not in capfd.readouterr().err
    assert transformers_logging.is_progress_bar_enabled(), "the caller's setting must come back"
