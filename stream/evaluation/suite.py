"""Everything ``xsell evaluate`` compares, built and run in one call.

``load_events(path, format)`` reads a log (``generic``, ``taobao``, ``retailrocket``);
``catalog_vectors(path)`` encodes a catalog with the default BERT encoder;
``run_evaluation`` builds the models and runs the protocol:

* ``popularity``: events per item so far;
* ``cooccurrence``, ``embedding`` (with a catalog), ``hybrid``: the stream's ranking;
* ``bm25``, ``cosine``, ``als``: ``implicit`` batch peers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from stream.engine.replay import read_events_csv, read_retailrocket, read_taobao
from stream.evaluation.errors import EvaluationError
from stream.evaluation.peers import ImplicitPeers
from stream.evaluation.popularity import Popularity
from stream.evaluation.protocol import (
    EvaluationConfig,
    EvaluationResult,
    LoggedEvent,
    Observer,
    Ranker,
    evaluate,
    logged_events,
)
from stream.evaluation.streamed import StreamRanker, StreamState

if TYPE_CHECKING:
    from stream.settings import Settings

__all__ = ["FORMATS", "build_models", "catalog_vectors", "load_events", "run_evaluation"]

FORMATS = ("generic", "taobao", "retailrocket")


def load_events(path: Path, format: str = "generic") -> list[LoggedEvent]:
    """A log as time-sorted events; raises ``InputFormatError`` for a bad file."""
    if format == "generic":
        raw = read_events_csv(path)
    elif format == "taobao":
        raw, _ = read_taobao(path)
    elif format == "retailrocket":
        raw = read_retailrocket(path)
    else:
        raise EvaluationError(f"unknown format {format!r}; formats are {', '.join(FORMATS)}")
    return logged_events(raw)


def catalog_vectors(path: Path, encoder: object | None = None) -> tuple[list[str], NDArray[np.float32]]:
    """Item ids and their unit vectors from a catalog (default encoder: ``BertEncoder()``)."""
    from encoders import BertEncoder, read_catalog

    catalog = read_catalog(path)
    model = encoder if encoder is not None else BertEncoder()
    vectors = model.encode(catalog.texts, normalize=True)  # type: ignore[attr-defined]
    return catalog.ids, np.asarray(vectors, dtype=np.float32)


def build_models(
    *,
    item_ids: Sequence[str] = (),
    item_vectors: NDArray[np.floating] | None = None,
    threads: int = 1,
    settings: Settings | None = None,
) -> tuple[dict[str, Ranker], list[Observer]]:
    """The rankers by name and the observers that feed them. ``settings`` (a worker's, defaults
    when None) give the stream models their session gap and ranking weights."""
    from stream.settings import Settings

    settings = settings or Settings()
    popularity = Popularity()
    state = StreamState(
        item_ids=item_ids,
        item_vectors=item_vectors,
        sessions=settings.session_config(),  # its lateness is unused offline (EVALUATION.md)
    )
    ranking = settings.ranking_config()
    peers = ImplicitPeers(threads=threads)
    rankers: dict[str, Ranker] = {
        "popularity": popularity,
        "cooccurrence": StreamRanker(state, similar=False, trending=False, config=ranking),
    }
    if state.similarity is not None:
        rankers["embedding"] = StreamRanker(state, associations=False, trending=False, config=ranking)
    rankers["hybrid"] = StreamRanker(state, config=ranking)
    rankers.update(peers.rankers())
    return rankers, [popularity, state, peers]


def run_evaluation(
    events: Sequence[LoggedEvent],
    *,
    config: EvaluationConfig | None = None,
    item_ids: Sequence[str] = (),
    item_vectors: NDArray[np.floating] | None = None,
    threads: int = 1,
    on_event: Callable[[int], None] | None = None,
    settings: Settings | None = None,
) -> EvaluationResult:
    """Every model on one log, one replay (``settings``: as for ``build_models``)."""
    from threadpoolctl import threadpool_limits  # installed with implicit

    rankers, observers = build_models(item_ids=item_ids, item_vectors=item_vectors, threads=threads, settings=settings)
    with threadpool_limits(limits=threads, user_api="blas"):  # BLAS threads beside ALS's own oversubscribe
        return evaluate(events, rankers, observers, config=config, on_event=on_event)
