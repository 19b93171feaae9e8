"""What a running search shows: a live panel on a terminal, one plain line per event otherwise.

:class:`Progress` is a context manager around the search; once the engine is open,
``attach`` counts the models it restored and registers a callback for every event.
The display outlives the engine's block, so it still shows the models a stop ends.

Everything here runs on the event loop's thread: event callbacks, :meth:`tick`
(which redraws the panel four times a second, so its clock runs between events) and
the stop notices. The panel is never redrawn from rich's own refresh thread.

Each line says what was true when its event happened: an intermediate metric is
labelled with its own epoch, counted as it is reported, not when it is printed.
If stdout's reader goes away (``aionas run FILE | head``), the lines stop and the
search goes on.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio

from .. import (
    FinalMetricEvent,
    IntermediateMetricEvent,
    Model,
    ModelEvent,
    ModelEventType,
    ModelStatus,
    TrainingEndEvent,
    TrainingStartEvent,
)
from ..journal.history import best_model
from ._common import emit, format_params, format_value

if TYPE_CHECKING:
    from rich.console import Console

    from .. import SequentialExecutionEngine

__all__ = ["Progress"]

#: How often the live panel is redrawn, also without events (seconds).
TICK = 0.25


class Progress:
    """What a running search shows: a live panel on a terminal, one line per event otherwise."""

    def __init__(
        self, console: Console, *, live: bool, budget: int | None, max_duration: float | None
    ) -> None:
        self.console = console
        self.live = live
        self.budget = budget
        self.max_duration = max_duration
        self.started = time.monotonic()
        self.counts: Counter[ModelStatus] = Counter()
        self.running: Model | None = None
        self.epoch = 0  # intermediate metrics the running model reported so far
        self.latest: Any = None  # its latest intermediate metric
        self.best: Model | None = None
        self.mode = "max"
        self.last_end: TrainingEndEvent | None = None
        self.stopping: str | None = None  # the notice of a stop under way
        self.stopped: list[int] = []  # ids of the models a shutdown ended
        self.engine: SequentialExecutionEngine | None = None
        self._live: Any = None

    @property
    def done(self) -> int:
        """Models that ended (trained, failed or interrupted)."""
        return sum(self.counts.values())

    def attach(self, engine: SequentialExecutionEngine, mode: str) -> None:
        self.mode = mode
        already = engine.list_models()
        self.counts.update(m.status for m in already if m.status.completed())
        self.best = best_model(already, mode)
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, self.on_event)
        self.engine = engine

    def on_event(self, event: ModelEvent) -> None:
        model = event.model
        if isinstance(event, TrainingStartEvent):
            self.running, self.epoch, self.latest = model, 0, None
            self.last_end = None
            line = f"start  #{model.model_id} {format_params(model.params)}"
        elif isinstance(event, IntermediateMetricEvent):
            if model is self.running:
                self.epoch += 1
                self.latest = event.metric
            line = f"metric #{model.model_id} epoch {self.epoch}: {format_value(event.metric)}"
        elif isinstance(event, FinalMetricEvent):
            line = f"final  #{model.model_id}: {format_value(event.metric)}"
        elif isinstance(event, TrainingEndEvent):
            self.counts[event.status] += 1
            if event.status is ModelStatus.Interrupted and event.reason == "shutdown":
                self.stopped.append(model.model_id or 0)
            self.running = None if self.running is model else self.running
            self.last_end = event
            self.best = best_model([m for m in (self.best, model) if m is not None], self.mode)
            best = (
                "-"
                if self.best is None
                else f"{format_value(self.best.metric)} (#{self.best.model_id})"
            )
            line = (
                f"end    #{model.model_id} {event.status.value} ({event.reason}) "
                f"metric={format_value(model.metric)}; best so far {best}"
            )
            if event.status is ModelStatus.Failed and event.error is not None:
                line += f"; {type(event.error).__name__}: {event.error}"
        else:
            return
        if not self.live:
            emit(self.console, line)
        elif not isinstance(event, IntermediateMetricEvent):
            self._redraw()  # a metric shows at the next tick: epochs can be very fast

    def notice(self, text: str) -> None:
        """Say something about the search now (a stop under way): on the panel, or stderr."""
        self.stopping = text
        if self.live and self._live is not None:
            self._redraw()
        else:
            print(f"aionas: {text}", file=sys.stderr, flush=True)

    async def tick(self) -> None:
        """Redraw the panel every :data:`TICK` seconds, so that its clock runs; until cancelled."""
        while self.live:
            await anyio.sleep(TICK)
            self._redraw()

    def _redraw(self) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)

    def _counts_text(self) -> str:
        budget = "?" if self.budget is None else str(self.budget)
        parts = [
            f"{self.counts[status]} {status.value}"
            for status in (ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Interrupted)
            if self.counts[status]
        ]
        detail = f" ({', '.join(parts)})" if parts else ""
        return f"{self.done} done of {budget}{detail}"

    def render(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("models", self._counts_text())
        if self.running is not None:
            table.add_row(
                "running",
                f"#{self.running.model_id} {format_params(self.running.params)}; "
                f"epoch {self.epoch}: {format_value(self.latest)}",
            )
        elif self.last_end is not None and self.last_end.status is not ModelStatus.Trained:
            end = self.last_end
            text = f"#{end.model.model_id} {end.status.value} ({end.reason})"
            if end.error is not None and end.status is ModelStatus.Failed:
                text += f": {type(end.error).__name__}: {end.error}"
            table.add_row("last", text)
        if self.best is not None:
            table.add_row(
                "best",
                f"{format_value(self.best.metric)} #{self.best.model_id} "
                f"{format_params(self.best.params)}",
            )
        time_text = f"{elapsed:.0f} s elapsed"
        if self.max_duration is not None and self.engine is not None:
            spent = self.engine.statistics().total_duration
            time_text += f", {max(0.0, self.max_duration - spent):.0f} s of budget left"
        table.add_row("time", time_text)
        if self.stopping is not None:
            table.add_row("stop", self.stopping)
        return table

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            self._live = Live(
                self.render(),
                console=self.console,
                auto_refresh=False,  # redrawn on the loop only: see tick()
                # What the model prints and the engine logs goes above the panel.
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            self._live.__exit__(None, None, None)
            self._live = None
