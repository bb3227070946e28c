"""``xsell embed``, ``xsell finetune`` and ``xsell bench encoder`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoders import item_text
from stream.cli import main

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> int:
    """Run the CLI in this process (the model stays loaded) and return its exit code."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


def test_embed_writes_three_consistent_files(
    tmp_path: Path, instacart_catalog, reference_model, encoder
) -> None:
    catalog, rows = instacart_catalog
    out = tmp_path / "embeddings"
    report = tmp_path / "r.json"
    assert run_cli("embed", "--catalog", str(catalog), "--out", str(out), "--json", str(report)) == 0
    vectors = np.load(out / "vectors.npy")
    ids = json.loads((out / "ids.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert vectors.dtype == np.float32 and vectors.shape == (len(rows), 384)
    assert ids == [row["item_id"] for row in rows]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert manifest["count"] == len(rows) and manifest["dimension"] == 384
    assert manifest["model"] == encoder.model_version and manifest["text_recipe"] and manifest["created_at"]
    # Row i is item i: it matches sentence-transformers on item i's text.
    reference = reference_model.encode([item_text(row) for row in rows], normalize_embeddings=True)
    assert np.sum(vectors * reference, axis=1).min() >= 0.999
    assert json.loads((tmp_path / "r.json").read_text())["encoded"] == len(rows)


def test_embed_rerun_re_encodes_only_changed_items(tmp_path: Path, instacart_catalog) -> None:
    catalog, rows = instacart_catalog
    out = tmp_path / "embeddings"
    assert run_cli("embed", "--catalog", str(catalog), "--out", str(out)) == 0
    first = np.load(out / "vectors.npy")
    text = catalog.read_text(encoding="utf-8").replace(rows[5]["title"], "Completely Different Product", 1)
    catalog.write_text(text, encoding="utf-8")
    assert run_cli("embed", "--catalog", str(catalog), "--out", str(out)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["encoded"], manifest["reused"]) == (1, len(rows) - 1)
    second = np.load(out / "vectors.npy")
    changed = np.flatnonzero(~np.isclose(first, second, atol=1e-6).all(axis=1))
    assert changed.tolist() == [5]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,title\n1,Milk\n", "lacks item_id"),
        ("item_id,title\n1,Milk\n2,Bread\n1,Eggs\n", "duplicate item_id '1'"),
        ("", "empty"),
    ],
)
def test_bad_catalogs_exit_2_with_one_line(xsell, tmp_path: Path, content: str, message: str) -> None:
    catalog = tmp_path / "bad.csv"
    catalog.write_text(content, encoding="utf-8")
    done = xsell("embed", "--catalog", str(catalog), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(catalog) in lines[0]
    assert not (tmp_path / "out").exists()


def test_missing_model_directory_exits_2(xsell, tmp_path: Path, instacart_catalog) -> None:
    catalog, _ = instacart_catalog
    done = xsell(
        "embed", "--catalog", str(catalog), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "nomodel")
    )
    assert done.returncode == 2
    expected = f"error: model directory {tmp_path / 'nomodel'} does not exist"
    assert done.stderr.strip().splitlines() == [expected]


def test_finetune_needs_exactly_one_pair_source(tmp_path: Path, instacart_catalog) -> None:
    catalog, _ = instacart_catalog
    assert run_cli("finetune", "--catalog", str(catalog), "--out", str(tmp_path / "m")) == 2
    both = ("--pairs", str(tmp_path / "p.csv"), "--events", str(tmp_path / "e.csv"))
    assert run_cli("finetune", "--catalog", str(catalog), "--out", str(tmp_path / "m"), *both) == 2


def test_finetune_from_events_saves_a_loadable_model(tmp_path: Path, instacart_catalog) -> None:
    catalog, rows = instacart_catalog
    events = tmp_path / "events.csv"
    lines = ["user,item,kind,ts"]
    for user in range(8):  # each user buys four catalog items in one session
        for offset in range(4):
            lines.append(f"u{user},{rows[user * 4 + offset]['item_id']},purchase,{offset * 60}")
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "tuned"
    code = run_cli(
        "finetune", "--catalog", str(catalog), "--events", str(events), "--out", str(out),
        "--max-steps", "2", "--batch-size", "8", "--json", str(tmp_path / "r.json"),
    )
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["steps"] == 2 and report["pairs"] == 8 * 6 and report["events_file"] == str(events)
    embedded = tmp_path / "embedded"
    assert run_cli("embed", "--catalog", str(catalog), "--out", str(embedded), "--model", str(out)) == 0
    assert json.loads((embedded / "manifest.json").read_text())["model"].startswith("tuned@")


def test_bench_encoder_reports_both_rates(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "bench.json"
    code = run_cli(
        "bench", "encoder", "--items", "64", "--repeats", "1", "--data", str(shared_data), "--json", str(out)
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["items"] == 64 and result["xsell_items_per_s"] > 0
    assert result["sentence_transformers_items_per_s"] > 0
    assert result["min_row_cosine_vs_sentence_transformers"] >= 0.999
