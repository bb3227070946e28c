"""``xsell evaluate``: a good run writes the documented JSON; bad input is one line, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stream.cli import main

from .test_protocol import HAND_LOG


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture(autouse=True)
def _no_worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads the worker's ``XSELL_*`` variables; a tuning shell's must not leak in."""
    for name in [name for name in os.environ if name.startswith("XSELL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def hand_log(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text("user,item,kind,ts\n" + "".join(f"{u},{i},{k},{t}\n" for u, i, k, t in HAND_LOG))
    return path


def test_evaluate_writes_json_table_and_plot(
    hand_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plot = tmp_path / "out.json", tmp_path / "out.png"
    args = ["evaluate", "--events", str(hand_log), "--split", "0.6", "--k", "3", "--json", str(out)]
    code, stdout, _ = _run([*args, "--plot", str(plot)], capsys)
    assert code == 0
    summary = json.loads(out.read_text())
    assert set(summary) == {
        "events",
        "targets",
        "conversion_targets",
        "k",
        "split",
        "models",
        "part",
        "comparison",
        "settings",
    }
    assert summary["part"] == "test"
    assert summary["settings"]["rank_trending_weight"] == 0.2 and summary["settings"]["session_gap_s"] == 1800
    assert summary["comparison"]["model"] == "hybrid"
    assert summary["comparison"]["best_peer"] in {"bm25", "cosine", "als"}
    assert (summary["events"], summary["targets"], summary["conversion_targets"]) == (11, 3, 3)
    assert (summary["k"], summary["split"]) == (3, 0.6)
    assert set(summary["models"]) == {"popularity", "cooccurrence", "hybrid", "bm25", "cosine", "als"}
    for metrics in summary["models"].values():
        assert set(metrics) == {"hr@3", "ndcg@3", "mrr@3", "conversion_hr@3"}
    assert summary["models"]["popularity"]["hr@3"] == pytest.approx(2 / 3)  # worked out in test_protocol
    assert "popularity" in stdout and "hybrid" in stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "hybrid / best batch peer" in stdout


def test_validation_evaluates_the_warm_up_part_alone(
    hand_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    args = ["evaluate", "--events", str(hand_log), "--split", "0.6", "--k", "3", "--json", str(out), "--validation"]
    code, stdout, _ = _run(args, capsys)
    assert code == 0
    summary = json.loads(out.read_text())
    # the warm-up part is the 6 events before ts 50; split again at index floor(0.6 * 5) = 3 (ts 30):
    # u2's B at 30 is its only discovery target (u5's D repeats, u3 has no earlier event)
    assert (summary["part"], summary["events"], summary["targets"], summary["conversion_targets"]) == (
        "validation",
        6,
        1,
        0,
    )
    assert "validation" in stdout


@pytest.mark.parametrize(
    ("extra", "content", "expected"),
    [
        (["--format", "parquet"], None, "--format must be one of generic, taobao, retailrocket"),
        (["--split", "1.5"], None, "split must be between 0 and 1"),
        (["--k", "0"], None, "k must be at least 1"),
        (["--threads", "0"], None, "--threads must be at least 1"),
        ([], "user,item,kind\n1,2,click\n", "expected a header with user,item,kind,ts"),
        ([], "user,item,kind,ts\n1,2,like,10\n", "log.csv:2: kind must be click, cart or purchase"),
        ([], "user,item,kind,ts\n1,2,click,10\n", "need at least 2 events"),
        (["--format", "taobao"], "1,2,3,pv\n", "log.csv:1: not a UserBehavior row"),
        (["--format", "retailrocket"], "timestamp,visitorid,event,itemid\nx,1,view,2\n", "log.csv:2: bad timestamp"),
        (["--catalog", "missing.csv"], None, "--catalog: no such file"),
        (
            ["--validation", "--split", "0.5"],
            "user,item,kind,ts\n1,2,click,10\n1,3,click,20\n1,4,click,30\n",
            "--validation: the warm-up part holds 1 event; need at least 2",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    hand_log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    content: str | None,
    expected: str,
) -> None:
    if content is not None:
        hand_log.write_text(content)
    code, stdout, stderr = _run(
        ["evaluate", "--events", str(hand_log), "--json", str(tmp_path / "out.json"), *extra], capsys
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "out.json").exists()


def test_missing_events_file_and_missing_json_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = _run(["evaluate", "--events", str(tmp_path / "nope.csv"), "--json", "x.json"], capsys)
    assert code == 2 and stderr.strip() == f"error: --events: no such file: {tmp_path / 'nope.csv'}"
    code, _, stderr = _run(["evaluate", "--events", str(tmp_path / "nope.csv")], capsys)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "--json" in stderr


def test_a_bad_catalog_is_one_line(hand_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("item_id,name\nA,apples\n")
    code, _, stderr = _run(
        ["evaluate", "--events", str(hand_log), "--catalog", str(catalog), "--json", str(tmp_path / "o.json")], capsys
    )
    assert code == 2
    assert stderr.strip().splitlines() == [stderr.strip()] and "title" in stderr


def test_the_workers_ranking_variables_are_read_and_recorded(
    hand_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.json"
    args = ["evaluate", "--events", str(hand_log), "--split", "0.6", "--k", "3", "--json", str(out)]
    monkeypatch.setenv("XSELL_RANK_TRENDING_WEIGHT", "0.7")
    assert _run(args, capsys)[0] == 0
    assert json.loads(out.read_text())["settings"]["rank_trending_weight"] == 0.7
    out.unlink()
    monkeypatch.setenv("XSELL_RANK_TRENDING_WEIGHT", "-1")
    code, _, stderr = _run(args, capsys)
    assert code == 2
    assert stderr.strip().splitlines() == ["error: rank_trending_weight must be a finite number >= 0, got -1.0"]
    assert not out.exists()
