"""The exceptions of the encoders library, in one tree::

    EncoderError               anything the encoders library reports as one line
    ├── ModelNotFoundError     a model directory that is missing or lacks model files
    ├── CatalogError           a catalog file that cannot be read (format, ids, titles)
    └── TrainingDataError      pairs or events that give nothing to fine-tune on

Messages say what was expected, what came and where (a path, a line). The ``xsell`` CLI
turns every ``EncoderError`` into a one-line usage error with exit code 2.
"""

from __future__ import annotations

__all__ = ["CatalogError", "EncoderError", "ModelNotFoundError", "TrainingDataError"]


class EncoderError(Exception):
    """Base of every error the encoders library raises on purpose."""


class ModelNotFoundError(EncoderError):
    """A model directory does not exist or lacks the files a model needs."""


class CatalogError(EncoderError):
    """A catalog file is empty, malformed, or breaks the ``item_id``/``title`` contract."""


class TrainingDataError(EncoderError):
    """Fine-tuning input (pairs or events) is malformed or yields no usable pairs."""
