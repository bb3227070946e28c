"""What the demo shows: a rich live view on a terminal, plain status lines anywhere else.

``LiveState`` is what the runner learns while the replay runs (events sent, what the
worker's ``/metrics`` say, the latest recommendations and ad targets from their topics,
the latest association record per item). ``DemoDisplay`` draws it: a ``rich.live`` layout
refreshed twice a second when stdout is a terminal, otherwise one status line every few
seconds (CI logs, ``make demo | tee``, the tests' subprocess).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stream.demo.scoring import DEFAULT_CHANNEL, Discovered, discovered_associations, strongest

__all__ = ["DemoDisplay", "LiveState"]

LATEST_SHOWN = 5
STRONGEST_SHOWN = 8
TITLE_CHARS = 48
REASON_TITLE_CHARS = 24  # a live row stays one line; the summary and JSON keep the whole title
DEFAULT_STATUS_EVERY_S = 5.0
LIVE_REFRESHES_PER_SECOND = 2


@dataclass
class LiveState:
    """Everything the live view shows; the runner writes it, the display reads it."""

    urls: dict[str, str] = field(default_factory=dict)
    titles: Mapping[str, str] = field(default_factory=dict)
    replay_started: float | None = None  # monotonic
    produced: int = 0
    consumed: float = 0.0  # input events the worker has taken (any outcome), from /metrics
    lag: float = 0.0
    throttled: bool = False  # the replay waits for the worker to catch up
    dead_letters: float = 0.0
    recommendations: int = 0
    ad_targets: int = 0
    latest_recommendations: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LATEST_SHOWN))
    latest_ad_targets: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LATEST_SHOWN))
    associations: dict[str, dict[str, Any]] = field(default_factory=dict)
    _rate_marks: deque[tuple[float, int, float]] = field(default_factory=lambda: deque(maxlen=20))

    def title(self, item_id: str, limit: int | None = None) -> str:
        title = self.titles.get(item_id, item_id)
        return title if limit is None or len(title) <= limit else title[: limit - 1] + "…"

    def readable(self, reason: str) -> str:
        """A reason with the item ids it names replaced by short titles."""
        return " ".join(
            self.title(word, REASON_TITLE_CHARS) if word in self.titles else word for word in reason.split(" ")
        )

    def mark_rates(self) -> tuple[float, float]:
        """Events/s sent and consumed over the last few seconds."""
        now = time.monotonic()
        self._rate_marks.append((now, self.produced, self.consumed))
        first = self._rate_marks[0]
        elapsed = now - first[0]
        if elapsed <= 0:
            return 0.0, 0.0
        return (self.produced - first[1]) / elapsed, (self.consumed - first[2]) / elapsed

    def elapsed(self) -> float:
        return 0.0 if self.replay_started is None else time.monotonic() - self.replay_started

    def strongest(self, limit: int = STRONGEST_SHOWN, channel: str = DEFAULT_CHANNEL) -> list[Discovered]:
        return strongest(discovered_associations(self.associations, channel), limit)


class DemoDisplay:
    """Draws ``LiveState``: live on a terminal, status lines otherwise."""

    def __init__(self, console: Console, *, status_every_s: float = DEFAULT_STATUS_EVERY_S) -> None:
        self.console = console
        self.live_view = console.is_terminal
        self.status_every_s = status_every_s
        self._live: Live | None = None
        self._last_status = 0.0

    def step(self, message: str) -> None:
        """A start-up or shutdown step, one line."""
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False, soft_wrap=True)

    def start(self, state: LiveState) -> None:
        if self.live_view:
            self._live = Live(
                self._layout(state),
                console=self.console,
                refresh_per_second=LIVE_REFRESHES_PER_SECOND,
                transient=False,
            )
            self._live.start()
        else:
            for name, url in state.urls.items():
                self.step(f"{name}: {url}")
        self._last_status = time.monotonic()

    def refresh(self, state: LiveState) -> None:
        sent_rate, consumed_rate = state.mark_rates()
        if self._live is not None:
            self._live.update(self._layout(state, sent_rate, consumed_rate))
            return
        now = time.monotonic()
        if now - self._last_status >= self.status_every_s:
            self._last_status = now
            line = self._status_line(state, sent_rate, consumed_rate)
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- drawing ---------------------------------------------------------------------------------

    def _status_line(self, state: LiveState, sent_rate: float, consumed_rate: float) -> str:
        top = state.strongest(1)
        best = (
            f"; strongest: {state.title(top[0].antecedent)} -> {state.title(top[0].consequent)} "
            f"(lift {top[0].lift:.1f})"
            if top
            else ""
        )
        return (
            f"t={state.elapsed():5.1f}s sent={state.produced} ({sent_rate:.0f}/s) "
            f"consumed={state.consumed:.0f} ({consumed_rate:.0f}/s) lag={state.lag:.0f}"
            f"{' (waiting for the worker)' if state.throttled else ''} "
            f"recommendations={state.recommendations} ad_targets={state.ad_targets} "
            f"items_with_associations={len(state.associations)}{best}"
        )

    def _layout(self, state: LiveState, sent_rate: float = 0.0, consumed_rate: float = 0.0) -> Group:
        header = Text.assemble(
            ("xsell demo", "bold"),
            f"  t={state.elapsed():.0f}s  sent {state.produced} ({sent_rate:.0f}/s)  "
            f"consumed {state.consumed:.0f} ({consumed_rate:.0f}/s)  lag {state.lag:.0f}"
            f"{' (waiting for the worker)' if state.throttled else ''}  "
            f"recommendations {state.recommendations}  ad targets {state.ad_targets}  "
            f"dead letters {state.dead_letters:.0f}",
        )
        urls = Text("  ".join(f"{name}: {url}" for name, url in state.urls.items()), style="cyan")
        return Group(
            header,
            urls,
            Panel(self._recommendations(state), title="latest cross-recommendations", title_align="left"),
            Panel(self._associations(state), title="strongest bought-together associations", title_align="left"),
            Panel(self._ad_targets(state), title="latest ad targets", title_align="left"),
        )

    def _recommendations(self, state: LiveState) -> Table:
        table = Table(expand=True, show_edge=False)
        table.add_column("user", no_wrap=True)
        table.add_column("after", ratio=3, no_wrap=True, overflow="ellipsis")
        table.add_column("recommended", ratio=3, no_wrap=True, overflow="ellipsis")
        table.add_column("because", ratio=3, no_wrap=True, overflow="ellipsis")
        for answer in reversed(state.latest_recommendations):
            trigger = state.title(str(answer.get("trigger_item_id")), TITLE_CHARS)
            for position, item in enumerate((answer.get("items") or [])[:2]):
                table.add_row(
                    str(answer.get("user_id")) if position == 0 else "",
                    trigger if position == 0 else "",
                    state.title(item["item_id"], TITLE_CHARS),
                    "; ".join(state.readable(reason) for reason in item.get("reasons") or []) or "score",
                )
        return table

    def _associations(self, state: LiveState) -> Table:
        table = Table(expand=True, show_edge=False)
        for column in ("bought", "also bought"):
            table.add_column(column, no_wrap=True, overflow="ellipsis", ratio=1)
        for column in ("pairs", "confidence", "lift", "LLR"):
            table.add_column(column, justify="right", no_wrap=True)
        for rule in state.strongest():
            table.add_row(
                state.title(rule.antecedent, TITLE_CHARS),
                state.title(rule.consequent, TITLE_CHARS),
                f"{rule.count:.0f}",
                f"{rule.confidence:.2f}",
                f"{rule.lift:.1f}",
                f"{rule.llr:.1f}",
            )
        return table

    def _ad_targets(self, state: LiveState) -> Table:
        table = Table(expand=True, show_edge=False)
        for column in ("user", "campaign", "score"):
            table.add_column(column)
        for target in reversed(state.latest_ad_targets):
            table.add_row(str(target.get("user_id")), str(target.get("campaign_id")), f"{target.get('score', 0):.2f}")
        return table
