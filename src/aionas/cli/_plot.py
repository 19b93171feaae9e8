"""``aionas plot``: a journal's search drawn to a PNG with matplotlib.

The top row has every model's intermediate metrics by epoch, coloured by its final
metric, the best model's curve thick and labelled, and each model's final metric
by id with the best so far as a step line (``--mode`` says whether best is highest
or lowest). Below, one small panel per parameter: its value against the final metric.
"""

from __future__ import annotations

import argparse
import math
import numbers
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import Model, ModelStatus
from ..journal._table import cell
from ._common import UsageError, emit, format_value, require
from ._experiments import choose_experiment

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["build_figure", "plot_command", "plot_history"]

#: A parameter panel's columns per row.
_PANELS_PER_ROW = 4
#: The best model's colour, outside every colormap's range.
_BEST = "tab:red"
#: What the final-metric panel says when there is nothing to draw.
NO_FINISHED = "no finished model yet"


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            return None
        if math.isfinite(number):
            return number
    return None


def _best_model(models: Sequence[Model], mode: str = "max") -> Model | None:
    """The trained model with the best finite numeric final metric (the first on a tie).

    Best is highest for ``mode="max"``, lowest for ``"min"``; NaN and infinities
    are never best.
    """
    scored = [
        (number, model)
        for model in models
        if model.status is ModelStatus.Trained and (number := _number(model.metric)) is not None
    ]
    pick = max if mode == "max" else min
    return pick(scored, key=lambda pair: pair[0], default=(None, None))[1]


def _model_x(models: Sequence[Model]) -> list[int]:
    """Where each model goes on the by-model axis: its id, or its position if it has none."""
    return [i if m.model_id is None else m.model_id for i, m in enumerate(models, 1)]


def build_figure(models: Sequence[Model], *, mode: str = "max", title: str = "") -> Any:
    """The ``matplotlib.figure.Figure`` that :func:`plot_history` saves.

    Its first subfigure holds the curves axes (``figure.axes[0]``) and the final
    metric axes; a second subfigure, present when any model has parameters, one
    axes per parameter name (first-seen order), titled with the name. Both top
    axes have integer x ticks. Non-finite and non-numeric values are left out
    (they cannot be drawn); a panel with nothing to draw says so. Legends are
    only drawn where something is labelled, so no warning is raised.

    :raises UsageError: if ``models`` is empty or ``mode`` is not max or min.
    """
    if not models:
        raise UsageError("there are no models to plot")
    if mode not in ("max", "min"):
        raise UsageError(f"mode must be 'max' or 'min', not {mode!r}")
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(name for m in models for name in m.params))
    rows = math.ceil(len(names) / _PANELS_PER_ROW)
    figure = Figure(figsize=(13, 4.5 + 3 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title)
    top: Any = figure
    bottom: Any = None
    if rows:
        parts: Any = figure.subfigures(2, 1, height_ratios=[4.5, 3 * rows])
        top, bottom = parts
    curves, finals = top.subplots(1, 2, width_ratios=[3, 2])
    finals_by_model = [_number(m.metric) for m in models]
    known = [v for v in finals_by_model if v is not None]
    colour = _colours(known, mode)
    best = _best_model(models, mode)
    _draw_curves(top, curves, models, finals_by_model, best, colour)
    _draw_finals(finals, models, finals_by_model, best, colour, mode)
    if bottom is not None:
        panels = bottom.subplots(rows, min(len(names), _PANELS_PER_ROW), squeeze=False)
        flat = [axes for row in panels for axes in row]
        for axes, name in zip(flat, names, strict=False):
            _draw_param(axes, name, models, finals_by_model, best, colour)
        for axes in flat[len(names) :]:
            axes.set_visible(False)
    return figure


class _Colours:
    """Maps a final metric to a colour; the best end of the scale is always bright."""

    def __init__(self, low: float, high: float, mode: str) -> None:
        from matplotlib import colormaps
        from matplotlib.colors import Normalize

        if low == high:  # one value: a scale around it
            spread = abs(low) * 0.05 or 0.5
            low, high = low - spread, high + spread
        self.norm = Normalize(low, high)
        self.cmap = colormaps["viridis" if mode == "max" else "viridis_r"]

    def of(self, values: list[float | None]) -> list[Any]:
        """The colour of each value (None for None), computed at once: one by one is slow."""
        rgba: Any = self.cmap(self.norm([math.nan if v is None else v for v in values]))
        return [None if v is None else tuple(c) for v, c in zip(values, rgba.tolist(), strict=True)]


def _colours(known: list[float], mode: str) -> _Colours | None:
    return _Colours(min(known), max(known), mode) if known else None


def _draw_curves(
    top: Any,
    axes: Any,
    models: Sequence[Model],
    finals: list[float | None],
    best: Model | None,
    colour: _Colours | None,
) -> None:
    """Each model's intermediate metrics by epoch; non-finite points leave a gap."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.ticker import MaxNLocator

    drawn = best_drawn = False
    colours = colour.of(finals) if colour is not None else [None] * len(models)
    for model, line_colour in zip(models, colours, strict=True):
        values = [_number(v) for v in model.metrics.intermediates]
        if all(v is None for v in values):
            continue
        drawn = True
        xs = range(1, len(values) + 1)
        ys = [math.nan if v is None else v for v in values]
        # A marker where a point has no line to it: one epoch, or between gaps.
        style: dict[str, Any] = {"marker": "o", "markevery": _isolated(values), "markersize": 2}
        if model is best:
            style.update(color=_BEST, linewidth=2.8, markersize=5, zorder=3)
            axes.plot(xs, ys, label=f"best #{model.model_id}", **style)
            best_drawn = True
        elif line_colour is None:
            axes.plot(xs, ys, color="grey", linewidth=0.6, alpha=0.5, **style)
        else:
            axes.plot(xs, ys, color=line_colour, linewidth=1, alpha=0.75, **style)
    if best_drawn:
        axes.legend(loc="best")  # only with a labelled line: an empty legend warns
    if not drawn:
        _note(axes, "no intermediate metrics yet")
    if colour is not None:
        top.colorbar(ScalarMappable(colour.norm, colour.cmap), ax=axes, label="final metric")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.set_title("intermediate metric per model")
    axes.set_xlabel("epoch (report)")
    axes.set_ylabel("metric")


def _isolated(values: list[float | None]) -> list[int]:
    """The indices of drawable values whose neighbours are both missing."""
    padded = [None, *values, None]
    return [
        i
        for i, value in enumerate(values)
        if value is not None and padded[i] is None and padded[i + 2] is None
    ]


def _draw_finals(
    axes: Any,
    models: Sequence[Model],
    finals: list[float | None],
    best: Model | None,
    colour: _Colours | None,
    mode: str,
) -> None:
    """Each model's final metric by id, and the best so far among trained models."""
    from matplotlib.ticker import MaxNLocator

    pick = max if mode == "max" else min
    order = sorted(zip(_model_x(models), models, finals, strict=True), key=lambda t: t[0])
    points = [(x, final) for x, _, final in order if final is not None]
    if points and colour is not None:
        xs, ys = zip(*points, strict=True)
        axes.scatter(xs, ys, s=14, c=ys, cmap=colour.cmap, norm=colour.norm, label="final metric")
        steps_x, steps_y, current = [], [], None
        for x, model, final in order:
            if final is not None and model.status is ModelStatus.Trained:
                current = final if current is None else pick(current, final)
            if current is not None:
                steps_x.append(x)
                steps_y.append(current)
        if steps_x:
            axes.step(steps_x, steps_y, where="post", color="black", label="best so far")
        if best is not None:
            x = next(x for x, model, _ in order if model is best)
            axes.scatter(
                [x],
                [_number(best.metric)],
                s=90,
                marker="*",
                color=_BEST,
                zorder=3,
                label=f"best #{best.model_id}",
            )
        axes.legend(loc="best")
    else:
        _note(axes, NO_FINISHED)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.set_title(f"final metric and best so far ({mode})")
    axes.set_xlabel("model")
    axes.set_ylabel("final metric")


def _draw_param(
    axes: Any,
    name: str,
    models: Sequence[Model],
    finals: list[float | None],
    best: Model | None,
    colour: _Colours | None,
) -> None:
    """One parameter's value against the final metric: a scatter, or positions per value.

    Numbers (None aside) are a scatter, on a log axis if they look drawn in log
    scale (see :func:`_looks_logarithmic`); anything else is a category, one tick
    per distinct value in first-seen order.
    """
    values = [
        (m.params[name], m, f) for m, f in zip(models, finals, strict=True) if name in m.params
    ]
    present = [v for v, _, _ in values if v is not None]
    numeric = bool(present) and all(_is_real(v) for v in present)
    if numeric:
        if _looks_logarithmic([x for v in present if (x := _number(v)) is not None]):
            axes.set_xscale("log")
        position = _number
    else:
        keys = list(dict.fromkeys(_category(v) for v, _, _ in values))
        labels = [_shorten(key[1]) for key in keys]
        axes.set_xticks(range(len(keys)), labels)
        if len(keys) > 4 or max(map(len, labels)) > 8:
            axes.tick_params(axis="x", labelrotation=30)
        index = {key: i for i, key in enumerate(keys)}

        def position(value: Any) -> float | None:
            return float(index[_category(value)])

        axes.set_xlim(-0.5, len(keys) - 0.5)
    xs, ys, best_point = [], [], None
    for value, model, final in values:
        x = position(value)
        if x is None or final is None:
            continue
        if model is best:
            best_point = (x, final)
        else:
            xs.append(x)
            ys.append(final)
    if xs and colour is not None:
        axes.scatter(xs, ys, s=14, c=ys, cmap=colour.cmap, norm=colour.norm, alpha=0.8)
    if best_point is not None:
        axes.scatter(*best_point, s=90, marker="*", color=_BEST, zorder=3)
    if not xs and best_point is None:
        _note(axes, "no finished model with it")
    axes.set_title(name)
    axes.set_ylabel("final metric")


def _looks_logarithmic(values: list[float]) -> bool:
    """Whether ``values`` look drawn in log scale (as by ``Float(log=True)``).

    They must all be positive and span a factor of 100 or more, and their median
    must sit no further from the middle of the range in log scale than in linear
    scale (so a uniform draw from ``[0, 0.5]`` with one tiny value stays linear).
    """
    if not values or min(values) <= 0:
        return False
    low, high, median = min(values), max(values), statistics.median_low(values)
    if high / low < 100:
        return False
    linear = (median - low) / (high - low)
    logarithmic = math.log(median / low) / math.log(high / low)
    return abs(logarithmic - 0.5) <= abs(linear - 0.5)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _category(value: Any) -> tuple[str, str]:
    """A categorical value as ``(type name, label)``: hashable; ``True`` and ``1`` differ."""
    return (type(value).__name__, str(cell(value)))


def _shorten(label: str, width: int = 16) -> str:
    """``label`` cut to ``width`` characters, ending in ``...`` if it was cut."""
    return label if len(label) <= width else label[: width - 3] + "..."


def _note(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color="grey")


def plot_history(
    models: Sequence[Model], output: Path, *, mode: str = "max", title: str = ""
) -> None:
    """Draw ``models`` (as :func:`build_figure` does) to the file ``output``.

    The format follows the suffix (``.png``, ``.svg``, ``.pdf``); PNG without one.

    :raises UsageError: if ``models`` is empty, or matplotlib is not installed.
    """
    build_figure(models, mode=mode, title=title).savefig(output, dpi=100)


def plot_command(args: argparse.Namespace, console: Console) -> int:
    """``aionas plot`` as parsed: one experiment (see ``--experiment``); the exit code."""
    history = choose_experiment(args.path, args.experiment)
    summary = history.summary
    mode = args.mode or summary.mode
    name = summary.experiments[0] if summary.experiments else str(args.path)
    best = (
        ""
        if summary.best_model_id is None or args.mode not in (None, summary.mode)
        else f", best {format_value(summary.best_metric)} (#{summary.best_model_id})"
    )
    title = (
        f"{name}: {summary.models} models{best}, best is {'highest' if mode == 'max' else 'lowest'}"
    )
    output: Path = args.output
    if not output.suffix:
        output = output.with_suffix(".png")
    try:
        plot_history(history.models, output, mode=mode, title=title)
    except (OSError, ValueError) as error:  # no such folder, a format matplotlib lacks
        raise UsageError(f"cannot write {str(output)!r}: {error}") from None
    emit(console, f"wrote {output}")
    return 0
