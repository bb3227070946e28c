"""The exceptions of ``stream.engine``, in one tree::

    EngineError                anything the engine reports
    ├── InvalidEvent           an event failed validation; ``reason`` is a stable string
    ├── StateFormatError       bytes given to a ``from_bytes`` are not a state this code wrote
    ├── InputFormatError       a data file (baskets, event log) cannot be read; says where
    └── EngineConfigError      a configuration value that cannot work

``InvalidEvent.reason`` uses the vocabulary listed in ``stream.engine.events.REJECTION_REASONS``
so that the stream can label dead letters and metrics with it.
"""

from __future__ import annotations

__all__ = ["EngineConfigError", "EngineError", "InputFormatError", "InvalidEvent", "StateFormatError"]


class EngineError(Exception):
    """Base of every error raised by the association engine."""


class InvalidEvent(EngineError):
    """An event was rejected; ``reason`` is a stable machine string such as ``missing_field:ts``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class StateFormatError(EngineError):
    """Serialised state has the wrong magic, version or length."""


class EngineConfigError(EngineError):
    """A configuration value that cannot work (negative half-life, zero capacity...)."""


class InputFormatError(EngineError):
    """A data file cannot be read; the message names the file and line."""
