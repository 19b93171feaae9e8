"""Durable history: the journal interface, the SQLite journal, and reading history.

>>> import aionas
>>> journal = aionas.SqliteJournal("search.db", experiment="mnist-lr")  # doctest: +SKIP
>>> engine = aionas.SequentialExecutionEngine(journal=journal)  # doctest: +SKIP
>>> models, summary = aionas.load_history("search.db")  # doctest: +SKIP

The guarantee: **every event that any callback or subscriber has received is
already committed to the journal**, so killing the process at any moment loses
nothing that anyone saw. An engine started on a journal that already holds its
experiment continues it: its history, its budgets and its sequence numbers.

- :class:`Journal`: the interface an engine writes through; implement it to keep
  history somewhere else.
- :class:`SqliteJournal`: one experiment in one SQLite file (WAL mode, standard
  library ``sqlite3``, JSON, never pickle), written in batches, in transactions,
  off the event loop.
- :func:`load_history`: read a journal without an engine, also while one writes
- :func:`list_experiments`: the experiments a journal file holds, with their metadata
  to it and also in a read-only folder.
"""

from __future__ import annotations

from ._base import Journal, Restored, RestoredError, RestoredModel
from ._rows import params_json
from ._schema import SCHEMA_VERSION
from ._sqlite import SqliteJournal
from .history import History, HistorySummary, ModelRecord, list_experiments, load_history

__all__ = [
    "SCHEMA_VERSION",
    "History",
    "HistorySummary",
    "Journal",
    "ModelRecord",
    "Restored",
    "RestoredError",
    "RestoredModel",
    "SqliteJournal",
    "list_experiments",
    "load_history",
    "params_json",
]
