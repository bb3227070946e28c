"""Asking the demo's worker how it is doing: ``/healthz`` and ``/metrics`` over HTTP.

Standard library only (``urllib``): the worker is local, a request is tiny, and the
runner calls these in a thread so the event loop never waits on a socket.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["http_get", "parse_worker_metrics"]


def http_get(url: str, timeout_s: float = 3.0) -> tuple[int, bytes]:
    """Status and body of a GET; status 0 when nothing answers (the worker is not up yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own worker
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def parse_worker_metrics(text: str, topic_prefix: str) -> tuple[dict[str, float], dict[str, float]]:
    """The few worker metrics the demo shows, summed over their labels; and dead letters by reason."""
    wanted = {
        "xsell_events_consumed": "consumed",
        "xsell_dead_letters": "dead_letters",
        "xsell_consumer_lag_messages": "lag",
        "xsell_index_items": "index_items",
    }
    found: dict[str, float] = dict.fromkeys(wanted.values(), 0.0)
    reasons: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        name = wanted.get(family.name)
        if name is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") or sample.name == family.name:
                if name == "lag" and not sample.labels.get("topic", "").startswith(topic_prefix):
                    continue
                found[name] += sample.value
                if name == "dead_letters":
                    reason = sample.labels.get("reason", "?")
                    reasons[reason] = reasons.get(reason, 0.0) + sample.value
    return found, reasons
