"""The worker's HTTP API (served by Faust's web server on ``web_port``).

| route                                  | answers from                                        |
|----------------------------------------|-----------------------------------------------------|
| GET /users/{user_id}/recommendations   | ``user-recommendations`` table (routed to the owner) |
| GET /items/{item_id}/associations      | this worker's replica of ``item-associations``      |
| GET /items/{item_id}/similar           | this worker's HNSW replica                          |
| GET /healthz                           | 200 once tables are recovered and the replica caught up, else 503 |
| GET /metrics                           | Prometheus text format                              |

Unknown ids are 404 and bad parameters 400, both with a JSON ``{"error": ...}``. A
co-occurrence worker (``XSELL_ROLE=cooccurrence``) has no user tables and no index: it
serves no users route, and its ``similar`` answers 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from stream.agents.replica import replica
from stream.app import app, metrics, recovery_completed, settings
from stream.engine import CHANNELS

MAX_K = 100


def _json(web: Any, body: Any, status: int = 200) -> Response:
    return web.bytes(orjson.dumps(body), content_type="application/json", status=status)


def _error(web: Any, status: int, message: str) -> Response:
    return _json(web, {"error": message}, status)


def _k(request: Request, default: int = 10) -> int | None:
    raw = request.query.get("k", str(default))
    try:
        k = int(raw)
    except ValueError:
        return None
    return k if 1 <= k <= MAX_K else None


def is_ready() -> bool:
    recovered = not app.rebalancing and recovery_completed()
    ready = recovered and replica.ready.is_set()
    metrics.worker_ready.set(1 if ready else 0)
    return ready


@app.page("/healthz")
class Health(View):
    async def get(self, request: Request) -> Response:
        ready = is_ready()
        body = {"ready": ready, "index_items": replica.size, "associations": len(replica.associations)}
        return _json(self.web, body, 200 if ready else 503)


@app.page("/metrics")
class MetricsPage(View):
    async def get(self, request: Request) -> Response:
        is_ready()
        return self.web.bytes(metrics.exposition(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


if settings.runs_interactions:
    from stream.tables import user_recommendations_table

    @app.page("/users/{user_id}/recommendations")
    class UserRecommendations(View):
        @app.table_route(table=user_recommendations_table, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Request, user_id: str) -> Response:
            value = user_recommendations_table.get(user_id.encode())
            if value is None:
                return _error(self.web, 404, f"no recommendations for user {user_id!r}")
            return self.web.bytes(value, content_type="application/json")


@app.page("/items/{item_id}/associations")
class ItemAssociationsPage(View):
    async def get(self, request: Request, item_id: str) -> Response:
        k = _k(request, 20)
        if k is None:
            return _error(self.web, 400, f"k must be an integer from 1 to {MAX_K}")
        channel = request.query.get("channel")
        if channel is not None and channel not in CHANNELS:
            return _error(self.web, 400, f"channel must be one of {', '.join(CHANNELS)}")
        if item_id not in replica.associations:
            return _error(self.web, 404, f"no associations for item {item_id!r}")
        rules = replica.rules(item_id, top_k=k, channels=(channel,) if channel else None)
        record = replica.associations[item_id]
        return _json(
            self.web,
            {
                "item_id": item_id,
                "transactions": replica.tally.total,
                "occurrences": record.get("occurrences", {}),
                "associations": [rule.to_dict() for rule in rules],
            },
        )


@app.page("/items/{item_id}/similar")
class SimilarItems(View):
    async def get(self, request: Request, item_id: str) -> Response:
        k = _k(request)
        if k is None:
            return _error(self.web, 400, f"k must be an integer from 1 to {MAX_K}")
        index = replica.index
        if index is None or item_id not in index:
            return _error(self.web, 404, f"item {item_id!r} is not in the index")
        rows = index.query(
            index.vector(item_id).reshape(1, -1), min(k, max(1, len(index) - 1)), exclude={item_id}
        )
        similar = [
            {"item_id": other, "score": round(score, 6), **_summary(index.metadata(other))}
            for other, score in rows[0]
        ]
        return _json(self.web, {"item_id": item_id, "similar": similar})


def _summary(metadata: Any) -> dict[str, Any]:
    metadata = metadata or {}
    return {key: metadata[key] for key in ("title", "category", "in_stock") if key in metadata}
