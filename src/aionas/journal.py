"""Durable history: an SQLite journal of every model and every event.

>>> import aionas
>>> journal = aionas.SqliteJournal("search.db", experiment="mnist-lr")  # doctest: +SKIP
>>> engine = aionas.SequentialExecutionEngine(journal=journal)  # doctest: +SKIP

The guarantee: **every event that any callback or subscriber has received is
already committed to the journal**, so killing the process at any moment loses
nothing that anyone saw. Rows are written in batches, in transactions, off the
event loop (SQLite in WAL mode, standard library ``sqlite3``, JSON, never
pickle). An engine started on a journal that already holds its experiment
continues it: its history, its budgets and its sequence numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._sqlite import SCHEMA_VERSION, Restored, Store

__all__ = ["SCHEMA_VERSION", "SqliteJournal"]


class SqliteJournal:
    """Where an engine keeps its history: one experiment in one SQLite file.

    ``path`` is created if it does not exist (its directory must). Several
    experiments may share a file; only one engine at a time may write each. The
    file is opened when the engine starts (``async with``), and any problem
    (not a journal, corrupt, from a newer aionas, not writable, already being
    written) raises :class:`~aionas.JournalError` then, naming the file; a failed
    open never modifies an existing file.

    Read a journal without an engine with :func:`aionas.load_history`.
    """

    def __init__(self, path: str | os.PathLike[str], experiment: str = "default") -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a file path, got {path!r}")
        if not isinstance(experiment, str) or not experiment.strip():
            raise ValueError(f"experiment must be a non-empty name, got {experiment!r}")
        self.path = Path(path)
        self.experiment = experiment
        self._store: Store | None = None

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r}, experiment={self.experiment!r})"

    # The engine's side (blocking; the engine calls these in worker threads).

    def _open(self) -> Restored:
        if self._store is not None:
            from .exceptions import JournalError

            raise JournalError(
                f"{self!r} is already in use by an engine; one journal object per engine"
            )
        store = Store(self.path, self.experiment)
        restored = store.open()
        self._store = store
        return restored

    def _writer(self) -> Store:
        assert self._store is not None, "journal used before the engine opened it"
        return self._store

    def _close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()
