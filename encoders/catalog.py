"""Reading catalogs and embedding them to a directory, re-encoding only what changed.

A catalog is a CSV file (header with at least ``item_id,title``; other columns such as
``brand``, ``category``, ``description`` feed the text recipe) or JSON lines (one object per
line with the same fields). Item ids are kept as strings, so a CSV and a JSON-lines catalog
of the same items give the same ``ids.json``.

``embed_catalog`` writes three files to the output directory:

- ``vectors.npy``: float32 ``(count, dimension)``, L2-normalised, row i is item i;
- ``ids.json``: the item ids in row order;
- ``manifest.json``: model version and directory, dimension, count, text recipe, creation
  time (UTC, ISO-8601), how many rows were encoded and how many reused, and the content hash
  of each row's text (the key for reuse).

Re-running on a catalog where few items changed re-encodes only those: a row whose text hash
was in the previous output, made with the same model version and recipe, is copied from the
previous ``vectors.npy``. Files are written to temporary names and renamed, manifest last, so
an interrupted run leaves the previous output readable.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from encoders.errors import CatalogError
from encoders.text import TEXT_RECIPE, item_text

__all__ = [
    "IDS_FILE",
    "MANIFEST_FILE",
    "VECTORS_FILE",
    "Catalog",
    "EmbedResult",
    "TextEncoder",
    "embed_catalog",
    "load_embeddings",
    "read_catalog",
    "text_hash",
]

VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.json"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
TEXT_HASH_CHARS = 32
REQUIRED_COLUMNS = ("item_id", "title")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


class TextEncoder(Protocol):
    """What ``embed_catalog`` needs of an encoder (``BertEncoder`` is one)."""

    dimension: int
    max_seq_length: int

    @property
    def model_version(self) -> str: ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = ..., normalize: bool = ...,
        show_progress: bool = ..., on_batch: Callable[[int], None] | None = ...,
    ) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """Catalog records in file order, with their ids (strings) and texts from the recipe."""

    path: Path | None
    records: list[dict[str, Any]]
    ids: list[str] = field(init=False)
    texts: list[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", [str(record["item_id"]) for record in self.records])
        object.__setattr__(self, "texts", [item_text(record) for record in self.records])

    def __len__(self) -> int:
        return len(self.records)

    def text_by_id(self) -> dict[str, str]:
        """Item id → text to encode."""
        return dict(zip(self.ids, self.texts, strict=True))


@dataclass(frozen=True, kw_only=True)
class EmbedResult:
    """What ``embed_catalog`` did: where, how many rows, how many encoded and reused."""

    out_dir: Path
    count: int
    dimension: int
    encoded: int
    reused: int
    model_version: str
    manifest: dict[str, Any]


def text_hash(text: str) -> str:
    """Content hash of one item text (the key under which its vector is reused)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:TEXT_HASH_CHARS]


def _iter_csv(path: Path, handle: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CatalogError(
            f"{path}: the CSV header lacks {', '.join(missing)} (found: {', '.join(header) or 'nothing'})"
        )
    for record in reader:
        if None in record:
            raise CatalogError(f"{path}:{reader.line_num}: more fields than the header has")
        yield reader.line_num, {key: value for key, value in record.items() if value != ""}


def _iter_json_lines(path: Path, handle: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise CatalogError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
        yield line_number, record


def _is_json_lines(path: Path, first_line: str) -> bool:
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return True
    return path.suffix.lower() != ".csv" and first_line.lstrip().startswith("{")


def read_catalog(path: str | Path) -> Catalog:
    """Read a CSV or JSON-lines catalog; every problem is a one-line ``CatalogError``.

    Errors: the file is missing or empty, the ``item_id`` or ``title`` field is missing, an
    id is empty or repeated (the message names both lines), a JSON line is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such catalog file")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first_line = handle.readline()
            if not first_line.strip():
                raise CatalogError(f"{path}: the catalog is empty")
            handle.seek(0)
            parse = _iter_json_lines if _is_json_lines(path, first_line) else _iter_csv
            rows = parse(path, handle)
            records = _checked_records(path, rows)
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not records:
        raise CatalogError(f"{path}: the catalog has no items")
    return Catalog(path=path, records=records)


def _checked_records(path: Path, rows: Iterator[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}
    for line_number, record in rows:
        for name in REQUIRED_COLUMNS:
            if record.get(name) is None or str(record[name]).strip() == "":
                raise CatalogError(f"{path}:{line_number}: the record has no {name}")
        item_id = str(record["item_id"])
        if item_id in first_seen:
            raise CatalogError(
                f"{path}:{line_number}: duplicate item_id {item_id!r} (first on line {first_seen[item_id]})"
            )
        first_seen[item_id] = line_number
        records.append(record)
    return records


def load_embeddings(out_dir: str | Path) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Read back ``(vectors, ids, manifest)`` written by ``embed_catalog``."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        ids = json.loads((out_dir / IDS_FILE).read_text(encoding="utf-8"))
        vectors = np.load(out_dir / VECTORS_FILE)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{out_dir}: not a complete embeddings directory ({exc})") from exc
    if vectors.shape[0] != len(ids) or manifest.get("count") != len(ids):
        raise CatalogError(f"{out_dir}: vectors, ids and manifest disagree on the number of items")
    return vectors, ids, manifest


def _previous_vectors(out_dir: Path, model_version: str, dimension: int) -> dict[str, np.ndarray]:
    """Text hash → vector from an earlier run with the same model and recipe ({} if none)."""
    try:
        vectors, _, manifest = load_embeddings(out_dir)
    except CatalogError:
        return {}
    hashes = manifest.get("text_hashes", [])
    same_model = manifest.get("model") == model_version and manifest.get("text_recipe") == TEXT_RECIPE
    if not same_model or len(hashes) != vectors.shape[0] or vectors.shape[1:] != (dimension,):
        return {}
    return {digest: vectors[row] for row, digest in enumerate(hashes)}


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def embed_catalog(
    catalog: Catalog | str | Path,
    out_dir: str | Path,
    encoder: TextEncoder,
    *,
    batch_size: int = 64,
    reuse: bool = True,
    on_batch: Callable[[int], None] | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
) -> EmbedResult:
    """Embed a catalog into ``out_dir`` (see the module docstring for the files).

    Only rows whose text is new since the previous run in ``out_dir`` are encoded (when
    ``reuse``); ``on_batch(k)`` reports progress in items, reused rows included.
    """
    if not isinstance(catalog, Catalog):
        catalog = read_catalog(catalog)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CatalogError(f"{out_dir}: the output path exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    model_version = encoder.model_version
    hashes = [text_hash(text) for text in catalog.texts]
    previous = _previous_vectors(out_dir, model_version, encoder.dimension) if reuse else {}
    vectors = np.empty((len(catalog), encoder.dimension), dtype=np.float32)
    to_encode = [row for row, digest in enumerate(hashes) if digest not in previous]
    for row, digest in enumerate(hashes):
        if digest in previous:
            vectors[row] = previous[digest]
    reused = len(catalog) - len(to_encode)
    if on_batch is not None and reused:
        on_batch(reused)
    if to_encode:
        new_texts = [catalog.texts[row] for row in to_encode]
        vectors[to_encode] = encoder.encode(new_texts, batch_size=batch_size, on_batch=on_batch)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "model": model_version,
        "model_dir": str(getattr(encoder, "model_dir", "")),
        "max_seq_length": encoder.max_seq_length,
        "dimension": encoder.dimension,
        "count": len(catalog),
        "normalized": True,
        "dtype": "float32",
        "text_recipe": TEXT_RECIPE,
        "catalog": str(catalog.path) if catalog.path is not None else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoded": len(to_encode),
        "reused": reused,
        **dict(extra_manifest or {}),
        "text_hashes": hashes,
    }
    _write_atomically(out_dir / VECTORS_FILE, lambda path: _save_npy(path, vectors))
    ids_json = json.dumps(catalog.ids)
    _write_atomically(out_dir / IDS_FILE, lambda path: path.write_text(ids_json, encoding="utf-8"))
    _write_atomically(
        out_dir / MANIFEST_FILE,
        lambda path: path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"),
    )
    return EmbedResult(
        out_dir=out_dir, count=len(catalog), dimension=encoder.dimension, encoded=len(to_encode),
        reused=reused, model_version=model_version, manifest=manifest,
    )


def _save_npy(path: Path, vectors: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, vectors)
