"""Reading a journal without an engine; the home of these names is :mod:`aionas.journal`."""

from __future__ import annotations

from .journal.history import History, HistorySummary, ModelRecord, RestoredError, load_history

__all__ = ["History", "HistorySummary", "ModelRecord", "RestoredError", "load_history"]
