"""``aionas plot``: a journal's learning curves and best-so-far, drawn to a PNG with matplotlib.

The left panel has every model's intermediate metrics by epoch; the right one each
model's final metric by id, and the best so far as a step line (``--mode`` says
whether best is highest or lowest).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .. import ModelStatus, load_history
from ._common import UsageError, require

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["plot_command", "plot_history"]


def plot_history(path: Path, output: Path, mode: str = "max") -> None:
    """Draw the journal at ``path`` to ``output``."""
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, _ = load_history(path)
    if not models:
        raise UsageError(f"{path} holds no models to plot")
    figure, (curves, best_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for model in models:
        values = [v for v in model.metrics.intermediates if isinstance(v, int | float)]
        if values:
            curves.plot(range(1, len(values) + 1), values, linewidth=1, alpha=0.6)
    curves.set_title("intermediate metric per model")
    curves.set_xlabel("epoch (report)")
    curves.set_ylabel("metric")
    ordered = sorted(models, key=lambda m: m.model_id or 0)
    xs, best, current = [], [], None
    for model in ordered:
        if model.status is ModelStatus.Trained and isinstance(model.metric, float):
            pick = max if mode == "max" else min
            current = model.metric if current is None else pick(current, model.metric)
        if current is not None:
            xs.append(model.model_id)
            best.append(current)
    finals = [(m.model_id, m.metric) for m in ordered if isinstance(m.metric, float)]
    if finals:
        best_axis.scatter(*zip(*finals, strict=True), s=12, alpha=0.5, label="final metric")
    if xs:
        best_axis.step(xs, best, where="post", color="black", label="best so far")
    best_axis.set_title("best so far")
    best_axis.set_xlabel("model")
    best_axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def plot_command(args: argparse.Namespace, console: Console) -> int:
    """``aionas plot`` as parsed; the exit code."""
    plot_history(args.path, args.output, args.mode)
    console.print(f"wrote {args.output}", highlight=False)
    return 0
