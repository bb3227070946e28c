"""The item text recipe."""

from __future__ import annotations

import pytest

from encoders import CatalogError, item_text
from encoders.text import DESCRIPTION_MAX_CHARS


def test_a_title_alone_gives_exactly_the_title() -> None:
    assert item_text({"item_id": "1", "title": "  Organic Bananas  "}) == "  Organic Bananas  "
    assert item_text({"title": "牛奶"}) == "牛奶"


def test_empty_fields_are_skipped() -> None:
    record = {"title": "Milk", "brand": "", "category": None, "description": "   "}
    assert item_text(record) == "Milk"


def test_full_record_follows_the_documented_order() -> None:
    record = {
        "title": "Galaxy S24",
        "brand": " Samsung ",
        "category": "Electronics> Phones >Smartphones",
        "description": "A  phone\nwith a camera.",
    }
    assert item_text(record) == (
        "Galaxy S24. Brand: Samsung. Category: Electronics > Phones > Smartphones. A phone with a camera."
    )


def test_category_may_be_a_list_and_description_is_cut() -> None:
    text = item_text({"title": "T", "category": ["A", " B "], "description": "x" * 1000})
    assert text == "T. Category: A > B. " + "x" * DESCRIPTION_MAX_CHARS


def test_a_record_without_title_is_an_error() -> None:
    with pytest.raises(CatalogError, match="no title"):
        item_text({"item_id": "7", "brand": "Acme"})
