"""The demo's generated catalog: products, ad campaigns and the planted complementary pairs.

A newcomer's machine has no product data, so the demo makes its own: a few thousand
products across realistic category paths (titles, brands, prices and descriptions written
per category, so that BERT similarity groups phones with phones and coffee with coffee),
a handful of ad campaigns whose text matches categories, and the *planted pairs*: the
most popular products of some categories (phones, cameras, printers, ...) each get
dedicated complements (a case and a charger made for that phone, ink for that printer).
The behaviour simulator (``stream.demo.simulator``) makes buyers of an anchor buy its
complements, and the summary checks that xsell discovered exactly those pairs.

Everything is a pure function of ``seed`` and ``size``: the same arguments give the same
catalog, byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stream.demo.categories import CAMPAIGNS, CATEGORIES, COMPLEMENTS, CategorySpec

__all__ = [
    "DEFAULT_CATALOG_SIZE",
    "DemoCatalog",
    "Product",
    "generate_catalog",
]

DEFAULT_CATALOG_SIZE = 2000
PLANTED_PER_CATEGORY = 3  # the most popular products of an anchor category get complements
MIN_PRODUCTS_PER_CATEGORY = 8


@dataclass(frozen=True, slots=True)
class Product:
    """One catalog item (the catalog upsert contract, plus its popularity rank in its category)."""

    item_id: str
    title: str
    brand: str
    category: str
    price: float
    description: str
    rank: int  # 0 = the most popular product of its category

    def to_record(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "brand": self.brand,
            "price": self.price,
            "in_stock": True,
        }


@dataclass(frozen=True)
class DemoCatalog:
    """Products by category (most popular first), campaigns, and the planted pairs."""

    products: tuple[Product, ...]
    by_category: dict[str, tuple[Product, ...]]
    campaigns: tuple[dict[str, Any], ...]
    planted: dict[str, tuple[str, ...]] = field(default_factory=dict)  # anchor item → its complements
    category_weights: dict[str, float] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.titles:
            self.titles.update((product.item_id, product.title) for product in self.products)

    def records(self) -> list[dict[str, Any]]:
        return [product.to_record() for product in self.products]

    def planted_pairs(self) -> list[tuple[str, str]]:
        return [(anchor, complement) for anchor, complements in self.planted.items() for complement in complements]

    def title_of(self, item_id: str) -> str:
        return self.titles.get(item_id, item_id)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> DemoCatalog:
        """A real catalog (upsert records): no planted pairs; campaigns from its categories."""
        products = tuple(
            Product(
                item_id=str(record["item_id"]),
                title=str(record.get("title") or record["item_id"]),
                brand=str(record.get("brand") or ""),
                category=str(record.get("category") or ""),
                price=float(record.get("price") or 0.0),
                description=str(record.get("description") or ""),
                rank=0,
            )
            for record in records
        )
        counts: dict[str, int] = {}
        for product in products:
            counts[product.category] = counts.get(product.category, 0) + 1
        common = sorted(counts, key=lambda category: (-counts[category], category))
        return cls(products=products, by_category={}, campaigns=tuple(campaigns_for_categories(common)))


def _model_name(spec: CategorySpec, brand: str, number: int, rng: random.Random) -> str:
    series = rng.choice(("", "Pro ", "Lite ", "Max ", "Air ", "Plus "))
    letter = spec.noun[0].upper()
    return f"{brand} {letter}{number} {series}".rstrip()


def _describe(spec: CategorySpec, brand: str, rng: random.Random) -> str:
    features = rng.sample(spec.features, k=min(3, len(spec.features)))
    return spec.blurb.format(brand=brand, noun=spec.noun) + " Features: " + ", ".join(features) + "."


def _price(spec: CategorySpec, rng: random.Random) -> float:
    low, high = spec.price
    return round(rng.uniform(low, high), 0) - 0.01 if high >= 50 else round(rng.uniform(low, high), 2)


def generate_catalog(*, size: int = DEFAULT_CATALOG_SIZE, seed: int = 0) -> DemoCatalog:
    """A catalog of about ``size`` products (at least ``MIN_PRODUCTS_PER_CATEGORY`` per category)."""
    rng = random.Random(f"xsell-demo-catalog-{seed}")
    per_category = max(MIN_PRODUCTS_PER_CATEGORY, size // len(CATEGORIES))
    anchors = {rule.anchor for rule in COMPLEMENTS}
    by_category: dict[str, list[Product]] = {}
    next_id = 1000
    for spec in CATEGORIES:
        products: list[Product] = []
        numbers = rng.sample(range(2, 20 * per_category), per_category)
        for rank, number in enumerate(numbers):
            brand = rng.choice(spec.brands)
            variant = rng.choice(spec.variants)
            model = _model_name(spec, brand, number, rng)
            products.append(
                Product(
                    item_id=f"p{next_id}",
                    title=f"{model} {spec.noun}, {variant}",
                    brand=brand,
                    category=spec.path,
                    price=_price(spec, rng),
                    description=_describe(spec, brand, rng),
                    rank=rank,
                )
            )
            next_id += 1
        by_category[spec.path] = products

    planted: dict[str, list[str]] = {}
    specs = {spec.path: spec for spec in CATEGORIES}
    for rule in COMPLEMENTS:
        targets = by_category[rule.complement]
        for anchor in by_category[rule.anchor][:PLANTED_PER_CATEGORY]:
            spec = specs[rule.complement]
            brand = anchor.brand if anchor.brand in spec.brands else rng.choice(spec.brands)
            model = anchor.title.split(",")[0]
            # A dedicated product, placed mid-list so that it sells mostly with its anchor.
            rank = len(targets) // 2 + len(planted.get(anchor.item_id, ())) + rng.randrange(len(targets) // 4 + 1)
            complement = Product(
                item_id=f"p{next_id}",
                title=f"{rule.noun} for {model}",
                brand=brand,
                category=rule.complement,
                price=_price(spec, rng),
                description=_describe(spec, brand, rng) + f" Made for the {model}.",
                rank=rank,
            )
            next_id += 1
            targets.insert(min(rank, len(targets)), complement)
            planted.setdefault(anchor.item_id, []).append(complement.item_id)
    frozen = {
        path: tuple(
            Product(p.item_id, p.title, p.brand, p.category, p.price, p.description, rank)
            for rank, p in enumerate(products)
        )
        for path, products in by_category.items()
    }
    weights = {spec.path: spec.weight * (1.5 if spec.path in anchors else 1.0) for spec in CATEGORIES}
    return DemoCatalog(
        products=tuple(product for products in frozen.values() for product in products),
        by_category=frozen,
        campaigns=tuple(campaign_records(CAMPAIGNS)),
        planted={anchor: tuple(complements) for anchor, complements in planted.items()},
        category_weights=weights,
    )


def campaign_records(campaigns: Iterable[tuple[str, str, list[str]]]) -> list[dict[str, Any]]:
    """Campaign upserts (the ``ad-campaigns`` contract)."""
    return [
        {"campaign_id": campaign_id, "text": text, "categories": list(categories), "active": True}
        for campaign_id, text, categories in campaigns
    ]


def campaigns_for_categories(categories: Iterable[str], limit: int = 6) -> list[dict[str, Any]]:
    """Campaigns for a real catalog: one per most common category, its text from the path."""
    chosen = list(dict.fromkeys(category for category in categories if category))[:limit]
    return campaign_records(
        (
            f"deals-{number}",
            f"Deals of the week on {category.split('>')[-1].strip().lower()} ({category.replace('>', ', ')})",
            [category],
        )
        for number, category in enumerate(chosen, start=1)
    )
