"""What a running search shows: a live panel on a terminal, one plain line per event otherwise.

:class:`Progress` is a context manager around the search; once the engine is open,
``attach`` counts the models it restored and registers a callback for every event.
The display outlives the engine's block, so it still shows the models a Ctrl+C ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

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
from ._common import format_params, format_value

if TYPE_CHECKING:
    from rich.console import Console

    from .. import SequentialExecutionEngine

__all__ = ["Progress"]


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
        self.done = 0
        self.running: Model | None = None
        self.best: Model | None = None
        self.mode = "max"
        self.last_end: TrainingEndEvent | None = None
        self._live: Any = None

    def attach(self, engine: SequentialExecutionEngine, mode: str) -> None:
        self.mode = mode
        already = engine.list_models()
        self.done = sum(1 for m in already if m.status.completed())
        for model in already:
            self._consider(model)
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, self.on_event)
        self.engine = engine

    def _consider(self, model: Model) -> None:
        if model.status is not ModelStatus.Trained or not isinstance(model.metric, float):
            return
        if self.best is None or (
            model.metric > self.best.metric
            if self.mode == "max"
            else model.metric < self.best.metric
        ):
            self.best = model

    def on_event(self, event: ModelEvent) -> None:
        model = event.model
        if isinstance(event, TrainingStartEvent):
            self.running = model
            self.last_end = None
            line = f"start  #{model.model_id} {format_params(model.params)}"
        elif isinstance(event, IntermediateMetricEvent):
            step = len(model.metrics.intermediates)
            line = f"metric #{model.model_id} epoch {step}: {format_value(event.metric)}"
        elif isinstance(event, FinalMetricEvent):
            line = f"final  #{model.model_id}: {format_value(event.metric)}"
        elif isinstance(event, TrainingEndEvent):
            self.done += 1
            self.running = None if self.running is model else self.running
            self.last_end = event
            self._consider(model)
            best = (
                "-"
                if self.best is None
                else f"{format_value(self.best.metric)} (#{self.best.model_id})"
            )
            line = (
                f"end    #{model.model_id} {event.status.value} ({event.reason}) "
                f"metric={format_value(model.metric)}; best so far {best}"
            )
        else:
            return
        if self.live and self._live is not None:
            self._live.update(self.render())
        elif not self.live:
            self.console.print(line, highlight=False, markup=False)

    def render(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        budget = "?" if self.budget is None else str(self.budget)
        table.add_row("models", f"{self.done} done of {budget}")
        if self.running is not None:
            latest = self.running.metrics.intermediates[-1:] or [None]
            table.add_row(
                "running",
                f"#{self.running.model_id} {format_params(self.running.params)}; "
                f"epoch {len(self.running.metrics.intermediates)}: {format_value(latest[0])}",
            )
        elif self.last_end is not None and self.last_end.status is not ModelStatus.Trained:
            end = self.last_end
            table.add_row("last", f"#{end.model.model_id} {end.status.value} ({end.reason})")
        if self.best is not None:
            table.add_row(
                "best",
                f"{format_value(self.best.metric)} #{self.best.model_id} "
                f"{format_params(self.best.params)}",
            )
        time_text = f"{elapsed:.0f} s elapsed"
        engine = getattr(self, "engine", None)
        if self.max_duration is not None and engine is not None:
            spent = engine.statistics().total_duration
            time_text += f", {max(0.0, self.max_duration - spent):.0f} s of budget left"
        table.add_row("time", time_text)
        return table

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            self._live = Live(self.render(), console=self.console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(None, None, None)
