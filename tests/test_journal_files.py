"""The files a journal leaves next to itself, and paths that are not journal files.

Reading a journal that no engine has open leaves no ``-wal``/``-shm`` files
behind; reading while an engine writes works and does not disturb it. A
directory, a named pipe or a device given as a journal is named for what it is.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas
from aionas import SequentialExecutionEngine, SqliteJournal, load_history
from aionas.journal._schema import reading

from .helpers import Reporter

pytestmark = pytest.mark.anyio


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def summary_of(db: Path) -> list[tuple[Any, ...]]:
    models, _ = load_history(db)
    return [(m.model_id, m.status.value, m.metric) for m in models]


async def search(db: Path, n: int, *, during: Callable[[], Any] | None = None) -> None:
    """Run ``n`` models into ``db``; call ``during()`` before the engine closes."""
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(*(Reporter({"i": i, "n": 1}) for i in range(n)))
        await engine.wait_models()
        if during is not None:
            during()


async def test_reading_a_closed_journal_leaves_no_wal_or_shm(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    await search(db, 2)
    assert files(tmp_path) == ["search.db"]  # the engine closed cleanly
    before = db.read_bytes()
    assert summary_of(db) == [(1, "trained", 1.0), (2, "trained", 1.0)]
    assert files(tmp_path) == ["search.db"]
    assert db.read_bytes() == before


def test_history_command_leaves_no_wal_or_shm(tmp_path: Path) -> None:
    db = tmp_path / "aionas.db"
    anyio.run(search, db, 1)
    result = subprocess.run(
        [sys.executable, "-m", "aionas.cli", "history", "aionas.db", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"trained"' in result.stdout
    assert files(tmp_path) == ["aionas.db"]


async def test_reading_while_an_engine_writes_does_not_disturb_it(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    seen: list[list[tuple[Any, ...]]] = []
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(Reporter({"n": 1}))
        await engine.wait_models()
        seen.append(summary_of(db))
        assert "search.db-wal" in files(tmp_path)  # the engine's own files stay
        await engine.submit_models(Reporter({"n": 2}))  # and it goes on writing
        await engine.wait_models()
        seen.append(summary_of(db))
    assert seen == [[(1, "trained", 1.0)], [(1, "trained", 1.0), (2, "trained", 2.0)]]
    assert files(tmp_path) == ["search.db"]  # the engine still cleans up at its close
    assert summary_of(db) == seen[-1]


async def test_a_reader_open_when_the_engine_closes_cleans_up_after_it(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    await search(db, 1)
    with reading(db) as conn:
        await search(db, 1)  # resumes the experiment: a second model
        assert "search.db-wal" in files(tmp_path)  # left to the reader, still open
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone() == (2,)
    assert files(tmp_path) == ["search.db"]
    assert summary_of(db) == [(1, "trained", 1.0), (2, "trained", 1.0)]


async def test_a_reader_cannot_change_the_file(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    await search(db, 1)
    before = db.read_bytes()
    with pytest.raises(aionas.JournalError, match="readonly"), reading(db) as conn:
        conn.execute("DELETE FROM events")
    assert db.read_bytes() == before
    assert files(tmp_path) == ["search.db"]


async def test_reading_a_crashed_journal_keeps_its_logged_events(tmp_path: Path) -> None:
    # A copy taken while the engine ran: its last events live only in the -wal file.
    # Reading folds the log into the file (as SQLite's recovery does) and loses nothing.
    db, copies = tmp_path / "search.db", tmp_path / "copies"
    copies.mkdir()
    copy = copies / "search.db"

    def copy_while_open() -> None:
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
        assert os.path.getsize(f"{copy}-wal") > 0

    await search(db, 3, during=copy_while_open)
    expected = summary_of(db)
    assert len(expected) == 3
    assert summary_of(copy) == expected
    assert files(copies) == ["search.db"]
    assert summary_of(copy) == expected


async def test_a_directory_is_not_a_journal_file(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    message = r"'.*results': is a directory, not a journal file"
    with pytest.raises(aionas.JournalError, match=message):
        load_history(folder)
    with pytest.raises(aionas.JournalError, match=message):
        SqliteJournal(folder).open()
    with pytest.raises(aionas.JournalError, match=message):
        async with SequentialExecutionEngine(journal=SqliteJournal(f"{folder}/")):
            pass
    assert files(folder) == []


async def test_a_directory_holding_a_journal_suggests_it(tmp_path: Path) -> None:
    await search(tmp_path / "aionas.db", 1)
    with pytest.raises(aionas.JournalError, match="is a directory") as caught:
        load_history(tmp_path)
    assert f"did you mean {str(tmp_path / 'aionas.db')!r}" in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
async def test_a_named_pipe_is_not_a_journal_file(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.db"
    os.mkfifo(pipe)
    with pytest.raises(aionas.JournalError, match=r"is a named pipe \(FIFO\), not a journal file"):
        load_history(pipe)
    with pytest.raises(aionas.JournalError, match=r"is a named pipe \(FIFO\), not a journal file"):
        SqliteJournal(pipe).open()


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null here")
async def test_a_device_is_not_a_journal_file() -> None:
    with pytest.raises(aionas.JournalError, match="is a device, not a journal file"):
        load_history("/dev/null")
    with pytest.raises(aionas.JournalError, match="is a device, not a journal file"):
        SqliteJournal("/dev/null").open()


async def test_a_symbolic_link_to_a_journal_is_read(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    await search(db, 1)
    link = tmp_path / "latest.db"
    link.symlink_to(db)
    assert summary_of(link) == [(1, "trained", 1.0)]
    assert files(tmp_path) == ["latest.db", "search.db"]


def test_a_file_that_is_not_sqlite_is_still_called_so(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database, but long enough to be read as one " * 100)
    before = text.read_bytes()
    with pytest.raises(aionas.JournalError, match="not a SQLite database"):
        load_history(text)
    assert text.read_bytes() == before
    assert files(tmp_path) == ["notes.db"]
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(aionas.JournalError, match="not an aionas journal"):
        load_history(tmp_path / "other.db")
