"""Fixtures of the encoder tests: the sentence-transformers reference and small real catalogs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

INSTACART_SAMPLE_SIZE = 120


@pytest.fixture(scope="session")
def reference_model(encoder):
    """sentence-transformers on the same model directory: the independent reference."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(encoder.model_dir), device="cpu", local_files_only=True)


def instacart_products(shared_data: Path, count: int) -> list[dict[str, str]]:
    """The first ``count`` real Instacart products with their aisle as category."""
    base = shared_data / "instacart"
    with (base / "aisles.csv").open(encoding="utf-8", newline="") as handle:
        aisles = {row["aisle_id"]: row["aisle"] for row in csv.DictReader(handle)}
    with (base / "departments.csv").open(encoding="utf-8", newline="") as handle:
        departments = {row["department_id"]: row["department"] for row in csv.DictReader(handle)}
    products = []
    with (base / "products.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            products.append(
                {
                    "item_id": row["product_id"],
                    "title": row["product_name"].replace("\\", ""),
                    "category": f"{departments[row['department_id']]}>{aisles[row['aisle_id']]}",
                }
            )
            if len(products) == count:
                break
    return products


def write_catalog_csv(path: Path, rows: list[dict[str, str]], fields: tuple[str, ...]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def instacart_catalog(tmp_path: Path, shared_data: Path) -> tuple[Path, list[dict[str, str]]]:
    """A small real catalog (Instacart product names and aisles) as ``item_id,title,category`` CSV."""
    rows = instacart_products(shared_data, INSTACART_SAMPLE_SIZE)
    return write_catalog_csv(tmp_path / "catalog.csv", rows, ("item_id", "title", "category")), rows
