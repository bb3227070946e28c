"""Validation reasons, serialisation round trips, ranking filters and ad frequency caps."""

from __future__ import annotations

import copy

import numpy as np
import orjson
import pytest

from stream.engine import (
    AdConfig,
    AdTargeter,
    AssociationRule,
    DictCatalog,
    EngineConfigError,
    Event,
    ExactSimilarity,
    InvalidEvent,
    ItemInfo,
    ProfileConfig,
    RecommendationRequest,
    SessionConfig,
    StateFormatError,
    UserActivity,
    UserProfile,
    recommend,
    validate_event,
)
from stream.engine.profiles import encode_profiles, query_vectors

NOW = 1_700_000_000_000
GOOD = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": NOW - 1000}


@pytest.mark.parametrize(
    ("raw", "kind", "reason"),
    [
        (b"x" * 70_000, "click", "too_large"),
        (b"{nope", "click", "not_json"),
        (b"[1, 2]", "click", "not_an_object"),
        (GOOD, "teleport", "unknown_kind"),
        (GOOD, None, "missing_field:kind"),
        ({**GOOD, "user_id": None}, "click", "missing_field:user_id"),
        ({**GOOD, "item_id": 1.5}, "click", "wrong_type:item_id"),
        ({**GOOD, "ts": "yesterday"}, "click", "bad_format:ts"),
        ({**GOOD, "ts": True}, "click", "wrong_type:ts"),
        ({**GOOD, "ts": NOW + 10**9}, "click", "ts_in_future"),
        ({**GOOD, "ts": 5}, "click", "ts_too_old"),
        ({**GOOD, "quantity": -1}, "purchase", "negative_quantity"),
        ({**GOOD, "item_id": "x" * 300}, "click", "field_too_long:item_id"),
        ({**GOOD, "event_id": ""}, "click", "empty_field:event_id"),
    ],
)
def test_rejection_reasons(raw, kind, reason):
    with pytest.raises(InvalidEvent) as caught:
        validate_event(raw, kind=kind, now_ms=NOW)
    assert caught.value.reason == reason


def test_accepts_bytes_iso_time_and_integer_ids():
    raw = orjson.dumps({"event_id": 7, "user_id": 9, "item_id": "a", "ts": "2023-11-14T22:13:20Z", "order_id": "o"})
    event = validate_event(raw, kind="purchase", now_ms=NOW)
    assert (event.event_id, event.user_id, event.ts, event.order_id) == ("7", "9", 1_700_000_000_000, "o")


@pytest.mark.parametrize("capacity", [0, 1, 4, 10, 50])
def test_a_state_read_with_a_smaller_id_memory_keeps_the_newest_ids(capacity):
    """Reading a state keeps what remembering its ids one by one (the reference) would keep."""
    events = [Event(f"e{n}", "u", f"i{n}", "click", 1000 + n) for n in range(10)]
    activity = UserActivity(SessionConfig(allowed_lateness_ms=0, dedup_capacity=10))
    activity.ingest(events)
    config = SessionConfig(allowed_lateness_ms=0, dedup_capacity=capacity)
    copy = UserActivity.from_bytes(activity.to_bytes(), config)
    reference = UserActivity(config)
    for event_id in activity.recent_order:
        reference._remember(event_id)
    assert list(copy.recent_order) == list(reference.recent_order)
    assert copy.recent_ids == reference.recent_ids


def test_state_round_trips():
    activity = UserActivity(SessionConfig(allowed_lateness_ms=10))
    activity.ingest(
        [
            Event("a", "u", "i1", "click", 1000),
            Event("b", "u", "i2", "cart", 1005),
            Event("c", "u", "i3", "click", 2000),
        ]
    )
    copy = UserActivity.from_bytes(activity.to_bytes(), SessionConfig(allowed_lateness_ms=10))
    more = [Event("d", "u", "i4", "purchase", 2001), Event("b", "u", "i2", "cart", 1005)]
    left, right = activity.ingest(more), copy.ingest(more)
    assert left.updates == right.updates and len(left.duplicates) == len(right.duplicates) == 1
    config = ProfileConfig(dimension=16)
    profile = UserProfile(config)
    profile.update_many([Event("a", "u", "i1", "purchase", 1000)], np.ones((1, 16)), ["c1"])
    for dtype, tolerance in (("float16", 1e-3), ("float32", 1e-6)):
        data = profile.to_bytes(dtype)
        back = UserProfile.from_bytes(data, config)
        assert np.allclose(back.long, profile.long, rtol=tolerance)
        assert back.purchased == profile.purchased and back.recent == profile.recent
    assert len(profile.to_bytes("float16")) < 40 + 2 * 16 * 2 + 100
    with pytest.raises(StateFormatError):
        UserProfile.from_bytes(b"garbage" * 10, config)


def test_a_profile_kept_after_writing_answers_as_one_read_back():
    """The in-memory profile after ``stored_bytes`` is the one ``from_bytes`` gives, bit for bit,
    also after both take the same next events (a worker that never restarted answers as one that did)."""
    config = ProfileConfig(dimension=16)
    rng = np.random.default_rng(0)
    kept = UserProfile(config)
    first = [Event("a", "u", "i1", "click", 1000), Event("b", "u", "i2", "cart", 1500)]
    kept.update_many(first, rng.normal(size=(2, 16)), ["c1", None])
    before = kept.long.copy()
    expected = kept.to_bytes()
    data = kept.stored_bytes()
    assert data == expected  # what is written does not change
    read = UserProfile.from_bytes(data, config)
    assert not np.array_equal(kept.long, before)  # float16 rounding: the kept vectors did change
    assert np.array_equal(kept.short, read.short) and np.array_equal(kept.long, read.long)
    later = [Event("c", "u", "i3", "purchase", 9000)]
    vector = rng.normal(size=(1, 16))
    for profile in (kept, read):
        profile.update_many(later, vector, ["c2"])
    assert np.array_equal(kept.short, read.short) and np.array_equal(kept.long, read.long)
    assert np.array_equal(kept.query_vector(10_000), read.query_vector(10_000))
    assert kept.categories == read.categories and kept.recent == read.recent


def test_recommend_filters_and_explains():
    rule = lambda a, c, lift: AssociationRule(a, c, "purchase->purchase", 0.1, 0.5, lift, 3.0, 1, 1, 1, 1)  # noqa: E731
    rules = {
        "phone": [
            rule("phone", "case", 4.1),
            rule("phone", "charger", 2.0),
            rule("phone", "old", 3.0),
            rule("phone", "bought", 5.0),
        ]
    }
    catalog = DictCatalog({"old": ItemInfo(deleted=True), "charger": ItemInfo(in_stock=False)})
    similar = ExactSimilarity(["case", "cable", "phone"], np.eye(3))
    items = recommend(
        RecommendationRequest(
            user_id="u",
            query_vector=np.array([0, 1.0, 0]),
            recent_items=["phone"],
            purchased={"bought"},
            trigger_item="phone",
        ),
        similar=similar,
        associations=lambda items: [rules.get(item, []) for item in items],
        catalog=catalog,
        trending=[("hot", 10.0)],
    )
    ids = [item["item_id"] for item in items]
    assert {"old", "charger", "bought", "phone"}.isdisjoint(ids)
    assert ids[0] == "case" and items[0]["reasons"] == ["bought together with phone (lift 4.1)"]
    assert "similar to your recent views" in items[ids.index("cable")]["reasons"]
    assert "hot" in ids


def test_ad_frequency_cap_by_event_time():
    targeter = AdTargeter(AdConfig(threshold=0.5, frequency_cap=2, cap_window_ms=1000))
    targeter.upsert("shoes", np.array([1.0, 0.0]), ["sport"])
    targeter.upsert("books", np.array([0.0, 1.0]))
    user = np.array([[1.0, 0.1]])
    sent = [targeter.target_many(["u"], user, [{"sport": 1.0}], [ts]) for ts in (0, 10, 20, 1500)]
    assert [[t.campaign_id for t in batch] for batch in sent] == [["shoes"], ["shoes"], [], ["shoes"]]


def _profiles_of_a_batch(config: ProfileConfig) -> list[UserProfile]:
    """Profiles as a batch holds them: different times, one empty, one with only a long past."""
    rng = np.random.default_rng(7)
    profiles = []
    for user, stamps in enumerate(([1000, 5000], [200_000], [], [3_000, 4_000, 10_000_000])):
        profile = UserProfile(config)
        events = [Event(f"e{user}-{ts}", f"u{user}", f"i{ts}", "cart", ts) for ts in stamps]
        profile.update_many(events, rng.normal(size=(len(events), config.dimension)), [None] * len(events))
        profiles.append(profile)
    return profiles


def test_query_vectors_of_a_batch_are_each_profiles_decayed_blend():
    """Against the formula worked out here: both sums decayed from the profile's time to ``ts``
    (not when ``ts`` is earlier or None), each normalised, blended by ``short_share``,
    normalised. A row does not depend on its batch."""
    config = ProfileConfig(dimension=8, short_half_life_ms=60_000, long_half_life_ms=600_000)
    profiles = _profiles_of_a_batch(config)
    # A minute later, none, an empty profile, and a day later (the short sum underflows to 0).
    times = [65_000, None, 1_000, 10_000_000 + 86_400_000]

    def expected(profile: UserProfile, ts: int | None, short_share: float) -> np.ndarray:
        gap = 0 if profile.reference_ts is None or ts is None else max(0, ts - profile.reference_ts)
        parts = (
            (profile.short * 2.0 ** (-gap / 60_000), short_share),
            (profile.long * 2.0 ** (-gap / 600_000), 1 - short_share),
        )
        blend = sum(share * part / np.linalg.norm(part) for part, share in parts if np.linalg.norm(part) > 0)
        return blend / np.linalg.norm(blend) if np.linalg.norm(blend) > 0 else np.zeros(8)

    for short_share in (0.5, 0.8):
        rows = query_vectors(profiles, times, short_share)
        assert rows.shape == (4, 8) and rows.dtype == np.float32
        for row, profile, ts in zip(rows, profiles, times, strict=True):
            assert row == pytest.approx(expected(profile, ts, short_share), abs=1e-6)
            assert np.array_equal(row, profile.query_vector(ts, short_share))
        assert not rows[2].any()  # the empty profile
        assert rows[3] == pytest.approx(profiles[3].long / np.linalg.norm(profiles[3].long), abs=1e-6)
    with pytest.raises(EngineConfigError):
        query_vectors([UserProfile(config), UserProfile(ProfileConfig(dimension=4))], [None, None])


def test_encoding_a_batch_of_profiles_writes_each_as_alone_and_keeps_what_is_read_back():
    config = ProfileConfig(dimension=8)
    profiles = _profiles_of_a_batch(config)
    alone = [encode_profiles([profile], stored=True)[0] for profile in copy.deepcopy(profiles)]
    originals = [(profile.short.copy(), profile.long.copy()) for profile in profiles]
    encoded = encode_profiles(profiles, stored=True)
    assert encoded == alone  # a profile's bytes do not depend on its batch
    for data, profile, (short, long) in zip(encoded, profiles, originals, strict=True):
        read = UserProfile.from_bytes(data, config)
        assert np.array_equal(profile.short, read.short) and np.array_equal(profile.long, read.long)
        assert profile.short == pytest.approx(short, rel=2e-3, abs=1e-12)  # float16: 11 bits
        assert profile.long == pytest.approx(long, rel=2e-3, abs=1e-12)
        assert read.recent == profile.recent and read.reference_ts == profile.reference_ts
        assert profile.short.base is None or profile.short.base.shape == (2, 8)  # not a view of the batch
    assert encode_profiles([]) == []
    with pytest.raises(EngineConfigError):
        encode_profiles(profiles, "float64")
