"""Offline evaluation: replay a log through the stream's own ranking and batch peers.

See ``docs/EVALUATION.md`` for the protocol. Public API::

    load_events(path, format) -> [LoggedEvent]         generic | taobao | retailrocket
    catalog_vectors(path, encoder=None) -> (ids, vectors)
    run_evaluation(events, *, config, item_ids, item_vectors, threads, on_event) -> EvaluationResult
    evaluate(events, rankers, observers, *, config, on_event) -> EvaluationResult
    EvaluationResult.to_dict()                          the documented JSON
    compare_with_peers(result) -> Comparison            hybrid / best peer, with a bootstrap interval
    render_table(result) / plot_result(result, path)

Models: ``Popularity``, ``StreamState`` + ``StreamRanker`` (co-occurrence, embedding,
hybrid), ``ImplicitPeers`` (bm25, cosine, als). Errors: ``EvaluationError``.
"""

from __future__ import annotations

from stream.evaluation.errors import EvaluationError
from stream.evaluation.peers import ImplicitPeers, PeerRanker
from stream.evaluation.popularity import Popularity
from stream.evaluation.protocol import (
    DEFAULT_K,
    DEFAULT_SPLIT,
    EvaluationConfig,
    EvaluationResult,
    LoggedEvent,
    ModelScores,
    Observer,
    Ranker,
    evaluate,
    logged_events,
    split_point,
)
from stream.evaluation.report import plot_result, render_rows
from stream.evaluation.streamed import StreamRanker, StreamState
from stream.evaluation.suite import FORMATS, build_models, catalog_vectors, load_events, run_evaluation
from stream.evaluation.uncertainty import Comparison, compare_with_peers

__all__ = [
    "Comparison",
    "DEFAULT_K",
    "DEFAULT_SPLIT",
    "FORMATS",
    "EvaluationConfig",
    "EvaluationError",
    "EvaluationResult",
    "ImplicitPeers",
    "LoggedEvent",
    "ModelScores",
    "Observer",
    "PeerRanker",
    "Popularity",
    "Ranker",
    "StreamRanker",
    "StreamState",
    "build_models",
    "catalog_vectors",
    "compare_with_peers",
    "evaluate",
    "load_events",
    "logged_events",
    "plot_result",
    "render_rows",
    "run_evaluation",
    "split_point",
]
