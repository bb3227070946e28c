"""``xsell demo``: xsell working on a laptop, from a clean clone, in a few minutes.

Modules, in the order a run uses them:

- ``categories`` (data) and ``catalog``: the generated catalog, ad campaigns and planted
  complementary pairs;
- ``simulator``: shoppers with interests whose purchases follow the planted pairs;
- ``sources``: what is replayed, the simulator's stream or a real log with its catalog;
- ``processes``: the broker and worker processes, recorded and stopped by PID;
- ``probes``: the worker's ``/healthz`` and ``/metrics``;
- ``runner``: start everything, replay at a rate, drain, summarise, shut down;
- ``display``: the rich live view (plain status lines when stdout is not a terminal);
- ``scoring``: discovered associations against the planted pairs.
"""

from __future__ import annotations

from stream.demo.catalog import DemoCatalog, generate_catalog
from stream.demo.errors import DemoError
from stream.demo.runner import DEFAULT_DATA_DIR, DemoConfig, DemoSummary, run_demo
from stream.demo.scoring import PlantedRecovery, score_planted
from stream.demo.simulator import SimulatedEvent, SimulatorConfig, simulate

__all__ = [
    "DEFAULT_DATA_DIR",
    "DemoCatalog",
    "DemoConfig",
    "DemoError",
    "DemoSummary",
    "PlantedRecovery",
    "SimulatedEvent",
    "SimulatorConfig",
    "generate_catalog",
    "run_demo",
    "score_planted",
    "simulate",
]
