"""The worker's Faust tables: compact bytes values, changelog topics for recovery.

| table                | key       | partitioned with        | value                               |
|----------------------|-----------|-------------------------|-------------------------------------|
| user-state           | user id   | clicks/carts/purchases  | the engine's user state (profile, sessions, recent ids) |
| user-recommendations | user id   | clicks/carts/purchases  | the user's latest cross-recommendation (JSON)           |
| cooccurrence         | item id   | item-pairs              | the engine's per-item partner counts                    |

Values are the engine's own versioned serialisations (bytes), so a table holds what the
offline code would hold, and a changelog record is one key's whole state.

A worker defines only the tables of its role (``XSELL_ROLE``): a table's changelog is part
of the worker's subscription, and Faust's assignor gives a changelog's partitions with the
source partitions of the workers that subscribe to both, so a co-occurrence worker must not
subscribe to the user tables' changelogs, nor an interactions worker to ``cooccurrence``'s.
Importing a table the role does not define fails with an ImportError.
"""

from __future__ import annotations

from stream.app import ROLE_TABLES, app, settings

__all__ = ["cooccurrence_table", "user_recommendations_table", "user_state_table"]


def _table(name: str):  # type: ignore[no-untyped-def]
    # Keys and values are raw bytes: the app's key_serializer and value_serializer.
    return app.Table(
        name,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
    )


if settings.runs_interactions:
    user_state_table, user_recommendations_table = (_table(name) for name in ROLE_TABLES["interactions"])
if settings.runs_cooccurrence:
    (cooccurrence_table,) = (_table(name) for name in ROLE_TABLES["cooccurrence"])
