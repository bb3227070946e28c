"""Dead-lettering, the one way every agent parks a message it cannot accept."""

from __future__ import annotations

from typing import Any

from stream import records
from stream.app import dead_letter_topic, metrics

__all__ = ["dead_letter"]


async def dead_letter(message: Any, reason: str, detail: str = "") -> None:
    """Send ``message`` (a Faust message) to ``dead-letter`` with its origin and ``reason``.

    The metric is labelled with the reason's code before any ``:`` (``missing_field``,
    not ``missing_field:title``), so its label values stay few.
    """
    metrics.dead_letters.labels(topic=message.topic, reason=reason.split(":")[0]).inc()
    await dead_letter_topic.send(
        key=message.key,
        value=records.dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            reason=reason,
            detail=detail,
        ),
    )
