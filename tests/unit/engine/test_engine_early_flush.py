"""After a forced flush (a stream partition that went idle applies buffered events before
the watermark passes them), an event older than one already applied is too late: applied
after it, its pairs would be counted in the wrong direction."""

from __future__ import annotations

from stream.engine import Event, SessionConfig, UserActivity

CONFIG = SessionConfig(session_gap_ms=1_800_000, allowed_lateness_ms=60_000)


def _pairs(updates) -> set[tuple[str, str, str]]:
    return {(update.item_id, partner, channel) for update in updates for partner, channel in update.partners}


def test_an_event_older_than_what_a_flush_applied_is_too_late() -> None:
    activity = UserActivity(CONFIG)
    first = activity.ingest([Event("e1", "u", "B", "click", 100_000)])
    assert not first.applied  # within the lateness: buffered
    flushed = activity.flush()  # the partition went idle: apply everything now
    assert [event.event_id for event in flushed.applied] == ["e1"]

    late = activity.ingest([Event("e0", "u", "A", "click", 90_000)])  # 10 s older, within the lateness

    assert [event.event_id for event in late.too_late] == ["e0"]
    assert not late.applied and not activity.flush().applied
    # An event at the same time or later is still welcome (equal times pair both ways).
    same = activity.ingest([Event("e2", "u", "C", "click", 100_000)])
    assert not same.too_late
    assert _pairs(activity.flush().updates) == {("B", "C", "click->click"), ("C", "B", "click->click")}


def test_without_a_forced_flush_the_same_arrival_order_is_reordered_by_event_time() -> None:
    activity = UserActivity(CONFIG)
    activity.ingest([Event("e1", "u", "B", "click", 100_000)])
    late = activity.ingest([Event("e0", "u", "A", "click", 90_000)])
    assert not late.too_late
    # A at 90 s precedes B at 100 s: the pair is A → B, as a recount by event time says.
    assert _pairs(activity.flush().updates) == {("A", "B", "click->click")}
