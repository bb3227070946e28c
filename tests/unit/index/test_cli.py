"""``xsell index build``, ``xsell index query`` and ``xsell bench index`` end to end.

Built from an embeddings directory in the format ``xsell embed`` writes; the neighbours in
the query output are checked against a brute-force recount.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index import clustered_vectors
from tests.unit.index.conftest import brute_force_neighbours

REPO_ROOT = Path(__file__).resolve().parents[3]
N, DIM, MODEL = 3_000, 32, "test-model@1"


@pytest.fixture
def embeddings_dir(tmp_path: Path) -> tuple[Path, np.ndarray, list[str]]:
    vectors = clustered_vectors(N + 20, DIM, seed=31)
    ids = [f"sku-{row}" for row in range(N)]
    folder = tmp_path / "embeddings"
    folder.mkdir()
    np.save(folder / "vectors.npy", vectors[:N])
    (folder / "ids.json").write_text(json.dumps(ids))
    (folder / "manifest.json").write_text(json.dumps({"model": MODEL, "dimension": DIM, "count": N}))
    np.save(tmp_path / "queries.npy", vectors[N:])
    return folder, vectors, ids


def test_build_then_query_matches_brute_force(xsell, embeddings_dir, tmp_path: Path) -> None:
    folder, vectors, ids = embeddings_dir
    built = xsell(
        "index", "build", "--vectors", str(folder), "--out", str(tmp_path / "idx"),
        "--m", "16", "--ef-construction", "100", "--json", str(tmp_path / "build.json"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    summary = json.loads((tmp_path / "build.json").read_text())
    assert (summary["count"], summary["dim"], summary["model_version"]) == (N, DIM, MODEL)

    answered = xsell(
        "index", "query", "--index", str(tmp_path / "idx"), "--vectors", str(tmp_path / "queries.npy"),
        "--k", "10", "--ef", "128", "--json", str(tmp_path / "hits.json"),
    )  # fmt: skip

    assert answered.returncode == 0, answered.stderr
    hits = json.loads((tmp_path / "hits.json").read_text())
    truth = brute_force_neighbours(vectors[:N], ids, vectors[N:], 10)
    assert len(hits["ids"]) == len(hits["scores"]) == 20
    found = sum(len(set(row) & set(expected)) for row, expected in zip(hits["ids"], truth, strict=True))
    assert found / 200 >= 0.95
    for row in hits["scores"]:
        assert row == sorted(row, reverse=True) and -1.0 <= row[-1] <= row[0] <= 1.0 + 1e-6


def test_query_refuses_another_model_and_bad_input(xsell, embeddings_dir, tmp_path: Path) -> None:
    folder, _, _ = embeddings_dir
    assert xsell("index", "build", "--vectors", str(folder), "--out", str(tmp_path / "idx")).returncode == 0
    np.save(tmp_path / "wrong.npy", np.ones((2, DIM + 1), dtype=np.float32))
    (tmp_path / "junk.npy").write_text("not numpy")
    cases = [
        (["--vectors", str(tmp_path / "queries.npy"), "--expected-model", "other@2"], "other@2"),
        (["--vectors", str(tmp_path / "wrong.npy")], "shape"),
        (["--vectors", str(tmp_path / "junk.npy")], "not a readable .npy"),
        (["--vectors", str(tmp_path / "queries.npy"), "--k", "0"], "--k must be"),
    ]
    for extra, message in cases:
        result = xsell("index", "query", "--index", str(tmp_path / "idx"), *extra)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    missing = xsell("index", "query", "--index", str(tmp_path / "none"), "--vectors", str(tmp_path / "queries.npy"))
    assert missing.returncode == 2 and "no snapshot" in missing.stderr


def test_build_refuses_a_missing_directory(xsell, tmp_path: Path) -> None:
    result = xsell("index", "build", "--vectors", str(tmp_path / "nope"), "--out", str(tmp_path / "idx"))
    assert result.returncode == 2
    assert "not a directory" in result.stderr


def test_query_prints_json_without_json_option(xsell, embeddings_dir, tmp_path: Path) -> None:
    folder, _, _ = embeddings_dir
    assert xsell("index", "build", "--vectors", str(folder), "--out", str(tmp_path / "idx")).returncode == 0
    result = xsell("index", "query", "--index", str(tmp_path / "idx"), "--vectors", str(tmp_path / "queries.npy"))
    assert result.returncode == 0
    assert len(json.loads(result.stdout)["ids"]) == 20


def test_bench_index_small_run_writes_json(xsell, tmp_path: Path) -> None:
    result = xsell(
        "bench", "index", "--n", "3000", "--dim", "16", "--queries", "50", "--ef-values", "16,64",
        "--repeats", "1", "--json", str(tmp_path / "bench.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [row["ef"] for row in report["by_ef"]] == [16, 64]
    assert {"raw_hnswlib_s", "wrapper_s"} <= set(report["build"])
    assert report["exact"]["batch_queries_per_s"] > 0
    assert 0.0 <= report["by_ef"][1]["recall_at_10"] <= 1.0
    bad = xsell("bench", "index", "--ef-values", "a,b")
    assert bad.returncode == 2 and "--ef-values" in bad.stderr
