"""Which experiment of a journal ``history`` and ``plot`` read, and ``aionas experiments``.

A journal file may hold several experiments (one per search file, or as
``--experiment`` names them). ``history`` and ``plot`` read one: the one
``--experiment`` names, or the only one in the file; with several and no name they
refuse and list them, since a leaderboard cannot mix experiments (their spaces and
directions may differ). ``aionas experiments`` lists a file's experiments.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import History, list_experiments, load_history
from ..journal.history import HistorySummary
from ._common import UsageError, emit, format_value

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["choose_experiment", "experiments_command"]


def choose_experiment(path: Path, name: str | None) -> History:
    """The history of experiment ``name`` in ``path``, or of its only experiment.

    :raises UsageError: if ``name`` is None and the file holds several experiments
        (the message lists them), or none.
    :raises ~aionas.JournalError: if the file cannot be read or lacks ``name``.
    """
    if name is not None:
        return load_history(path, name)
    summaries = list_experiments(path)
    if not summaries:
        raise UsageError(f"{str(path)!r} holds no experiment yet")
    if len(summaries) > 1:
        names = ", ".join(s.experiments[0] for s in summaries)
        raise UsageError(
            f"{str(path)!r} holds {len(summaries)} experiments ({names}); choose one with "
            f"--experiment NAME (aionas experiments {path} lists them)"
        )
    return load_history(path, summaries[0].experiments[0])


def _row(summary: HistorySummary) -> dict[str, Any]:
    metadata = summary.metadata
    return {
        "experiment": summary.experiments[0],
        "created": summary.created,
        "models": summary.models,
        "by_status": summary.by_status,
        "mode": metadata.get("mode"),
        "strategy": metadata.get("strategy"),
        "seed": metadata.get("seed"),
        "best_id": summary.best_model_id,
        "best_metric": summary.best_metric,
        "metadata": metadata,
    }


def experiments_command(args: argparse.Namespace, console: Console) -> int:
    """``aionas experiments`` as parsed; the exit code."""
    summaries = list_experiments(args.path)
    if args.json:
        emit(console, json.dumps([_row(s) for s in summaries], indent=2, default=str))
        return 0
    from rich.table import Table

    table = Table(title=f"experiments: {args.path}")
    columns = ("experiment", "models", "trained", "best", "mode", "strategy", "seed", "created")
    for column in columns:
        table.add_column(column, justify="right" if column in {"models", "trained"} else "left")
    for summary in summaries:
        row = _row(summary)
        best = (
            "-"
            if summary.best_model_id is None
            else f"{format_value(summary.best_metric)} (#{summary.best_model_id})"
        )
        created = (
            "-"
            if summary.created is None
            else time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.created))
        )
        table.add_row(
            row["experiment"],
            str(summary.models),
            str(summary.by_status.get("trained", 0)),
            best,
            str(row["mode"] or "-"),
            str(row["strategy"] or "-"),
            str(row["seed"] if row["seed"] is not None else "-"),
            created,
        )
    console.print(table)
    return 0
