"""encoders: product text to vectors with a BERT-family model, and fine-tuning it.

Public API (everything else is private)::

    BertEncoder(model_dir=None, *, device=None, max_seq_length=None, half=None)
        .encode(texts, *, batch_size=64, normalize=True, show_progress=False) -> (n, d) float32
        .dimension, .model_version, .device, .max_seq_length, .model_dir
    item_text(record) -> str                          the documented item text recipe
    read_catalog(path) -> Catalog                     CSV or JSON lines with item_id and title
    embed_catalog(catalog, out_dir, encoder)          vectors.npy + ids.json + manifest.json
    load_embeddings(out_dir) -> (vectors, ids, manifest)
    read_pairs(path) / mine_pairs(events_path)        training pairs
    finetune(item_texts, pairs, out_dir, config=FinetuneConfig(...)) -> FinetuneResult
    pair_loss(model_dir, item_texts, pairs) -> float  held-out contrastive loss

Importing the package is cheap: torch and transformers load when a model is built.
"""

from __future__ import annotations

from encoders.bert import DEFAULT_BATCH_SIZE, BertEncoder, default_model_dir, mean_pool
from encoders.catalog import Catalog, EmbedResult, embed_catalog, load_embeddings, read_catalog
from encoders.errors import CatalogError, EncoderError, ModelNotFoundError, TrainingDataError
from encoders.finetune import FinetuneConfig, FinetuneResult, finetune, pair_loss
from encoders.pairs import MiningConfig, mine_pairs, read_pairs
from encoders.text import TEXT_RECIPE, item_text

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "TEXT_RECIPE",
    "BertEncoder",
    "Catalog",
    "CatalogError",
    "EmbedResult",
    "EncoderError",
    "FinetuneConfig",
    "FinetuneResult",
    "MiningConfig",
    "ModelNotFoundError",
    "TrainingDataError",
    "default_model_dir",
    "embed_catalog",
    "finetune",
    "item_text",
    "load_embeddings",
    "mean_pool",
    "mine_pairs",
    "pair_loss",
    "read_catalog",
    "read_pairs",
]
