"""The demo's errors: one line for the user (``xsell demo`` exits 2 with it).

XsellError (stream.errors)
└── DemoError          the demo cannot start or run (a previous demo still runs, the
                       worker died or never got ready, a bad option or file)
"""

from __future__ import annotations

from stream.errors import XsellError

__all__ = ["DemoError"]


class DemoError(XsellError):
    """The demo cannot start or run; the message says what and where."""
