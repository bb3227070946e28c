"""``xsell rules`` (1⇒1 association rules from baskets) and ``xsell bench engine``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from stream.cli.base import app, bench_app, console
from stream.errors import UsageError

DEFAULT_MIN_SUPPORT = 0.001
DEFAULT_MIN_CONFIDENCE = 0.0
DEFAULT_MIN_LIFT = 0.0
TABLE_ROWS = 30
DEFAULT_DATA_DIR = Path("../shared/data")


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be between 0 and 1, got {value}")
    return value


@app.command("rules")
def rules_command(
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions", help="One basket per line, items comma-separated (like groceries.csv)."
        ),
    ] = None,
    baskets: Annotated[
        Path | None, typer.Option("--baskets", help="CSV with header basket_id,item_id.")
    ] = None,
    min_support: Annotated[
        float, typer.Option("--min-support", help="Minimum support (0..1).")
    ] = DEFAULT_MIN_SUPPORT,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", help="Minimum confidence (0..1).")
    ] = DEFAULT_MIN_CONFIDENCE,
    min_lift: Annotated[float, typer.Option("--min-lift", help="Minimum lift.")] = DEFAULT_MIN_LIFT,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every rule as JSON to this file.")
    ] = None,
) -> None:
    """Every 1-item ⇒ 1-item rule passing the thresholds, by lift then confidence."""
    from stream.engine import AssociationEngine, EngineConfig, InputFormatError, SessionConfig
    from stream.engine.cooccurrence import CooccurrenceConfig

    if (transactions is None) == (baskets is None):
        raise UsageError("give exactly one of --transactions FILE or --baskets FILE")
    _fraction("--min-support", min_support)
    _fraction("--min-confidence", min_confidence)
    if min_lift < 0:
        raise UsageError(f"--min-lift must be >= 0, got {min_lift}")
    source = transactions if transactions is not None else baskets
    assert source is not None
    if not source.is_file():
        raise UsageError(f"no such file: {source}")
    from stream.engine import read_baskets_csv, read_transactions

    try:
        loaded = read_transactions(source) if transactions is not None else read_baskets_csv(source)
    except InputFormatError as exc:
        raise UsageError(str(exc)) from exc
    engine = AssociationEngine(
        EngineConfig(
            sessions=SessionConfig(max_items_per_session=None, max_pairs_per_event=None),
            cooccurrence=CooccurrenceConfig(partner_capacity=None, dedup_capacity=0),
            profiles=None,
        )
    )
    engine.add_baskets(loaded)
    rules = engine.rules(min_support=min_support, min_confidence=min_confidence, min_lift=min_lift)
    if json_out is not None:
        fields = ("antecedent", "consequent", "support", "confidence", "lift", "llr")
        json_out.write_bytes(
            orjson.dumps(
                [{name: getattr(rule, name) for name in fields} for rule in rules], option=orjson.OPT_INDENT_2
            )
        )
    table = Table(title=f"{len(rules)} rules from {len(loaded)} baskets ({source.name})")
    for column in ("antecedent", "consequent", "support", "confidence", "lift", "llr"):
        table.add_column(
            column, justify="left" if column.endswith("cedent") or column == "consequent" else "right"
        )
    for rule in rules[:TABLE_ROWS]:
        table.add_row(
            rule.antecedent,
            rule.consequent,
            f"{rule.support:.4f}",
            f"{rule.confidence:.3f}",
            f"{rule.lift:.2f}",
            f"{rule.llr:.1f}",
        )
    console.print(table)
    if len(rules) > TABLE_ROWS:
        console.print(
            f"... {len(rules) - TABLE_ROWS} more" + (f" in {json_out}" if json_out else " (use --json OUT)")
        )


@bench_app.command("engine")
def bench_engine_command(
    json_out: Annotated[Path, typer.Option("--json", help="Write the figures as JSON to this file.")],
    data_dir: Annotated[Path, typer.Option("--data", help="The shared datasets folder.")] = DEFAULT_DATA_DIR,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Best of this many runs per measurement.")
    ] = 3,
) -> None:
    """Events/s on Taobao (counting and full path, batched vs per-event) and the engine vs mlxtend on Groceries."""
    if not data_dir.is_dir():
        raise UsageError(f"no such data folder: {data_dir}")
    results = run_engine_benchmark(data_dir, repeats=repeats, console=console)
    json_out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    console.print_json(orjson.dumps(results).decode())


SWEEP_BATCHES = (2_000, 10_000, 20_000)  # the counting path at other batch sizes, beside the default 5,000


def _best_seconds(run, repeats: int) -> float:  # type: ignore[no-untyped-def]
    import time

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def run_engine_benchmark(data_dir: Path, *, repeats: int, console=console) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Measure the figures of ``xsell bench engine`` (mlxtend is imported here only, never by the engine)."""
    import os
    import platform
    import time
    from datetime import UTC, datetime

    import numpy as np
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder
    from rich.progress import Progress

    from stream.engine import (
        AssociationEngine,
        CooccurrenceConfig,
        EngineConfig,
        ProfileConfig,
        SessionConfig,
        read_taobao,
        read_transactions,
        validate_many,
    )

    taobao = data_dir / "taobao_userbehavior" / "UserBehavior_head84475.csv"
    groceries = data_dir / "groceries" / "groceries.csv"
    events, categories = read_taobao(taobao)
    now_ms = max(event["ts"] for event in events) + 1
    items = sorted(categories)
    row_of = {item: row for row, item in enumerate(items)}
    vectors = np.random.default_rng(0).standard_normal((len(items), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    batch = 5000

    def replay(profiles: ProfileConfig | None, batched: bool = True, size: int = batch) -> AssociationEngine:
        engine = AssociationEngine(
            EngineConfig(profiles=profiles, batched=batched),
            item_vectors=lambda ids: vectors[[row_of[item] for item in ids]],
            item_categories=categories.get,
        )
        for start in range(0, len(events), size):
            engine.process(events[start : start + size], now_ms=now_ms)
        engine.flush()
        return engine

    def first_read() -> float:
        """Seconds to build every per-item state object once after a counting replay."""
        engine = replay(None)
        start = time.perf_counter()
        len(engine.store.items)
        return time.perf_counter() - start

    def validate_only() -> None:
        for start in range(0, len(events), batch):
            validate_many(events[start : start + batch], now_ms=now_ms)

    baskets = read_transactions(groceries)

    def mlxtend_rules() -> int:
        encoder = TransactionEncoder()
        frame = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
        itemsets = fpgrowth(frame, min_support=0.001, use_colnames=True, max_len=2)
        return len(association_rules(itemsets, metric="support", min_threshold=0.001))

    def engine_rules() -> int:
        engine = AssociationEngine(
            EngineConfig(
                sessions=SessionConfig(max_items_per_session=None, max_pairs_per_event=None),
                cooccurrence=CooccurrenceConfig(partner_capacity=None, dedup_capacity=0),
                profiles=None,
            )
        )
        engine.add_baskets(baskets)
        return len(engine.rules(min_support=0.001))

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("bench engine", total=8 + len(SWEEP_BATCHES))
        validation_s = _best_seconds(validate_only, repeats)
        progress.advance(task)
        counting_s = _best_seconds(lambda: replay(None), repeats)
        progress.advance(task)
        first_read_s = min(first_read() for _ in range(repeats))
        progress.advance(task)
        by_batch = {}
        for size in SWEEP_BATCHES:
            by_batch[str(size)] = len(events) / _best_seconds(lambda size=size: replay(None, size=size), repeats)
            progress.advance(task)
        full_s = _best_seconds(lambda: replay(ProfileConfig()), repeats)
        progress.advance(task)
        per_event_counting_s = _best_seconds(lambda: replay(None, batched=False), repeats)
        progress.advance(task)
        per_event_full_s = _best_seconds(lambda: replay(ProfileConfig(), batched=False), repeats)
        progress.advance(task)
        mlxtend_s = _best_seconds(mlxtend_rules, repeats)
        progress.advance(task)
        engine_s = _best_seconds(engine_rules, repeats)
        progress.advance(task)
    rules_equal = mlxtend_rules() == engine_rules()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version()},
        "taobao": {
            "events": len(events),
            "validation_only_events_per_s": len(events) / validation_s,
            "counting_path_events_per_s": len(events) / counting_s,
            "full_path_events_per_s": len(events) / full_s,
            "counting_vs_validation_only": validation_s / counting_s,
            "batch_size": batch,
            "counting_path_events_per_s_by_batch_size": by_batch,
            "first_read_of_all_item_states_s": first_read_s,
            "counting_path_with_first_read_events_per_s": len(events) / (counting_s + first_read_s),
            "per_event_path_counting_events_per_s": len(events) / per_event_counting_s,
            "per_event_path_full_events_per_s": len(events) / per_event_full_s,
            "counting_speedup_vs_per_event_path": per_event_counting_s / counting_s,
            "full_speedup_vs_per_event_path": per_event_full_s / full_s,
            "goal_counting_events_per_s": 200_000,
        },
        "groceries": {
            "baskets": len(baskets),
            "mlxtend_seconds": mlxtend_s,
            "engine_seconds": engine_s,
            "engine_speedup_vs_mlxtend": mlxtend_s / engine_s,
            "same_rule_count": rules_equal,
            "goal_speedup": 5.0,
        },
        "repeats": repeats,
    }
