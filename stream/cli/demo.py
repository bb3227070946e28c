"""``xsell demo``: broker, worker, catalog and a live behaviour replay, then a summary.

A thin shell over ``stream.demo.run_demo``: flags in, summary out (``--json OUT`` for
scripts). Ctrl-C or SIGTERM stop the run cleanly and still exit 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer

from stream.cli.base import app, console
from stream.errors import UsageError


@app.command("demo")
def demo(
    duration: float = typer.Option(
        None, "--duration", min=0.1, help="Replay this many seconds once everything is up (default: until Ctrl-C)."
    ),
    rate: float = typer.Option(200.0, "--rate", min=0.1, help="Behaviour events sent per second."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated catalog and behaviour."),
    catalog_size: int = typer.Option(2000, "--catalog-size", min=30, help="Products in the generated catalog."),
    users: int = typer.Option(5000, "--users", min=1, help="Simulated shoppers."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Broker and worker data (default: .demo in the repo)."),
    events: Path = typer.Option(None, "--events", help="Replay this log (CSV user,item,kind,ts or JSON lines)."),
    catalog: Path = typer.Option(None, "--catalog", help="The log's catalog (CSV or JSON lines with item_id, title)."),
    partitions: int = typer.Option(2, "--partitions", min=1, help="Partitions of the demo's topics."),
    web_port: int = typer.Option(None, "--web-port", min=1, max=65535, help="Worker HTTP port (default: a free one)."),
    lateness: float = typer.Option(
        None, "--lateness", min=0, help="Allowed event-time lateness in seconds (default: 15, or 3600 with --events)."
    ),
    startup_timeout: float = typer.Option(600.0, "--startup-timeout", min=1, help="Longest start-up, seconds."),
    json_out: Path = typer.Option(None, "--json", help="Write the summary as JSON to this file."),
) -> None:
    """Watch xsell discover associations and publish recommendations and ad targets live."""
    from stream.demo import DEFAULT_DATA_DIR, DemoConfig, run_demo
    from stream.demo.display import DemoDisplay

    if json_out is not None and json_out.is_dir():
        raise UsageError(f"--json {json_out}: is a directory, a file name was expected")
    config = DemoConfig(
        data_dir=data_dir or DEFAULT_DATA_DIR,
        duration_s=duration,
        rate=rate,
        seed=seed,
        catalog_size=catalog_size,
        users=users,
        events_file=events,
        catalog_file=catalog,
        partitions=partitions,
        web_port=web_port,
        lateness_s=lateness,
        startup_timeout_s=startup_timeout,
    )
    summary = run_demo(config, DemoDisplay(console))
    print_summary(summary.to_dict())
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
        console.print(f"summary written to {json_out}", highlight=False, soft_wrap=True)


def print_summary(summary: dict[str, Any]) -> None:
    """The end-of-run summary, as plain lines (readable in a terminal and in a log)."""
    lines = [
        "",
        "xsell demo summary" + (" (stopped early by a signal)" if summary["interrupted"] else ""),
        f"  source:            {summary['source']}",
        f"  start-up:          {summary['startup_s']:.1f}s (broker, worker, catalog encoded)"
        if summary["startup_s"]
        else "  start-up:          not finished",
        f"  replay:            {summary['replay_s']:.1f}s at {_achieved(summary)} events/s "
        f"(asked {summary['rate']:g}), then {summary['drain_s']:.1f}s to drain",
        f"  events:            {summary['events_sent']} sent, {summary['events_consumed']:.0f} consumed, "
        f"{summary['dead_letters']:.0f} dead-lettered"
        + (
            " (" + ", ".join(f"{reason}: {count:.0f}" for reason, count in summary["dead_letter_reasons"].items()) + ")"
            if summary["dead_letters"]
            else ""
        ),
        f"  recommendations:   {summary['recommendations']} published",
        f"  ad targets:        {summary['ad_targets']} published",
        f"  associations:      {summary['items_with_associations']} items with associations",
    ]
    planted = summary.get("planted")
    if planted and not planted["evaluated_pairs"]:
        lines.append(
            f"  planted pairs:     none judged yet (no anchor bought 3+ times; {planted['planted_pairs']} planted)"
        )
    elif planted:
        lines += [
            f"  planted pairs:     {planted['recovered_pairs']} of {planted['evaluated_pairs']} recovered "
            f"({100 * planted['recovered_share']:.0f}%): the complement is in its anchor's top {planted['top_k']} "
            f"by LLR ({planted['channel']}; anchors bought 3+ times; {planted['planted_pairs']} planted in all)",
            f"  precision:         {planted['top_discovered_planted']} of the {planted['top_discovered']} strongest "
            f"discovered associations are planted pairs ({100 * planted['precision']:.0f}%)",
        ]
    if summary["strongest"]:
        lines.append("  strongest bought-together associations:")
        lines += [
            f"    {_short(rule['antecedent_title'])} -> {_short(rule['consequent_title'])}: {rule['pairs']:.0f} pairs, "
            f"confidence {rule['confidence']:.2f}, lift {rule['lift']:.1f}, LLR {rule['llr']:.1f}"
            for rule in summary["strongest"][:5]
        ]
    for role, pid in sorted(summary["pids"].items()):
        lines.append(f"  stopped {role} pid {pid}")
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def _short(title: str, limit: int = 70) -> str:
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _achieved(summary: dict[str, Any]) -> str:
    return f"{summary['events_sent'] / summary['replay_s']:.0f}" if summary["replay_s"] else "0"


@app.command("demo-produce")
def demo_produce(
    broker: str = typer.Option(None, "--broker", help="Kafka bootstrap (default: XSELL_BROKER)."),
    topic_prefix: str = typer.Option(None, "--topic-prefix", help="Topic prefix (default: XSELL_TOPIC_PREFIX)."),
    duration: float = typer.Option(None, "--duration", min=0.1, help="Seconds of events (default: until stopped)."),
    rate: float = typer.Option(50.0, "--rate", min=0.1, help="Behaviour events sent per second."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated catalog and behaviour."),
    catalog_size: int = typer.Option(2000, "--catalog-size", min=30, help="Products in the generated catalog."),
    users: int = typer.Option(5000, "--users", min=1, help="Simulated shoppers."),
) -> None:
    """Only the demo's shop: catalog, campaigns and shoppers, sent to a Kafka that runs xsell."""
    import asyncio

    from stream.demo.producer import produce_demo
    from stream.settings import Settings

    settings = Settings.from_env(broker=broker, topic_prefix=topic_prefix)
    sent = asyncio.run(
        produce_demo(settings, duration_s=duration, rate=rate, seed=seed, catalog_size=catalog_size, users=users)
    )
    console.print(", ".join(f"{topic}: {count}" for topic, count in sent.items()))
