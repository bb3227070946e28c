"""The demo's behaviour simulator: shoppers with interests, and purchases that follow planted pairs.

Each simulated user has two or three interest categories (anchor categories such as phones
or cameras are a little more popular). Visits arrive as a Poisson process; in a visit the
user browses a few products of one interest (clicks, popular products more often: a
Zipf law over the category's popularity ranks), and with some probability carts and buys
the most popular product seen. Whoever buys an anchor product also buys each of its
planted complements with ``complement_probability`` in the same order (one ``order_id``),
and now and then adds an unrelated product, so the data has noise to see through.

The stream is a pure function of the catalog, the configuration and the seed: events come
out in event-time order with times relative to the start (``offset_ms``); the replay adds
the wall-clock start, so event time follows the clock and the worker's lateness buffer
releases events a few seconds after they are sent.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stream.demo.catalog import DemoCatalog

__all__ = ["DEFAULT_USERS", "SimulatedEvent", "SimulatorConfig", "simulate"]

DEFAULT_USERS = 5000
DEFAULT_EVENTS_PER_SECOND = 200.0
DEFAULT_BUY_PROBABILITY = 0.6
DEFAULT_COMPLEMENT_PROBABILITY = 0.75
DEFAULT_NOISE_PROBABILITY = 0.2
DEFAULT_ZIPF_EXPONENT = 1.2
MEAN_EVENTS_PER_VISIT = 8.8  # measured on the defaults; it only sets the visit arrival rate


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """How the simulated shoppers behave."""

    seed: int = 0
    users: int = DEFAULT_USERS
    events_per_second: float = DEFAULT_EVENTS_PER_SECOND
    buy_probability: float = DEFAULT_BUY_PROBABILITY
    complement_probability: float = DEFAULT_COMPLEMENT_PROBABILITY
    noise_probability: float = DEFAULT_NOISE_PROBABILITY
    zipf_exponent: float = DEFAULT_ZIPF_EXPONENT
    clicks_per_visit: tuple[int, int] = (2, 5)
    seconds_between_events: tuple[float, float] = (1.0, 6.0)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users must be >= 1, got {self.users}")
        if self.events_per_second <= 0:
            raise ValueError(f"events_per_second must be > 0, got {self.events_per_second}")


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """One behaviour event; ``offset_ms`` is event time after the start of the replay."""

    offset_ms: int
    kind: str  # click, cart or purchase
    event_id: str
    user_id: str
    item_id: str
    session_id: str
    order_id: str | None = None
    price: float | None = None

    def to_record(self, start_ms: int) -> dict[str, Any]:
        """The event contract (without ``kind``: the topic says it)."""
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "ts": start_ms + self.offset_ms,
            "session_id": self.session_id,
        }
        if self.order_id is not None:
            record["order_id"] = self.order_id
            record["quantity"] = 1
        if self.price is not None:
            record["price"] = self.price
        return record


class _Shoppers:
    """Users' interests and the per-category popularity laws, drawn once from the seed."""

    def __init__(self, catalog: DemoCatalog, config: SimulatorConfig, rng: random.Random) -> None:
        self.catalog = catalog
        self.config = config
        self.categories = sorted(catalog.by_category)
        weights = [catalog.category_weights.get(path, 1.0) for path in self.categories]
        self.interests = [
            rng.choices(self.categories, weights=weights, k=rng.choice((2, 3))) for _ in range(config.users)
        ]
        self.popularity = {
            path: list(itertools.accumulate(1.0 / (rank + 1) ** config.zipf_exponent for rank in range(len(items))))
            for path, items in catalog.by_category.items()
        }

    def pick(self, category: str, rng: random.Random) -> int:
        """A popularity rank in ``category`` (0 most often)."""
        return rng.choices(range(len(self.popularity[category])), cum_weights=self.popularity[category])[0]


def _visit(
    shoppers: _Shoppers, visit_number: int, start_s: float, rng: random.Random
) -> tuple[int, list[tuple[float, str, str, str | None]]]:
    """One visit: the user, and its events as ``(seconds, kind, item_id, order_id)`` in time order."""
    config = shoppers.config
    catalog = shoppers.catalog
    user = rng.randrange(config.users)
    category = rng.choice(shoppers.interests[user])
    products = catalog.by_category[category]
    low, high = config.seconds_between_events
    clock = start_s
    steps: list[tuple[float, str, str, str | None]] = []

    def step(kind: str, item_id: str, order_id: str | None = None) -> None:
        nonlocal clock
        steps.append((clock, kind, item_id, order_id))
        clock += rng.uniform(low, high)

    seen = sorted({shoppers.pick(category, rng) for _ in range(rng.randint(*config.clicks_per_visit))})
    for rank in rng.sample(seen, len(seen)):
        step("click", products[rank].item_id)
    if rng.random() >= config.buy_probability:
        return user, steps
    chosen = products[seen[0]].item_id
    basket = [chosen]
    for complement in catalog.planted.get(chosen, ()):
        if rng.random() < config.complement_probability:
            step("click", complement)
            basket.append(complement)
    if rng.random() < config.noise_probability:
        other = rng.choice(shoppers.interests[user])
        basket.append(catalog.by_category[other][shoppers.pick(other, rng)].item_id)
    basket = list(dict.fromkeys(basket))
    for item_id in basket:
        step("cart", item_id)
    order_id = f"o{visit_number}"
    for item_id in basket:
        steps.append((clock, "purchase", item_id, order_id))  # one checkout: the order's lines share a time
    return user, steps


def simulate(catalog: DemoCatalog, config: SimulatorConfig = SimulatorConfig()) -> Iterator[SimulatedEvent]:
    """An endless stream of behaviour events in event-time order (deterministic for a seed)."""
    rng = random.Random(f"xsell-demo-behaviour-{config.seed}")
    shoppers = _Shoppers(catalog, config, rng)
    prices = {product.item_id: product.price for product in catalog.products}
    visits_per_second = config.events_per_second / MEAN_EVENTS_PER_VISIT
    pending: list[tuple[float, int, str, str, int, int, str | None]] = []  # heap by (time, sequence)
    sequence = itertools.count()
    visit_numbers = itertools.count()
    next_visit_s = 0.0
    emitted = 0
    while True:
        # Open every visit that starts before the earliest pending event, so output stays ordered.
        while not pending or next_visit_s <= pending[0][0]:
            number = next(visit_numbers)
            user, steps = _visit(shoppers, number, next_visit_s, rng)
            for seconds, kind, item_id, order_id in steps:
                heapq.heappush(pending, (seconds, next(sequence), kind, item_id, user, number, order_id))
            next_visit_s += -math.log(1.0 - rng.random()) / visits_per_second
        seconds, _, kind, item_id, user, visit, order_id = heapq.heappop(pending)
        emitted += 1
        yield SimulatedEvent(
            offset_ms=int(seconds * 1000),
            kind=kind,
            event_id=f"demo{config.seed}-{emitted}",
            user_id=f"u{user}",
            item_id=item_id,
            session_id=f"s{visit}",
            order_id=order_id,
            price=prices.get(item_id) if kind == "purchase" else None,
        )
