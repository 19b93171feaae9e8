"""``aionas history``: an experiment's models ranked by final metric, as a table, JSON or CSV.

Trained models with a rankable final metric come first, best first (by the
direction the experiment recorded, or ``--mode``); then the rest (NaN, no metric,
failed, interrupted) in id order. ``--status`` keeps one status, ``--top`` the first
N. ``--json`` prints one JSON array, ``--jsonl`` one object per line (what ``| head``
and streaming tools want), ``--csv`` a row per model with a column per parameter.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import Model, ModelStatus
from ..events import json_safe
from ..journal._table import write_csv
from ..journal.history import RestoredError, score
from ._common import UsageError, emit, format_params, format_value, stdout_failed
from ._experiments import choose_experiment

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["history_command", "ranked", "show_history"]


def ranked(
    models: list[Model], *, status: str | None, top: int | None, mode: str = "max"
) -> list[Model]:
    """``models`` filtered by ``status``, best first, rankless ones last in id order."""
    if status is not None:
        try:
            wanted = ModelStatus(status.strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in ModelStatus)
            raise UsageError(f"unknown status {status!r}; use one of {valid}") from None
        models = [m for m in models if m.status is wanted]
    sign = -1.0 if mode == "max" else 1.0

    def key(model: Model) -> tuple[int, float, int]:
        value = score(model)
        if value is None:
            return (1, 0.0, model.model_id or 0)
        return (0, sign * value, model.model_id or 0)

    ordered = sorted(models, key=key)
    return ordered[:top] if top is not None else ordered


def _item(model: Model) -> dict[str, Any]:
    return {
        "id": model.model_id,
        "experiment": getattr(model, "experiment", None),
        "params": json_safe(model.params),
        "status": model.status.value,
        "reason": getattr(model, "reason", None),
        "metric": json_safe(model.metric),
        "intermediates": json_safe(list(model.metrics.intermediates)),
        "error": _error_text(model) or None,
    }


def _error_text(model: Model) -> str:
    error = model.error
    if error is None:
        return ""
    if isinstance(error, RestoredError):  # its str() already names the type
        return str(error)
    return f"{type(error).__name__}: {error}"


def show_history(
    path: Path,
    *,
    experiment: str | None,
    top: int | None,
    status: str | None,
    output: str,
    console: Console,
    mode: str | None = None,
) -> None:
    """Print the leaderboard of one experiment as ``output`` says (table, json, jsonl, csv)."""
    history = choose_experiment(path, experiment)
    direction = mode or history.summary.mode
    models = ranked(history.models, status=status, top=top, mode=direction)
    if output == "json":
        emit(console, json.dumps([_item(m) for m in models], indent=2))
        return
    if output == "jsonl":
        for model in models:
            emit(console, json.dumps(_item(model)))
        return
    if output == "csv":
        try:
            write_csv(models, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            stdout_failed(error)
        return
    from rich.table import Table

    name = history.summary.experiments[0] if history.summary.experiments else ""
    best = "highest" if direction == "max" else "lowest"
    table = Table(title=f"leaderboard: {name} in {path} (best is {best})")
    columns = ("rank", "id", "status", "metric", "epochs", "params", "error")
    has_errors = any(m.error is not None for m in models)
    for column in columns:
        if column == "error" and not has_errors:
            continue
        table.add_column(column, justify="right" if column in {"rank", "id", "metric"} else "left")
    for rank, model in enumerate(models, 1):
        cells = [
            str(rank) if score(model) is not None else "-",
            str(model.model_id),
            model.status.value,
            format_value(model.metric),
            str(len(model.metrics.intermediates)),
            format_params(model.params),
        ]
        if has_errors:
            cells.append(_error_text(model))
        table.add_row(*cells)
    console.print(table)


def history_command(args: argparse.Namespace, console: Console) -> int:
    """``aionas history`` as parsed; the exit code."""
    output = "json" if args.json else "jsonl" if args.jsonl else "csv" if args.csv else "table"
    show_history(
        args.path,
        experiment=args.experiment,
        top=args.top,
        status=args.status,
        output=output,
        console=console,
        mode=args.mode,
    )
    return 0
