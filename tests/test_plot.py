"""``aionas plot``'s picture: curves coloured by final metric, the best highlighted, params."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal
from aionas.cli._common import UsageError
from aionas.cli._plot import (
    NO_FINISHED,
    _best_model,
    _looks_logarithmic,
    build_figure,
    plot_history,
)
from aionas.journal.history import ModelRecord

from .helpers import Boom, Reporter, record

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
CURVES = "intermediate metric per model"


def search(n: int = 12) -> list[ModelRecord]:
    """A small search: a log-scaled lr, a categorical act, an int depth; one failure."""
    models = []
    for i in range(1, n + 1):
        lr = 10 ** (-4 + 3 * (i * 7 % n) / (n - 1))
        act = ["relu", "tanh", "gelu"][i % 3]
        quality = 1 - abs(math.log10(lr) + 2.5) / 4 - (0.1 if act == "relu" else 0.0)
        curve = [quality - 0.3 / (epoch + 1) for epoch in range(1 + i % 4)]
        status = ModelStatus.Failed if i == 5 else ModelStatus.Trained
        final = None if i == 5 else curve[-1]
        models.append(record(i, {"lr": lr, "act": act, "depth": 1 + i % 3}, curve, final, status))
    return models


def axes_titled(figure: Any, title: str) -> Any:
    (axes,) = [axes for axes in figure.axes if axes.get_title() == title]
    return axes


def finals_axes(figure: Any) -> Any:
    (axes,) = [axes for axes in figure.axes if axes.get_title().startswith("final metric")]
    return axes


def texts(axes: Any) -> list[str]:
    return [text.get_text() for text in axes.texts]


def test_plot_history_writes_a_png(tmp_path: Path) -> None:
    output = tmp_path / "plot.png"
    plot_history(search(), output, title="exp: 12 models")
    assert output.read_bytes().startswith(PNG)


def test_the_title_the_best_curve_and_integer_epochs() -> None:
    models = search()
    best = _best_model(models, "max")
    assert best is not None
    assert best.metric == max(m.metric for m in models if m.metric is not None)
    figure = build_figure(models, mode="max", title="exp: 12 models, best")
    assert figure.get_suptitle() == "exp: 12 models, best"
    curves = axes_titled(figure, CURVES)
    lines = curves.get_lines()
    assert len(lines) == len(models)
    (thick,) = [line for line in lines if line.get_label() == f"best #{best.model_id}"]
    others = [line for line in lines if line is not thick]
    assert thick.get_linewidth() > max(line.get_linewidth() for line in others)
    assert list(thick.get_ydata()) == best.metrics.intermediates
    assert [t.get_text() for t in curves.get_legend().get_texts()] == [f"best #{best.model_id}"]
    for axes in (curves, finals_axes(figure)):
        locator = axes.xaxis.get_major_locator()
        assert locator._integer  # MaxNLocator(integer=True)
        figure.canvas.draw()
        assert all(tick == int(tick) for tick in axes.get_xticks())


def test_curves_are_coloured_by_final_metric_and_unfinished_ones_are_grey() -> None:
    low = record(1, {}, [0.1, 0.2], 0.2)
    high = record(2, {}, [0.5, 0.9], 0.9)
    middle = record(3, {}, [0.3, 0.5], 0.5)
    unfinished = record(4, {}, [0.3], None, ModelStatus.Training)
    figure = build_figure([low, high, middle, unfinished])
    lines = axes_titled(figure, CURVES).get_lines()
    assert lines[0].get_color() != lines[2].get_color()  # coloured by their metric
    assert lines[3].get_color() == "grey"
    assert lines[3].get_linewidth() < lines[0].get_linewidth()
    assert lines[1].get_label() == "best #2"
    assert any(axes.get_ylabel() == "final metric" and not axes.get_title() for axes in figure.axes)


def test_mode_min_picks_the_lowest_and_the_best_so_far_falls(tmp_path: Path) -> None:
    models = [record(1, {}, [3.0], 3.0), record(2, {}, [1.0], 1.0), record(3, {}, [2.0], 2.0)]
    figure = build_figure(models, mode="min")
    assert any(line.get_label() == "best #2" for line in axes_titled(figure, CURVES).get_lines())
    (step,) = [
        line for line in finals_axes(figure).get_lines() if line.get_label() == "best so far"
    ]
    assert list(step.get_ydata()) == [3.0, 1.0, 1.0]
    plot_history(models, tmp_path / "min.png", mode="min")
    assert (tmp_path / "min.png").read_bytes().startswith(PNG)


def test_best_so_far_counts_only_trained_models_in_id_order() -> None:
    models = [
        record(3, {}, [], 0.5),
        record(1, {}, [], 0.2),
        record(2, {}, [], 0.9, ModelStatus.Failed),  # a failed model is never best
    ]
    figure = build_figure(models)
    (step,) = [
        line for line in finals_axes(figure).get_lines() if line.get_label() == "best so far"
    ]
    assert list(step.get_xdata()) == [1, 2, 3]
    assert list(step.get_ydata()) == [0.2, 0.2, 0.5]
    assert _best_model(models) is models[0]


def test_no_finished_model_draws_a_note_and_no_legend(tmp_path: Path) -> None:
    models = [
        record(1, {"x": 1}, [], None, ModelStatus.Frozen),
        record(2, {"x": 2}, [], None, ModelStatus.Training),
    ]
    figure = build_figure(models, title="nothing yet")  # warnings are errors
    finals = finals_axes(figure)
    assert NO_FINISHED in texts(finals)
    assert finals.get_legend() is None
    assert axes_titled(figure, CURVES).get_legend() is None
    plot_history(models, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG)


def test_non_finite_and_non_numeric_metrics_are_left_out(tmp_path: Path) -> None:
    models = [
        record(1, {"x": math.nan}, [math.nan, math.inf, 1.0, 2.0, -math.inf], math.nan),
        record(2, {"x": 1.0}, [math.inf], math.inf),
        record(3, {"x": 2.0}, [{"loss": 1}, 3.0], {"loss": 2}),
        record(4, {"x": 3.0}, [1.0, 2.0], 2.0),
    ]
    assert _best_model(models) is models[3]  # NaN and inf are never best
    figure = build_figure(models)
    lines = axes_titled(figure, CURVES).get_lines()
    assert len(lines) == 3  # model 2 has nothing finite to draw
    for line in lines:
        assert not any(math.isinf(y) for y in line.get_ydata())
    assert list(lines[0].get_ydata())[2:4] == [1.0, 2.0]
    assert list(lines[1].get_markevery()) == [1]  # a lone point gets a marker
    plot_history(models, tmp_path / "nan.png")
    assert (tmp_path / "nan.png").read_bytes().startswith(PNG)


def test_one_panel_per_parameter_with_categorical_and_log_axes(tmp_path: Path) -> None:
    models = search()
    for model in models:
        model.params["flag"] = model.model_id % 2 == 0
        model.params["dropout"] = 0.0001 if model.model_id == 1 else 0.04 * model.model_id
    figure = build_figure(models)
    names = ["lr", "act", "depth", "flag", "dropout"]
    panels = [axes for axes in figure.axes if axes.get_title() in names]
    assert [axes.get_title() for axes in panels] == names
    by_name = {axes.get_title(): axes for axes in panels}
    assert by_name["lr"].get_xscale() == "log"
    assert by_name["dropout"].get_xscale() == "linear"  # uniform with one tiny value
    assert by_name["depth"].get_xscale() == "linear"
    act_ticks = [tick.get_text() for tick in by_name["act"].get_xticklabels()]
    assert act_ticks == ["tanh", "gelu", "relu"]  # first-seen order
    assert [tick.get_text() for tick in by_name["flag"].get_xticklabels()] == ["False", "True"]
    hidden = [axes for axes in figure.axes if not axes.get_visible()]
    assert len(hidden) == 3  # two rows of four panels for five parameters
    plot_history(models, tmp_path / "params.png")
    assert (tmp_path / "params.png").read_bytes().startswith(PNG)


def test_long_categories_are_shortened_and_huge_numbers_left_out() -> None:
    long = "a-very-long-activation-name"
    models = [
        record(1, {"act": long, "layers": [64, 64, 64, 64, 64], "n": 10**400}, [1.0], 1.0),
        record(2, {"act": "relu", "layers": [8], "n": 3}, [2.0], 2.0),
    ]
    figure = build_figure(models)
    act = axes_titled(figure, "act")
    assert [tick.get_text() for tick in act.get_xticklabels()] == ["a-very-long-a...", "relu"]
    assert act.xaxis.get_major_ticks()[0].label1.get_rotation() == 30
    layers = [tick.get_text() for tick in axes_titled(figure, "layers").get_xticklabels()]
    assert layers == ["[64, 64, 64, ...", "[8]"]
    # 10**400 is no float: only model 2 (the best, a star) is drawn.
    (star,) = axes_titled(figure, "n").collections
    assert star.get_offsets().tolist() == [[3.0, 2.0]]


def test_a_parameter_only_unfinished_models_have_says_so() -> None:
    models = [record(1, {"x": 1}, [1.0], 1.0), record(2, {"y": "a"}, [], None, ModelStatus.Frozen)]
    figure = build_figure(models)
    assert texts(axes_titled(figure, "y")) == ["no finished model with it"]
    assert texts(axes_titled(figure, "x")) == []


def test_no_params_no_parameter_panels_and_integer_ticks_for_one_model() -> None:
    figure = build_figure([record(1, {}, [1.0], 1.0)])
    figure.canvas.draw()
    for axes in (axes_titled(figure, CURVES), finals_axes(figure)):
        assert [tick for tick in axes.get_xticks() if tick != int(tick)] == []
    assert not figure.subfigs
    assert {axes.get_title() for axes in figure.axes} == {
        CURVES,
        "final metric and best so far (max)",
        "",  # the colorbar
    }


def test_looks_logarithmic() -> None:
    assert _looks_logarithmic([1e-4, 1e-3, 1e-2, 1e-1])
    assert _looks_logarithmic([1e-4, 1e-1])
    assert not _looks_logarithmic([0.001, 0.1, 0.2, 0.3, 0.4])  # uniform with one tiny value
    assert not _looks_logarithmic([1.0, 5.0, 50.0])  # a span under 100
    assert not _looks_logarithmic([0.0, 1.0, 1000.0])  # not all positive
    assert not _looks_logarithmic([])


def test_no_models_and_a_bad_mode_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no models"):
        plot_history([], tmp_path / "x.png")
    with pytest.raises(UsageError, match="mode"):
        build_figure([record(1, {})], mode="best")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.anyio
async def test_plot_a_real_journal(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db, experiment="exp"), continue_on_failure=True
    ) as engine:
        await engine.submit_models(Reporter({"n": 3}), Reporter({"n": 5}), Boom({"n": 0}))
        await engine.wait_models()
    models, summary = aionas.load_history(db)
    figure = build_figure(models, title="exp")
    curves = axes_titled(figure, CURVES)
    assert [line.get_label() for line in curves.get_lines()][1] == f"best #{summary.best_model_id}"
    plot_history(models, tmp_path / "j.png", title="exp")
    assert (tmp_path / "j.png").read_bytes().startswith(PNG)
