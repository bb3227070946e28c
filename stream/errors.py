"""The exceptions of xsell's stream side, in one tree::

    XsellError                 anything xsell reports to a user as one line
    ├── UsageError             a bad flag, file or value given to the CLI (exit code 2)
    ├── ConfigError            a setting that cannot work (bad value, mismatched partitions)
    └── LocalKafkaError        the local broker cannot start or stop (Java, jars, port)

The libraries keep their own small trees (``encoders.errors``, ``index.errors``,
``stream.engine.events.InvalidEvent``); the CLI turns those into ``UsageError``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "LocalKafkaError", "UsageError", "XsellError"]


class XsellError(Exception):
    """Base of every error xsell reports to a user as one line."""


class UsageError(XsellError):
    """A bad flag, file or value on the command line."""


class ConfigError(XsellError):
    """A setting that cannot work."""


class LocalKafkaError(XsellError):
    """The local development broker cannot start or stop."""
