"""``aionas history``: a journal's models ranked by final metric, as a table or as JSON.

Models with a numeric final metric come first, best first (``--mode`` says whether
best is highest or lowest); ``--status`` keeps one status, ``--top`` the first N.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import Model, ModelStatus, load_history
from ._common import UsageError, format_params, format_value

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["history_command", "ranked_models", "show_history"]


def ranked_models(
    path: Path, status: str | None, top: int | None, mode: str = "max"
) -> list[Model]:
    """The models of the journal at ``path``, filtered by ``status``, best first."""
    models, _ = load_history(path)
    if status is not None:
        try:
            wanted = ModelStatus(status)
        except ValueError:
            valid = ", ".join(s.value for s in ModelStatus)
            raise UsageError(f"unknown status {status!r}; use one of {valid}") from None
        models = [m for m in models if m.status is wanted]
    sign = 1.0 if mode == "max" else -1.0
    ranked = sorted(
        models,
        key=lambda m: (
            isinstance(m.metric, float),
            sign * m.metric if isinstance(m.metric, float) else 0.0,
        ),
        reverse=True,
    )
    return ranked[:top] if top is not None else ranked


def show_history(
    path: Path,
    *,
    top: int | None,
    status: str | None,
    as_json: bool,
    console: Console,
    mode: str = "max",
) -> None:
    """Print the leaderboard: a rich table, or with ``as_json`` an indented JSON array."""
    models = ranked_models(path, status, top, mode)
    if as_json:
        items = [
            {
                "id": m.model_id,
                "experiment": getattr(m, "experiment", None),
                "params": m.params,
                "status": m.status.value,
                "metric": m.metric,
                "intermediates": list(m.metrics.intermediates),
                "error": None if m.error is None else str(m.error),
            }
            for m in models
        ]
        print(json.dumps(items, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"leaderboard: {path}")
    for column in ("rank", "id", "experiment", "status", "metric", "epochs", "params"):
        table.add_column(column, justify="right" if column in {"rank", "id", "metric"} else "left")
    for rank, m in enumerate(models, 1):
        table.add_row(
            str(rank),
            str(m.model_id),
            str(getattr(m, "experiment", "")),
            m.status.value,
            format_value(m.metric),
            str(len(m.metrics.intermediates)),
            format_params(m.params),
        )
    console.print(table)


def history_command(args: argparse.Namespace, console: Console) -> int:
    """``aionas history`` as parsed; the exit code."""
    show_history(
        args.path,
        top=args.top,
        status=args.status,
        as_json=args.json,
        console=console,
        mode=args.mode,
    )
    return 0
