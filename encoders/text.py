"""The item text recipe: what text of a catalog record the encoder sees.

One recipe, used by ``xsell embed``, the encoder agent and fine-tuning alike, so that a
vector always means the same thing. The recipe, in order, joined by ``". "``:

1. ``title`` exactly as given (a record with only a title gives exactly the title);
2. ``Brand: <brand>`` when a brand is present;
3. ``Category: <a > b > c>`` when a category path is present (a ``>``-separated string or
   a list of levels; levels are stripped and re-joined with ``" > "``);
4. the description, whitespace collapsed and cut to ``DESCRIPTION_MAX_CHARS`` characters.

Empty or missing fields are skipped. The title goes first because the model truncates at
its maximum sequence length: what is cut is the tail of the description, never the title.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from encoders.errors import CatalogError

__all__ = ["DESCRIPTION_MAX_CHARS", "TEXT_RECIPE", "item_text"]

DESCRIPTION_MAX_CHARS = 400
TEXT_RECIPE = "title. Brand: brand. Category: a > b. description[:400] (v1)"
"""Identifies the recipe in manifests; change it whenever ``item_text`` changes."""


def _clean(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())


def _category_path(value: Any) -> str:
    if value is None:
        return ""
    levels = value if isinstance(value, list | tuple) else str(value).split(">")
    return " > ".join(level for level in (_clean(part) for part in levels) if level)


def item_text(record: Mapping[str, Any]) -> str:
    """The text to encode for one catalog record (see the module docstring for the recipe)."""
    if "title" not in record or record["title"] is None:
        raise CatalogError(f"record {record.get('item_id', '?')!r} has no title")
    parts = [str(record["title"])]
    brand = _clean(record.get("brand"))
    if brand:
        parts.append(f"Brand: {brand}")
    category = _category_path(record.get("category"))
    if category:
        parts.append(f"Category: {category}")
    description = _clean(record.get("description"))[:DESCRIPTION_MAX_CHARS]
    if description:
        parts.append(description)
    return ". ".join(parts) if len(parts) > 1 else parts[0]
