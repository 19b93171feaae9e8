"""Journals where this user cannot write: reading works, and errors name the real cause.

Permissions are real here. Root ignores them, so under root each check runs in a
forked child that has become ``nobody`` (uid 65534) before touching the files, on
journals in a directory that ``nobody`` can reach.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

import aionas
from aionas import SequentialExecutionEngine, SqliteJournal, load_history

from .helpers import Reporter

T = TypeVar("T")
NOBODY = 65534
ROOT = os.geteuid() == 0


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Path]:
    """A directory for the journals: ``tmp_path``, or one ``nobody`` can reach under root."""
    if not ROOT:
        yield tmp_path
        return
    base = Path(tempfile.mkdtemp(prefix="aionas-readonly-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for folder in [base, *base.rglob("*")]:
            if folder.is_dir():
                folder.chmod(0o755)
        shutil.rmtree(base)


def unprivileged(check: Callable[[], T]) -> T:
    """``check()`` as a user whom file permissions bind; its result or its exception.

    Everything ``check`` needs must be imported already: ``nobody`` may not be
    able to read the interpreter's own files.
    """
    if not ROOT:
        return check()
    readable, writable = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                outcome: Any = ("ok", check())
            except BaseException as error:
                outcome = ("raised", error)
            try:
                data = pickle.dumps(outcome)
            except Exception as error:
                data = pickle.dumps(("raised", RuntimeError(f"unpicklable: {error!r}")))
            os.write(writable, data)
        finally:
            os._exit(0)
    os.close(writable)
    watchdog = threading.Timer(20, os.kill, (pid, signal.SIGKILL))  # a hang fails, never CI
    watchdog.start()
    try:
        with os.fdopen(readable, "rb") as pipe:
            data = pipe.read()
    finally:
        watchdog.cancel()
        os.waitpid(pid, 0)
    assert data, "the unprivileged child died without an answer"
    kind, value = pickle.loads(data)
    if kind == "raised":
        raise value
    result: T = value
    return result


def search(db: Path, n: int = 3, *, during: Callable[[], None] | None = None) -> None:
    """Run ``n`` models into the journal ``db``; call ``during()`` before leaving."""

    async def main() -> None:
        async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
            await engine.submit_models(*(Reporter({"i": i, "n": 2}) for i in range(n)))
            await engine.wait_models()
            if during is not None:
                during()

    anyio.run(main)


def summary_of(db: Path) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    models, summary = load_history(db)
    return [(m.model_id, m.status.value, m.metric) for m in models], summary.by_status


def read_only(folder: Path) -> None:
    folder.chmod(0o555)
    if not ROOT:
        assert not os.access(folder, os.W_OK), "this test needs a directory it cannot write"


def test_history_of_a_closed_journal_in_a_read_only_directory(place: Path) -> None:
    folder = place / "results"
    folder.mkdir()
    db = folder / "search.db"
    search(db)
    assert sorted(os.listdir(folder)) == ["search.db"]  # no -wal left: closed cleanly
    read_only(folder)
    got = unprivileged(lambda: summary_of(db))
    assert sorted(os.listdir(folder)) == ["search.db"]  # nothing written
    assert got[1] == {"trained": 3}
    assert got == summary_of(db)


def test_history_in_the_write_ahead_log_of_a_read_only_directory(place: Path) -> None:
    # A journal copied while its engine ran: its last events live only in the -wal file,
    # and no -shm file exists (nor can one be created there).
    folder = place / "copied"
    folder.mkdir()
    db, copy = place / "search.db", folder / "search.db"

    def copy_while_open() -> None:
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")

    search(db, n=4, during=copy_while_open)
    assert Path(f"{copy}-wal").stat().st_size > 0
    expected = summary_of(db)
    read_only(folder)
    got = unprivileged(lambda: summary_of(copy))
    assert got == expected
    assert got[1] == {"trained": 4}
    assert sorted(os.listdir(folder)) == ["search.db", "search.db-wal"]  # nothing written


def test_history_while_an_engine_writes_to_a_directory_the_reader_cannot(place: Path) -> None:
    folder = place / "live"
    folder.mkdir()
    db = folder / "search.db"
    seen: list[Any] = []

    def read_during() -> None:
        folder.chmod(0o555)  # the reader cannot write here; the engine keeps its files open
        seen.append(unprivileged(lambda: summary_of(db)))
        folder.chmod(0o755)

    search(db, n=2, during=read_during)
    assert seen == [summary_of(db)]
    assert seen[0][1] == {"trained": 2}


def test_unreadable_journal_is_called_unreadable_not_corrupt(place: Path) -> None:
    db = place / "private.db"
    search(db, n=1)
    db.chmod(0)
    try:
        with pytest.raises(aionas.JournalError, match="permission denied") as caught:
            unprivileged(lambda: load_history(db))
        assert "corrupt" not in str(caught.value)
        assert str(db) in str(caught.value)
    finally:
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_writing_in_a_read_only_directory_names_the_directory(place: Path) -> None:
    folder = place / "results"
    folder.mkdir()
    db = folder / "search.db"
    search(db, n=1)
    before = db.read_bytes()
    read_only(folder)

    def write() -> None:
        SqliteJournal(db).open()

    with pytest.raises(aionas.JournalError, match="not writable") as caught:
        unprivileged(write)
    message = str(caught.value)
    assert "corrupt" not in message
    assert str(folder) in message
    assert "-wal" in message
    with pytest.raises(aionas.JournalError, match="not writable"):
        unprivileged(lambda: SqliteJournal(folder / "new.db").open())
    assert db.read_bytes() == before
    assert sorted(os.listdir(folder)) == ["search.db"]
    # Reading still works there.
    assert unprivileged(lambda: summary_of(db))[1] == {"trained": 1}


def test_a_path_that_is_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "is_a_directory.db"
    target.mkdir()
    with pytest.raises(aionas.JournalError, match="is a directory"):
        SqliteJournal(target).open()
    with pytest.raises(aionas.JournalError, match="is a directory"):
        load_history(target)
    assert list(target.iterdir()) == []


def test_a_journal_behind_a_closed_directory_is_not_called_missing(place: Path) -> None:
    closed = place / "closed"
    closed.mkdir()
    db = closed / "search.db"
    search(db, n=1)
    closed.chmod(0)
    try:
        with pytest.raises(aionas.JournalError, match="permission denied") as caught:
            unprivileged(lambda: load_history(db))
        assert "does not exist" not in str(caught.value)
        with pytest.raises(aionas.JournalError, match="permission denied"):
            unprivileged(lambda: SqliteJournal(db).open())
    finally:
        closed.chmod(0o755)
