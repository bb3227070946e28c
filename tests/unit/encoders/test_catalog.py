"""Reading catalogs, and embedding them with content-hash reuse (encoder injected)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from encoders import CatalogError, item_text
from encoders.catalog import embed_catalog, load_embeddings, read_catalog


class RecordingEncoder:
    """A deterministic stand-in encoder that records which texts it was asked to encode."""

    dimension = 8
    max_seq_length = 16
    model_version = "recording@0"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, normalize: bool = True,
        show_progress: bool = False, on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        self.seen.extend(texts)
        vectors = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts])
        if on_batch is not None:
            on_batch(len(texts))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_csv_and_json_lines_give_the_same_ids_and_texts(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("item_id,title,brand\n10,Milk,Acme\n7,Bread,\n", encoding="utf-8")
    lines = [{"item_id": 10, "title": "Milk", "brand": "Acme"}, {"item_id": 7, "title": "Bread"}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    from_csv, from_json = read_catalog(tmp_path / "c.csv"), read_catalog(tmp_path / "c.jsonl")
    assert from_csv.ids == from_json.ids == ["10", "7"]
    assert from_csv.texts == from_json.texts == ["Milk. Brand: Acme", "Bread"]


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("", ".csv", "empty"),
        ("\n\n", ".csv", "empty"),
        ("id,title\n1,Milk\n", ".csv", "lacks item_id"),
        ("item_id,name\n1,Milk\n", ".csv", "lacks title"),
        ("item_id,title\n1,Milk\n2,Bread\n1,Eggs\n", ".csv", "duplicate item_id '1'"),
        ("item_id,title\n1,\n", ".csv", "no title"),
        ("item_id,title\n", ".csv", "no items"),
        ('{"item_id": 1, "title": "a"}\n{"item_id": 1, "title": "b"}\n', ".jsonl", "duplicate item_id '1'"),
        ('{"item_id": 1, "title": "a"}\nnot json\n', ".jsonl", ":2: not valid JSON"),
        ('{"title": "a"}\n', ".jsonl", "no item_id"),
    ],
)
def test_bad_catalogs_are_one_line_errors(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"catalog{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        read_catalog(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such catalog"):
        read_catalog(tmp_path / "nope.csv")


def test_embedding_writes_consistent_files(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("item_id,title\na,Milk\nb,Bread\nc,Eggs\n", encoding="utf-8")
    encoder = RecordingEncoder()
    result = embed_catalog(tmp_path / "c.csv", tmp_path / "out", encoder)
    vectors, ids, manifest = load_embeddings(tmp_path / "out")
    assert ids == ["a", "b", "c"] and vectors.shape == (3, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, RecordingEncoder().encode(["Milk", "Bread", "Eggs"]))
    assert manifest["count"] == 3 and manifest["dimension"] == 8 and manifest["model"] == "recording@0"
    assert result.encoded == 3 and result.reused == 0


def test_rerun_re_encodes_only_changed_items(tmp_path: Path) -> None:
    rows = [{"item_id": str(i), "title": f"Product {i}"} for i in range(50)]
    catalog = tmp_path / "c.jsonl"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    embed_catalog(catalog, tmp_path / "out", RecordingEncoder())
    rows[3]["title"] = "Product 3, new and improved"
    rows[40]["brand"] = "Acme"
    rows.append({"item_id": "new", "title": "Brand-new product"})
    del rows[10]
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    encoder = RecordingEncoder()
    result = embed_catalog(catalog, tmp_path / "out", encoder)
    expected_changed = [item_text(rows[3]), item_text(rows[39]), "Brand-new product"]
    assert sorted(encoder.seen) == sorted(expected_changed)
    assert result.encoded == 3 and result.reused == 47
    vectors, ids, _ = load_embeddings(tmp_path / "out")
    assert ids == [row["item_id"] for row in rows]
    np.testing.assert_allclose(vectors, RecordingEncoder().encode([item_text(row) for row in rows]))


def test_a_different_model_version_re_encodes_everything(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("item_id,title\na,Milk\nb,Bread\n", encoding="utf-8")
    embed_catalog(tmp_path / "c.csv", tmp_path / "out", RecordingEncoder())
    other = RecordingEncoder()
    other.model_version = "recording@1"
    assert embed_catalog(tmp_path / "c.csv", tmp_path / "out", other).encoded == 2
