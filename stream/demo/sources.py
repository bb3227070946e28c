"""What a demo replays: the generated shop, or a real log and its catalog.

Both give a ``ReplaySource``: the catalog (titles for the display, planted pairs for the
summary), the catalog upserts to send, an iterator of ``(topic, event)`` in sending order,
and the lateness the worker should allow for that kind of stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.demo.catalog import DemoCatalog, generate_catalog
from stream.demo.errors import DemoError
from stream.demo.simulator import SimulatorConfig, simulate

__all__ = ["DEFAULT_FILE_LATENESS_S", "DEFAULT_SIMULATED_LATENESS_S", "ReplaySource", "file_source", "simulated_source"]

# Generated events follow the clock, but the worker reads clicks, carts and purchases at
# its own pace per topic: when it lags, one topic can run seconds ahead of another.
DEFAULT_SIMULATED_LATENESS_S = 15.0
DEFAULT_FILE_LATENESS_S = 3600.0  # a replayed log runs far faster than its own event time
TOPIC_OF_KIND = {"click": "clicks", "cart": "carts", "purchase": "purchases"}


@dataclass
class ReplaySource:
    """What the replay sends: the catalog, campaigns and an iterator of (topic, event)."""

    description: str
    catalog: DemoCatalog
    catalog_records: list[dict[str, Any]]
    events: Iterator[tuple[str, dict[str, Any]]]
    lateness_s: float


def simulated_source(*, seed: int, catalog_size: int, users: int, rate: float, start_ms: int) -> ReplaySource:
    """The generated catalog and an endless simulated stream whose event time starts at ``start_ms``."""
    catalog = generate_catalog(size=catalog_size, seed=seed)
    simulator = SimulatorConfig(seed=seed, users=users, events_per_second=rate)
    events = ((TOPIC_OF_KIND[event.kind], event.to_record(start_ms)) for event in simulate(catalog, simulator))
    return ReplaySource(
        description=f"simulated (seed {seed}, {len(catalog.products)} products, {users} users)",
        catalog=catalog,
        catalog_records=catalog.records(),
        events=events,
        lateness_s=DEFAULT_SIMULATED_LATENESS_S,
    )


def file_source(events_file: Path, catalog_file: Path) -> ReplaySource:
    """A real log (read lazily, in file order) and its catalog (read at once)."""
    from stream.cli.tools import read_records, route  # the same readers as `xsell produce`

    records = list(read_records(catalog_file))
    for number, record in enumerate(records, start=1):
        if "item_id" not in record:
            raise DemoError(f"{catalog_file}:{number}: a catalog record needs item_id")

    def events() -> Iterator[tuple[str, dict[str, Any]]]:
        for number, record in enumerate(read_records(events_file), start=1):
            yield route("events", record, f"{events_file}:{number}")

    return ReplaySource(
        description=f"replay of {events_file} with catalog {catalog_file}",
        catalog=DemoCatalog.from_records(records),
        catalog_records=records,
        events=events(),
        lateness_s=DEFAULT_FILE_LATENESS_S,
    )
