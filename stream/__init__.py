"""xsell's stream side: the Faust app, its agents, tables, views, metrics and the CLI.

Importing this package is cheap: the Faust app lives in ``stream.app`` and is imported
only by the commands that run it. Pure logic shared with offline evaluation lives in
``stream.engine``, which imports neither Faust nor aiokafka.
"""

__version__ = "0.1.0"
