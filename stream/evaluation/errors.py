"""The evaluation's exceptions::

    EvaluationError          the log cannot be evaluated (too short, no targets, bad setting)

Readers raise ``stream.engine.InputFormatError`` and catalogs ``encoders.CatalogError``; the
CLI turns all of them into one-line ``stream.errors.UsageError``.
"""

from __future__ import annotations

__all__ = ["EvaluationError"]


class EvaluationError(Exception):
    """The events or settings given cannot be evaluated."""
