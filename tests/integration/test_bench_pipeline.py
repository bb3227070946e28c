"""``xsell bench pipeline``: a tiny run against the session's broker, and its usage errors.

The smoke run checks that every phase reports, that every event was answered, and that
the counts in the report match a recount of the Taobao file written here; it never looks
at speed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from stream.localkafka import LocalKafka

EVENTS = 2_000
ITEMS = 2_000
LATENCY_SECONDS = 2.0
RATE = 500.0


def _users_in_first(path: Path, count: int) -> int:
    """Distinct users among the first ``count`` events in time order (stable), recounted from the CSV."""
    with open(path, newline="") as handle:
        rows = [(int(row[4]), line, row[0]) for line, row in enumerate(csv.reader(handle))]
    rows.sort(key=lambda row: (row[0], row[1]))
    return len({user for _, _, user in rows[:count]})


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("split_roles", [False, True], ids=["one-worker", "split-roles"])
def test_smoke_run_reports_every_phase(
    xsell, kafka_broker: LocalKafka, shared_data: Path, tmp_path: Path, split_roles: bool
) -> None:
    out = tmp_path / "pipeline.json"
    result = xsell(
        "bench", "pipeline", "--events", str(EVENTS), "--items", str(ITEMS), "--rate", str(RATE),
        "--latency-seconds", str(LATENCY_SECONDS), "--broker", kafka_broker.bootstrap,
        "--data", str(shared_data), "--work-dir", str(tmp_path / "work"), "--store", "memory",
        "--json", str(out), *(["--split-roles"] if split_roles else []),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "xsell bench pipeline" in result.stdout

    assert report["client_ceiling"]["events"] == EVENTS
    assert report["client_ceiling"]["events_per_s"] > 0
    run = report["runs"]["at_least_once"]
    assert run["framework_ceiling"]["outputs"] == EVENTS
    assert run["framework_ceiling"]["events_per_s"] > 0

    assert run["worker_processes"] == (2 if split_roles else 1)
    assert len(run["worker_logs"]) == run["worker_processes"]
    # The logs stay; the workers' tables and index copies (hundreds of MB a run) do not.
    assert all(Path(log).is_file() for log in run["worker_logs"]), run["worker_logs"]
    assert [path.name for path in Path(report["run_dir"]).iterdir() if path.is_dir()] == []
    xsell = run["xsell"]
    # Nothing silently dropped: every event answered or dead-lettered (with a reason).
    assert xsell["answered"] + sum(xsell["dead_letters"].values()) >= EVENTS, xsell
    assert xsell["answered"] + xsell["unanswered"] == EVENTS
    assert xsell["events_per_s"] > 0
    assert xsell["pairs_counted_after_last_answer_s"] >= 0  # the run waited for the counts to catch up
    assert run["ratios"]["xsell_over_framework"] == pytest.approx(
        xsell["events_per_s"] / run["framework_ceiling"]["events_per_s"]
    )
    # CPU per event: the workers' own CPU time (/proc), which their startup must not inflate.
    for measured in (xsell, run["framework_ceiling"]):
        assert 0 < measured["cpu_seconds"] < measured["events"] * 0.05, measured  # < 50 ms per event
        assert measured["events_per_cpu_s"] > 0
    assert run["ratios"]["xsell_over_framework_per_cpu_s"] == pytest.approx(
        xsell["events_per_cpu_s"] / run["framework_ceiling"]["events_per_cpu_s"]
    )

    latency = run["latency"]
    offered = int(RATE * LATENCY_SECONDS)
    assert latency["events"] == offered
    assert 0 < latency["answered"] <= offered, latency
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    # The naive agent's latency phase: every offered event forwarded, none of them counted in
    # its events/s (its outputs were read before; xsell's topics never see these events).
    naive = run["framework_ceiling"]["latency"]
    assert naive["events"] == offered and naive["answered"] == offered, naive
    assert 0 < naive["p50_ms"] <= naive["p99_ms"] <= naive["max_ms"]
    # Each phase's CPU: every worker of the run named (xsell's roles, the naive agent), busy for
    # part of a phase that lasted at least the offered seconds.
    assert set(latency["busy"]) == {Path(log).stem for log in run["worker_logs"]}, latency
    assert len(naive["busy"]) == 1, naive
    for phase in (latency, naive):
        assert phase["seconds"] >= LATENCY_SECONDS * 0.9, phase
        assert all(0 <= busy for busy in phase["busy"].values()) and sum(phase["busy"].values()) > 0, phase
        assert phase["cpu_ms_per_event"] == pytest.approx(
            1000 * phase["seconds"] * sum(phase["busy"].values()) / offered
        )

    memory = run["memory"]
    taobao = shared_data / "taobao_userbehavior" / "UserBehavior_head84475.csv"
    # Users with state: at most those with an event in the run (a user whose every event was
    # dead-lettered or not yet processed has none).
    assert 0 < memory["users"] <= _users_in_first(taobao, EVENTS + offered)
    assert 0 < memory["items_with_counts"] <= ITEMS
    assert memory["user_state_serialised_bytes_mean"] > 0
    assert memory["rss_end_bytes"] > 0
    assert set(run["goals"]) == {"throughput_vs_framework", "p99_latency"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--events", "0"], "--events"),
        (["--data", "/nonexistent/shared/data"], "taobao_userbehavior"),
        (["--guarantee", "twice"], "--guarantee"),
        (["--store", "paper"], "--store"),
        (["--worker-setting", "XSELL_BATCH_SIZE"], "XSELL_NAME=VALUE"),
        (["--worker-setting", "BATCH_SIZE=9"], "--worker-setting"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(xsell, args: list[str], expected: str) -> None:
    result = xsell("bench", "pipeline", *args, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
