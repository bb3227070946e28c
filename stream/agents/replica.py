"""The worker's replica task: follows ``item-embeddings`` and ``item-associations``.

The logic lives in ``stream.replica.Replica`` (no Faust); this module owns the one
instance per worker and runs it once the encoder is loaded (the replica needs the model
version and dimension to accept or refuse its snapshot). A co-occurrence worker
(``XSELL_ROLE=cooccurrence``) loads no encoder and follows ``item-associations`` only: it
needs every item's counts and N for the metrics it publishes, not the vectors.
"""

from __future__ import annotations

import asyncio
import logging

from stream import heap
from stream.app import app, metrics, settings
from stream.replica import Replica

__all__ = ["replica"]

log = logging.getLogger(__name__)

# The encoder, index and replica are loaded for life: the heap keeps them out of later
# collections, settled before the replica reports ready (``heap.settle``).
replica = Replica(settings, metrics, before_ready=heap.settle)


@app.task
async def follow_replica() -> None:
    try:
        if settings.runs_interactions:
            from stream.agents.catalog import load_encoder

            encoder = await load_encoder()
            await replica.run(encoder.model_version, encoder.dimension)
        else:
            await replica.run_associations()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the replica stopped; the worker is no longer ready")
        metrics.worker_ready.set(0)
        raise
