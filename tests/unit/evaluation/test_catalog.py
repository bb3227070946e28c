"""A catalog turns on the embedding model: real BERT vectors of product titles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.evaluation import EvaluationConfig, catalog_vectors, run_evaluation

from .test_models import _cooccurrence_log


def test_catalog_vectors_enable_the_embedding_model(tmp_path: Path, encoder: object) -> None:
    catalog = tmp_path / "catalog.csv"
    titles = {
        "X0": "Running shoes for men",
        "Y0": "Running socks, breathable",
        "X1": "Espresso coffee beans",
        "Y1": "Stovetop espresso maker",
        "X2": "Acrylic paint set",
        "Y2": "Artist paint brushes",
        "Z": "Phone charging cable",
    }
    catalog.write_text("item_id,title\n" + "".join(f"{item},\"{title}\"\n" for item, title in titles.items()))
    ids, vectors = catalog_vectors(catalog, encoder)
    assert ids == list(titles)
    assert vectors.shape == (len(titles), encoder.dimension)  # type: ignore[attr-defined]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    events, split = _cooccurrence_log()
    result = run_evaluation(events, config=EvaluationConfig(split=split, k=1), item_ids=ids, item_vectors=vectors)
    models = result.to_dict()["models"]
    assert "embedding" in models
    # After Xg the most similar unseen title is Yg (same topic), for every group.
    assert models["embedding"]["hr@1"] == 1.0  # type: ignore[index]
