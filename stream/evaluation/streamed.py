"""The stream's own recommender, replayed offline: same engine classes, same ranking settings.

``StreamState`` holds what the interactions and co-occurrence agents hold, in one process:
a ``UserActivity`` and a ``UserProfile`` per user, one ``CooccurrenceStore`` and the
``TransactionTally``. Events arrive in time order, so each user's buffer is flushed as
soon as an event is applied (the stream's partition watermark would apply it a little later;
the counts are the same, and the protocol asks for "scored, then applied").

Three rankers read the state through ``stream.engine.recommend_many`` with the
``RankingConfig`` the worker's settings give (``Settings.ranking_config``, the
``XSELL_RANK_*`` variables), exactly as ``stream.agents.interactions._rank`` calls it:

* ``hybrid``: associations of the recent items (``best_lift_rules_many`` over the published
  top partners of every channel, read both ways, as ``Replica.rules_many``), the item index
  (with a catalog) queried with the user's blended vector, and trending items
  (``TrendingItems``, as ``Replica.trending``);
* ``cooccurrence``: the associations only;
* ``embedding``: the vector search only (needs a catalog).

Trending items follow every applied event through ``TrendingItems``, the structure the
stream's replica keeps: the replica takes each item's new counts as the co-occurrence agent
publishes them and ranks once per interactions batch, which at a live shop's rates holds a
few to a few dozen events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import groupby
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.engine import (
    CooccurrenceStore,
    Event,
    ExactSimilarity,
    ProfileConfig,
    RankingConfig,
    RecommendationRequest,
    SessionConfig,
    TransactionTally,
    UserActivity,
    UserProfile,
    decay_weight,
    recommend_many,
)
from stream.engine.retrieval import (
    ASSOCIATION_DEPTH,
    PUBLISHED_PARTNERS,
    TRENDING_DEPTH,
    PrecededBy,
    TrendingItems,
    best_lift_rules_many,
    blend_query_vector,
)
from stream.engine.rules import AssociationRule
from stream.evaluation.protocol import LoggedEvent
from stream.settings import DEFAULT_BATCH_SIZE

__all__ = ["StreamRanker", "StreamState"]

WARM_CHUNK_EVENTS = DEFAULT_BATCH_SIZE
LOCAL_SOURCE = "local"
NO_VECTOR_DIMENSION = 1


class StreamState:
    """Users, profiles, co-occurrence counts and N, fed one event at a time (an ``Observer``)."""

    def __init__(
        self,
        *,
        item_ids: Sequence[str] = (),
        item_vectors: NDArray[np.floating] | None = None,
        sessions: SessionConfig | None = None,
    ) -> None:
        self.sessions = sessions or SessionConfig()
        self.store = CooccurrenceStore()
        self.tally = TransactionTally()
        self.users: dict[str, UserActivity] = {}
        self.profiles: dict[str, UserProfile] = {}
        self.similarity: ExactSimilarity | None = None
        self.vector_rows: dict[str, int] = {}
        self.vectors: NDArray[np.float32] | None = None
        dimension = NO_VECTOR_DIMENSION
        if item_vectors is not None and len(item_ids):
            self.vectors = np.asarray(item_vectors, dtype=np.float32)
            self.vector_rows = {item: row for row, item in enumerate(item_ids)}
            self.similarity = ExactSimilarity(item_ids, self.vectors)
            dimension = self.vectors.shape[1]
        self.profile_config = ProfileConfig(dimension=dimension)
        self._trending = TrendingItems(TRENDING_DEPTH)
        self._partners: dict[str, dict[str, list[tuple[str, float]]]] = {}  # as published
        self._preceded_by = PrecededBy()
        self._sequence = 0

    # -- feeding (Observer) ----------------------------------------------------------------

    def warm(self, events: Sequence[LoggedEvent]) -> None:
        for start in range(0, len(events), WARM_CHUNK_EVENTS):
            chunk = sorted(events[start : start + WARM_CHUNK_EVENTS], key=lambda event: event.user)
            for user, group in groupby(chunk, key=lambda event: event.user):
                self._apply_user(user, list(group))

    def apply(self, event: LoggedEvent) -> None:
        self._apply_user(event.user, [event])

    def _apply_user(self, user: str, events: list[LoggedEvent]) -> None:
        activity = self.users.get(user)
        if activity is None:
            activity = self.users[user] = UserActivity(self.sessions)
        engine_events = []
        for event in events:
            self._sequence += 1
            engine_events.append(Event(str(self._sequence), user, event.item, event.kind, event.ts))
        result = activity.ingest(engine_events)
        result.extend(activity.flush())
        self.store.apply_updates(result.updates)
        for item_id in {update.item_id for update in result.updates if update.partners}:
            before = self._partners.get(item_id)
            self._preceded_by.update(
                item_id, before, self._published_partners(item_id, self.store.items[item_id], fresh=True)
            )
        for update in result.updates:
            if update.occurrence is not None:
                self._trending.set_item(update.item_id, self.store.items[update.item_id].occurrences)
        for ts in result.opened:
            self.tally.add(LOCAL_SOURCE, decay_weight(ts, self.store.config))
        if result.applied:
            profile = self.profiles.get(user)
            if profile is None:
                profile = self.profiles[user] = UserProfile(self.profile_config)
            profile.update_many(result.applied, self._vectors_of([event.item_id for event in result.applied]))

    def _vectors_of(self, items: Sequence[str]) -> NDArray[np.float32] | None:
        if self.vectors is None:
            return None
        out = np.full((len(items), self.vectors.shape[1]), np.nan, dtype=np.float32)
        for row, item in enumerate(items):
            found = self.vector_rows.get(item)
            if found is not None:
                out[row] = self.vectors[found]
        return out

    # -- reading -----------------------------------------------------------------------------

    @property
    def trending(self) -> list[tuple[str, float]]:
        """The ``TRENDING_DEPTH`` items in the most transactions now (``Replica.trending``)."""
        return self._trending.top(TRENDING_DEPTH)

    def rules_many(self, item_ids: Sequence[str]) -> list[list[AssociationRule]]:
        """``Replica.rules_many(item_ids, top_k=ASSOCIATION_DEPTH, preceding=True)`` over this
        state: what the interactions agent ranks with."""
        entries: list[tuple[str, Any, Any]] = []
        for item_id in item_ids:
            state = self.store.items.get(item_id)
            if state is None:
                entries.append((item_id, {}, {}))
            else:
                entries.append((item_id, state.occurrences, self._published_partners(item_id, state)))
        return best_lift_rules_many(
            entries,
            consequent_count=self.store.occurrence,
            transactions=self.tally.total,
            top_k=ASSOCIATION_DEPTH,
            preceding=self._preceding,
        )

    def _preceding(self, item_id: str) -> list[tuple[str, Any, list[tuple[str, float]]]]:
        """The items whose published partners include ``item_id``, with their pairs with it."""
        items = self.store.items
        return [
            (other, items[other].occurrences, pairs)
            for other, pairs in self._preceded_by.before(item_id, self._partners.get)
        ]

    def _published_partners(
        self, item_id: str, state: Any, *, fresh: bool = False
    ) -> dict[str, list[tuple[str, float]]]:
        """What the co-occurrence agent publishes for the item (``fresh``: its partners just
        changed; otherwise the copy made then)."""
        partners = None if fresh else self._partners.get(item_id)
        if partners is None:
            partners = self._partners[item_id] = {
                channel: [(key, count) for key, count, _ in sketch.top(PUBLISHED_PARTNERS)]
                for channel, sketch in state.partners.items()
            }
        return partners

    def request(self, user: str, ts: int) -> RecommendationRequest:
        """What the interactions agent asks for this user (no pending events: all are applied)."""
        profile = self.profiles.get(user)
        if profile is None:
            return RecommendationRequest(user_id=user)
        empty = np.zeros((0, self.profile_config.dimension), dtype=np.float32)
        return RecommendationRequest(
            user_id=user,
            query_vector=blend_query_vector(profile.query_vector(ts), empty) if self.vectors is not None else None,
            recent_items=[item for item, _, _ in profile.recent],
            purchased=frozenset(profile.purchased),
        )


class StreamRanker:
    """One view of a ``StreamState``: which candidate sources ``recommend_many`` gets."""

    def __init__(
        self,
        state: StreamState,
        *,
        associations: bool = True,
        similar: bool = True,
        trending: bool = True,
        config: RankingConfig | None = None,
    ) -> None:
        self.state = state
        self.use_associations = associations
        self.use_similar = similar
        self.use_trending = trending
        self.config = config or RankingConfig()

    def rank(self, user: str, ts: int, depth: int) -> list[str]:
        state = self.state
        ranked = recommend_many(
            [state.request(user, ts)],
            similar=state.similarity if self.use_similar else None,
            associations=state.rules_many if self.use_associations else None,
            trending=state.trending if self.use_trending else (),
            config=replace(self.config, top_k=max(depth, self.config.top_k)),
        )[0]
        return [item["item_id"] for item in ranked]
