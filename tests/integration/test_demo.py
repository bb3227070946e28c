"""``xsell demo`` end to end in a subprocess, plus quick checks of its generated data.

The end-to-end tests run the real thing (its own broker on a free port, a real worker)
on a fresh data directory, and check from the outside: the exit code, the JSON summary,
the planted pairs recounted here from the raw partners the summary reports, and that the
PIDs the demo recorded are gone from /proc (or zombies) afterwards.

The quick checks (no broker) pin the generated data: determinism for a seed, event-time
order, and that the planted pairs are really in the simulated orders (a brute-force count).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from io import StringIO
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from stream.demo.catalog import generate_catalog
from stream.demo.display import DemoDisplay, LiveState
from stream.demo.scoring import score_planted
from stream.demo.simulator import SimulatorConfig, simulate

DEMO_TIMEOUT_S = 420
CATALOG_SIZE = "300"  # a few hundred products: BERT encodes them in seconds on two shared cores


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent from /proc, or a zombie awaiting its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}


def _demo(data_dir: Path, json_out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("XSELL_") or key == "XSELL_KAFKA_LIBS"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "stream", "demo", "--data-dir", str(data_dir), "--json", str(json_out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _assert_nothing_left(data_dir: Path, summary: dict) -> None:
    recorded = orjson.loads((data_dir / "demo-pids.json").read_bytes())
    assert set(recorded) == {"broker", "worker"}, recorded
    assert summary["pids"] == recorded
    deadline = time.monotonic() + 5  # the kernel may take a moment to release a killed JVM
    while not all(_gone(pid) for pid in recorded.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {role: pid for role, pid in recorded.items() if not _gone(pid)}
    assert not left, f"still running after the demo exited: {left}"


@pytest.mark.integration
@pytest.mark.slow
def test_demo_for_30_seconds_publishes_and_recovers_the_planted_pairs(tmp_path: Path) -> None:
    data_dir, json_out = tmp_path / "demo", tmp_path / "summary.json"
    process = _demo(data_dir, json_out, "--duration", "30", "--catalog-size", CATALOG_SIZE, "--seed", "7")
    try:
        output, _ = process.communicate(timeout=DEMO_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)
    assert process.returncode == 0, output[-3000:]
    summary = orjson.loads(json_out.read_bytes())
    _assert_nothing_left(data_dir, summary)

    assert not summary["interrupted"]
    assert summary["replay_s"] >= 30
    assert summary["events_sent"] > 1000
    assert summary["recommendations"] > 0
    assert f"recommendations:   {summary['recommendations']} published" in output
    assert summary["events_consumed"] == summary["events_sent"], "the worker did not take every event"

    # Recount the planted pairs' ranks from the raw partners: complement in the anchor's top 3 by LLR.
    planted = generate_catalog(size=int(CATALOG_SIZE), seed=7).planted
    anchors = summary["planted_anchors"]
    assert set(anchors) == set(planted)
    evaluated = recovered = 0
    for anchor, complements in planted.items():
        detail = anchors[anchor]
        if detail["count"] < 3:
            continue
        top3 = [p["item_id"] for p in sorted(detail["partners"], key=lambda p: (-p["llr"], -p["lift"]))[:3]]
        for complement in complements:
            evaluated += 1
            recovered += complement in top3
    assert evaluated >= 8, f"too few planted anchors were bought 3+ times: {evaluated}"
    assert recovered / evaluated >= 0.7, f"only {recovered}/{evaluated} planted pairs recovered"
    assert summary["planted"]["evaluated_pairs"] == evaluated
    assert summary["planted"]["recovered_pairs"] == recovered


AMAZON_USERS = 3000
AMAZON_ITEMS = 150
BASE_TS_S = 1_600_000_000


@pytest.fixture
def amazon_log(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A real log for ``--events/--catalog``: Amazon video-game sequences and titles (the 150 most
    bought items of the first 3000 users), as the generic CSV ``user,item,kind,ts`` and a JSONL catalog."""
    source = shared_data / "amazon_videogames_unisrec"
    sequences = []
    with (source / "Games.test.inter").open(encoding="utf-8") as handle:
        next(handle)
        for line in itertools.islice(handle, AMAZON_USERS):
            user, history, last = line.rstrip("\n").split("\t")
            sequences.append((user, history.split() + [last]))
    popular = {item for item, _ in Counter(i for _, items in sequences for i in items).most_common(AMAZON_ITEMS)}
    titles = {}
    with (source / "Games.item").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            item, title = line.rstrip("\n").split("\t", 1)
            if item in popular:
                titles[item] = title
    rows = [
        (BASE_TS_S + int(user) * 20 + position * 60, user, item)  # one session per user, a minute apart
        for user, items in sequences
        for position, item in enumerate(i for i in items if i in popular)
    ]
    events, catalog = tmp_path / "events.csv", tmp_path / "catalog.jsonl"
    events.write_text("user,item,kind,ts\n" + "".join(f"{u},{i},purchase,{ts}\n" for ts, u, i in sorted(rows)))
    catalog.write_bytes(b"".join(orjson.dumps({"item_id": i, "title": t}) + b"\n" for i, t in titles.items()))
    assert len(rows) > 3000 and len(titles) == AMAZON_ITEMS
    return events, catalog


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_in_the_middle_of_a_real_log_replay_stops_everything_and_exits_0(
    tmp_path: Path, amazon_log: tuple[Path, Path]
) -> None:
    events, catalog = amazon_log
    data_dir, json_out = tmp_path / "demo", tmp_path / "summary.json"
    process = _demo(data_dir, json_out, "--events", str(events), "--catalog", str(catalog))
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "replaying" in line:
                break
        assert any("replaying" in line for line in lines), "".join(lines)[-3000:]
        time.sleep(8)  # mid-replay: events flowing, recommendations coming back
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    output = "".join(lines) + rest
    assert process.returncode == 0, output[-3000:]
    summary = orjson.loads(json_out.read_bytes())
    assert summary["interrupted"] and "stopped early by a signal" in output
    assert str(events) in summary["source"] and summary["items"] == AMAZON_ITEMS
    assert 0 < summary["events_sent"] < 3000, "the replay was not stopped in the middle"
    assert summary["recommendations"] > 0
    _assert_nothing_left(data_dir, summary)


# -- quick checks of the generated data (no broker) ------------------------------------------------


def test_catalog_and_behaviour_are_deterministic_for_a_seed() -> None:
    first, again, other = (generate_catalog(size=400, seed=seed) for seed in (3, 3, 4))
    assert first.records() == again.records() and first.planted == again.planted
    assert first.records() != other.records()
    assert 400 <= len(first.products) <= 480
    assert len({p.item_id for p in first.products}) == len(first.products)
    assert len({p.category for p in first.products}) >= 25
    events = list(itertools.islice(simulate(first, SimulatorConfig(seed=3)), 3000))
    assert events == list(itertools.islice(simulate(first, SimulatorConfig(seed=3)), 3000))
    assert [e.offset_ms for e in events] == sorted(e.offset_ms for e in events)
    assert len({e.event_id for e in events}) == len(events)
    assert set(Counter(e.kind for e in events)) == {"click", "cart", "purchase"}


def test_simulated_orders_carry_the_planted_pairs() -> None:
    catalog = generate_catalog(size=400, seed=1)
    events = itertools.islice(simulate(catalog, SimulatorConfig(seed=1)), 20000)
    orders: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.kind == "purchase":
            orders[event.order_id].add(event.item_id)
    with_anchor = with_both = 0
    for anchor, complements in catalog.planted.items():
        for basket in orders.values():
            if anchor in basket:
                with_anchor += len(complements)
                with_both += sum(complement in basket for complement in complements)
    assert with_anchor > 100
    assert 0.6 <= with_both / with_anchor <= 0.9  # complement_probability 0.75
    # and a complement is rarely bought without its anchor: it sells because of it
    anchor_of = {c: a for a, cs in catalog.planted.items() for c in cs}
    sold = [(item, basket) for basket in orders.values() for item in basket if item in anchor_of]
    alone = sum(anchor_of[item] not in basket for item, basket in sold)
    assert alone < len(sold) - alone


def test_scoring_ranks_by_llr_and_skips_rarely_bought_anchors() -> None:
    records = {
        "phone": {
            "occurrences": {"purchase": 10},
            "channels": {
                "purchase->purchase": [
                    {"item_id": "rare", "count": 1, "lift": 90.0, "llr": 6.0},
                    {"item_id": "tea", "count": 2, "lift": 1.5, "llr": 1.0},
                    {"item_id": "soap", "count": 2, "lift": 1.2, "llr": 0.5},
                    {"item_id": "case", "count": 8, "lift": 20.0, "llr": 40.0},
                    {"item_id": "charger", "count": 3, "lift": 4.0, "llr": 0.1},
                ]
            },
        },
        "camera": {"occurrences": {"purchase": 2}, "channels": {"purchase->purchase": []}},
    }
    result = score_planted(records, {"phone": ["case", "charger"], "camera": ["card"]})
    assert (result.planted_pairs, result.evaluated_pairs, result.recovered_pairs) == (3, 2, 1)
    assert result.misses == [("phone", "charger")]  # by lift it would be in the top 3; by LLR it is 5th
    # strongest 3 (count >= 2, lift > 1): case, tea, soap → one planted pair
    assert (result.top_discovered, result.top_discovered_planted) == (3, 1)


def test_live_view_renders_on_a_terminal_and_status_lines_elsewhere() -> None:
    state = LiveState(titles={"a": "Nova phone", "b": "Case for Nova phone"}, urls={"metrics": "http://x/metrics"})
    state.replay_started = time.monotonic()
    state.produced, state.consumed, state.recommendations = 120, 100.0, 100
    state.latest_recommendations.append(
        {"user_id": "u1", "trigger_item_id": "a", "items": [{"item_id": "b", "reasons": ["bought together with a"]}]}
    )
    state.associations["a"] = {
        "channels": {"purchase->purchase": [{"item_id": "b", "count": 5, "lift": 9.0, "confidence": 0.8, "llr": 20}]}
    }
    terminal = StringIO()
    display = DemoDisplay(Console(file=terminal, force_terminal=True, width=160))
    assert display.live_view
    display.start(state)
    display.refresh(state)
    display.stop()
    drawn = terminal.getvalue()
    assert "Case for Nova phone" in drawn and "http://x/metrics" in drawn
    assert "bought together with Nova phone" in drawn  # the reason names the product, not its id

    plain = StringIO()
    display = DemoDisplay(Console(file=plain, force_terminal=False), status_every_s=0)
    assert not display.live_view
    display.start(state)
    display.refresh(state)
    text = plain.getvalue()
    assert "\x1b[" not in text
    assert "recommendations=100" in text and "Nova phone -> Case for Nova phone" in text
