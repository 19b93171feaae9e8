"""The ``aionas`` command: run a search from a file, watch it, read and plot its history.

    aionas run FILE.py [--strategy random|grid|evolution|optuna] [--max-models N]
                       [--max-duration S] [--journal PATH] [--seed N] [--mode max|min]
    aionas demo                       # the bundled digits example
    aionas history [PATH] [--top N] [--status S] [--json] [--mode max|min]
    aionas plot [PATH] -o FILE.png [--mode max|min]

FILE defines ``space`` (a ``SearchSpace`` or a dict of ``Choice``/``Int``/``Float``)
and ``evaluate(params)``, which trains a model, reports per-epoch metrics with
``aionas.report_intermediate_result`` and returns its final metric. History is
kept in an SQLite journal (``./aionas.db`` by default; the experiment is named
after FILE), so running the same command again resumes where it stopped.

Needs the extras: ``pip install 'aionas[all]'``.

One module per job, each using only what ``aionas`` exports:

- ``_main``: :func:`main`, which parses, dispatches and maps errors to exit codes;
- ``_parser``: the subcommands, their options and defaults;
- ``_searchfile``: loading FILE.py (and finding the demo's);
- ``_run``: ``run`` and ``demo``, a journaled search that resumes;
- ``_progress``: the live panel on a terminal, plain lines otherwise;
- ``_history``: the leaderboard, as a table or JSON;
- ``_plot``: learning curves and best-so-far, as a PNG;
- ``_common``: the usage error, optional extras, how values print.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
