"""A live worker's /metrics: every documented metric present, moving as events flow, and
every metric the dashboard and the alert rules query exists in a real scrape."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.metrics import METRICS_DOC

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOW_MS = int(time.time() * 1000)


def scrape(worker) -> dict[str, list]:
    """Sample name → samples, parsed with prometheus-client's own parser."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(worker.get("/metrics").text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(
        s.value for s in samples.get(name, []) if all(s.labels.get(key) == value for key, value in labels.items())
    )


def queried_metric_names() -> set[str]:
    """Metric names in the PromQL of the dashboard's targets and the alert rules."""
    import json

    import yaml

    expressions: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"expr", "query"} and isinstance(value, str):
                    expressions.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(json.loads((REPO / "deploy" / "grafana" / "dashboards" / "xsell.json").read_text()))
    collect(yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text()))
    assert len(expressions) > 10
    return {name for expression in expressions for name in re.findall(r"\bxsell_[a-z0-9_]+", expression)}


def test_metrics_move_as_events_flow_and_every_queried_metric_exists(deployment, kafka_io, until):
    # Offsets are committed every batch_size records and every 10 s (1 s by default), so the
    # burst's last records stay uncommitted, and counted as lag, for seconds after the worker
    # answered them, however fast it answers (lag = log end − committed offset).
    deployment.settings["XSELL_COMMIT_INTERVAL_S"] = "10"
    worker = deployment.worker("w1").wait_ready()
    kafka_io.produce_json(
        deployment.topic("catalog"),
        [{"item_id": f"m{n}", "title": f"Running shoe model {n}", "category": "Sports>Shoes"} for n in range(20)],
        "item_id",
    )
    kafka_io.produce_json(
        deployment.topic("ad-campaigns"),
        [{"campaign_id": "c1", "text": "Running shoes sale", "categories": ["Sports>Shoes"]}],
        "campaign_id",
    )
    until(lambda: worker.get("/healthz").json()["index_items"] == 20, 120)
    first = scrape(worker)
    assert total(first, "xsell_worker_up") == 1 and total(first, "xsell_worker_ready") == 1

    # A burst: lag must rise while the worker catches up, then fall back to zero. The lag is
    # reported every half second; one worker here answered 6,000 clicks in 0.7 s, between two
    # reports when they came every 2 s, and the next commit came moments later. So the burst
    # is 12,000 (over a second at that speed) and commits wait up to 10 s (above).
    # Users of four interest groups click within their group's five items (lift 4 inside).
    burst = [
        {
            "event_id": f"b{n}",
            "user_id": f"u{n % 300}",
            "item_id": f"m{(n % 300) % 4 * 5 + (n // 300) % 5}",
            "ts": NOW_MS - 600_000 + n,
        }
        for n in range(12_000)
    ]
    lags: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            lags.append(total(scrape(worker), "xsell_consumer_lag_messages"))
            time.sleep(0.3)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        kafka_io.produce_json(deployment.topic("clicks"), burst, "user_id")
        kafka_io.produce(deployment.topic("clicks"), [(b"u1", b"not json")])
        until(lambda: total(scrape(worker), "xsell_recommendations_published_total") >= len(burst), 180)
        elapsed = time.monotonic() - started
        print(f"\none worker answered a burst of {len(burst)} clicks in {elapsed:.1f} s ({len(burst) / elapsed:.0f}/s)")
        until(lambda: total(scrape(worker), "xsell_consumer_lag_messages") == 0, 60, message="lag stayed up")
    finally:
        stop.set()
        watcher.join()
    print(f"lag above zero in {sum(lag > 0 for lag in lags)} of {len(lags)} scrapes, at most {max(lags):.0f}")
    assert max(lags) > 0, "lag never rose under the burst"

    # Once the burst is counted, new events get association and trending candidates too.
    until(
        lambda: (
            worker.get("/items/m1/associations").status_code == 200
            and worker.get("/items/m1/associations").json()["associations"]
        ),
        60,
        message="no associations",
    )
    probes = [{"event_id": f"p{n}", "user_id": f"new{n}", "item_id": "m1", "ts": NOW_MS} for n in range(20)]
    kafka_io.produce_json(deployment.topic("clicks"), probes, "user_id")
    until(lambda: total(scrape(worker), "xsell_recommendations_published_total") >= len(burst) + len(probes), 60)

    until(lambda: "xsell_table_keys" in scrape(worker), 30, message="table sizes never reported")
    second = scrape(worker)
    exported = set(second)
    for name in METRICS_DOC:
        assert name in exported or f"{name}_count" in exported, f"{name} missing from a live scrape"
    assert total(second, "xsell_events_consumed_total", kind="click", outcome="ok") >= len(burst)
    assert total(second, "xsell_dead_letters_total", reason="not_json") == 1
    assert total(second, "xsell_end_to_end_latency_seconds_count") >= len(burst)
    assert total(second, "xsell_recommendations_published_total") > total(
        first, "xsell_recommendations_published_total"
    )
    assert total(second, "xsell_encoder_items_total", kind="item") == 20
    assert total(second, "xsell_index_items") == 20
    assert total(second, "xsell_ad_targets_published_total") > 0
    for source in ("similar", "associations"):
        assert total(second, "xsell_candidates_total", source=source) > 0

    missing = sorted(name for name in queried_metric_names() if name not in exported)
    assert not missing, f"the dashboard or alerts query metrics a live worker does not export: {missing}"
    ads = kafka_io.consume_json(deployment.topic("ad-targets"), idle_s=1)
    assert ads and all(orjson.dumps(ad) and ad["campaign_id"] == "c1" for ad in ads)
