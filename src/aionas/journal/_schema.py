"""The journal's SQLite file: its schema, opening it safely, and saying what is wrong.

Schema (``PRAGMA user_version`` = ``SCHEMA_VERSION``):

- ``experiments``: one row per experiment (``id``, ``name``): the budget counters
  (``model_count``, ``total_duration``) and the writing engine's process
  (``owner_pid``, ``owner_host``), cleared when it closes; since version 2, its
  ``metadata`` (a JSON object the writer gives, e.g. the command's direction,
  strategy, seed and search space).
- ``models``: one row per model: ``id``, ``params`` (JSON), its class name, when
  it was first submitted, and how many times it was submitted.
- ``events``: one row per event, in ``seq`` order: ``model_id``, ``type``,
  ``time``, ``value`` (a metric's canonical number) and ``data`` (JSON): for a
  metric the raw value as reported; for an end event ``status``, ``reason`` and,
  if any, ``error`` (``type``, ``message``, ``traceback``). A run's duration is
  its end's ``time`` less its start's (the view computes it).
  Few columns on purpose: binding a column costs about as much as the rest of
  the insert.

A model's status, metrics and error are what its events say; the view
``model_status`` shows them for people reading the file with ``sqlite3``.

Migrations: ``MIGRATIONS[n]`` upgrades a file from version ``n`` to ``n + 1`` in
one transaction; opening an older file applies them in order. A file from a newer
version is refused, untouched. Nothing is ever pickled.

Errors: every SQLite error becomes a :class:`~aionas.JournalError` that names the
file and the real cause (permissions, a full disk, a lock, damage) with what to do;
a file is called corrupt only when SQLite says so.

Reading leaves no files behind: :func:`open_reader` opens the file read-write
but ``query_only`` (nothing can be changed through it), because in WAL mode only
a connection that may write removes the ``-wal`` and ``-shm`` files when it is
the last to close; a read-only connection creates them and leaves them. While a
writer is open, its files stay and it is not disturbed.

Reading where nothing can be written (a shared, read-only results folder): a
journal in WAL mode needs a ``-shm`` file next to it, which cannot be created
there. :func:`reading` then opens the file as ``immutable`` when no write-ahead
log holds data, and otherwise reads a private copy of the file and its log.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from ..exceptions import JournalError

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "connect",
    "explain",
    "fail",
    "locate",
    "open_reader",
    "prepare",
    "reading",
    "transaction",
]

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    model_count INTEGER NOT NULL DEFAULT 0,
    total_duration REAL NOT NULL DEFAULT 0,
    owner_pid INTEGER,
    owner_host TEXT,
    metadata TEXT
);
CREATE TABLE models (
    experiment INTEGER NOT NULL REFERENCES experiments (id),
    id INTEGER NOT NULL,
    params TEXT NOT NULL,
    class TEXT NOT NULL,
    submitted REAL NOT NULL,
    submissions INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (experiment, id)
) WITHOUT ROWID;
CREATE TABLE events (
    experiment INTEGER NOT NULL REFERENCES experiments (id),
    seq INTEGER NOT NULL,
    model_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    time REAL NOT NULL,
    value REAL,
    data TEXT,
    PRIMARY KEY (experiment, seq)
) WITHOUT ROWID;
CREATE VIEW model_status AS
    SELECT x.name AS experiment, m.id, m.params,
           json_extract(e.data, '$.status') AS status,
           json_extract(e.data, '$.reason') AS reason,
           (SELECT s.time FROM events AS s
             WHERE s.experiment = e.experiment AND s.model_id = e.model_id
               AND s.type = 'training_start' AND s.seq < e.seq
             ORDER BY s.seq DESC LIMIT 1) AS started,
           e.time AS ended,
           e.time - (SELECT s.time FROM events AS s
                      WHERE s.experiment = e.experiment AND s.model_id = e.model_id
                        AND s.type = 'training_start' AND s.seq < e.seq
                      ORDER BY s.seq DESC LIMIT 1) AS duration,
           json_extract(e.data, '$.error.type') AS error_type,
           json_extract(e.data, '$.error.message') AS error_message
    FROM models AS m
    JOIN experiments AS x ON x.id = m.experiment
    LEFT JOIN events AS e
      ON e.experiment = m.experiment AND e.model_id = m.id AND e.type = 'training_end'
     AND e.seq = (SELECT MAX(seq) FROM events
                  WHERE experiment = m.experiment AND model_id = m.id
                    AND type = 'training_end');
"""


def _add_metadata(conn: sqlite3.Connection) -> None:
    """Version 1 to 2: experiments get a ``metadata`` column (NULL: none recorded)."""
    conn.execute("ALTER TABLE experiments ADD COLUMN metadata TEXT")


#: ``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1``.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _add_metadata}

_TIMEOUT = 30  # seconds SQLite waits for another connection's lock

# Primary result codes (``error.sqlite_errorcode & 0xFF``).
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_ACCESS = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_AUTH,
}
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def fail(path: Path, problem: str, error: BaseException | None = None) -> JournalError:
    """The error to raise: the file, what is wrong, and SQLite's own words if any."""
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return JournalError(f"journal {str(path)!r}: {problem}{detail}")


def _code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def explain(path: Path, error: sqlite3.Error, *, writing: bool) -> str:
    """What an SQLite error on ``path`` means, in words, and what to do about it."""
    code = _code(error)
    if code in _DAMAGED:
        return "is not a SQLite database, or is corrupt"
    if code in _ACCESS:
        return _access_problem(path, writing=writing)
    if code in _BUSY:
        return (
            f"is locked by another connection that kept it for more than {_TIMEOUT} seconds; "
            "stop the other program using it, then try again"
        )
    if code == sqlite3.SQLITE_FULL:
        return "cannot be written: the disk is full; free some space, then resume"
    if code == sqlite3.SQLITE_IOERR:
        return (
            "cannot be read or written: the system reported an I/O error; check the disk "
            "(a journal needs a local disk, not a network file system)"
        )
    action = "written" if writing else "read"
    return f"cannot be {action}"


def _access_problem(path: Path, *, writing: bool) -> str:
    """Which permission is missing, as far as this process can tell."""
    if path.is_dir():
        return _not_a_file(path, "a directory")
    folder = path.parent
    if path.exists() and not os.access(path, os.R_OK):
        return (
            "cannot be read: permission denied for this user; ask its owner for read "
            "access, or read a copy"
        )
    if writing:
        if path.exists() and not os.access(path, os.W_OK):
            return (
                "is read-only for this user; make it writable to continue it, or read "
                "it with aionas.load_history"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            return unwritable_directory(path)
    return "cannot be opened; check the permissions of the file and of its directory"


def unwritable_directory(path: Path) -> str:
    """The problem of a journal whose directory this process cannot write."""
    return (
        f"cannot be written: its directory {str(path.parent)!r} is not writable by this "
        f"user, and SQLite keeps {path.name}-wal and {path.name}-shm next to the file; make "
        "the directory writable, or use a journal elsewhere (reading works without writing)"
    )


#: The journal file name the command uses by default, suggested for a directory holding one.
_USUAL_NAME = "aionas.db"


def _not_a_file(path: Path, kind: str) -> str:
    """The problem of a journal path that names ``kind`` (a directory, a FIFO, ...)."""
    problem = f"is {kind}, not a journal file"
    if kind == "a directory":
        inside = path / _USUAL_NAME
        hint = f" (did you mean {str(inside)!r}?)" if inside.is_file() else ""
        return f"{problem}; give the path of a journal file{hint}"
    return problem


def _kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"  # pragma: no cover - no other kind on POSIX


def locate(path: Path) -> bool:
    """Whether the journal file exists, refusing a path that cannot be a journal file.

    :raises JournalError: if ``path`` is a directory or anything else but a regular
        file (after following symbolic links), its directory is missing or not a
        directory, or a directory on the way cannot be searched (naming that cause,
        not "does not exist").
    """
    try:
        found = os.stat(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        raise fail(path, _UNREACHABLE) from None
    except NotADirectoryError:
        raise fail(path, "a part of its path is a file, not a directory") from None
    else:
        kind = _kind(found.st_mode)
        if kind is not None:
            raise fail(path, _not_a_file(path, kind))
        return True
    try:
        folder = os.stat(path.parent)
    except FileNotFoundError:
        raise fail(path, f"its directory {str(path.parent)!r} does not exist") from None
    except PermissionError:
        raise fail(path, _UNREACHABLE) from None
    if not stat.S_ISDIR(folder.st_mode):
        raise fail(path, f"{str(path.parent)!r} is not a directory")
    return False


_UNREACHABLE = (
    "cannot be reached: this user may not search one of the directories on its path "
    "(permission denied); ask for access to them, or use a copy"
)


def connect(path: Path, mode: str, *, writing: bool) -> sqlite3.Connection:
    """Open ``path`` with an SQLite URI ``mode`` (``rwc``, ``rw``, ``ro``, ``ro&immutable=1``).

    Autocommit (``isolation_level=None``: transactions are explicit), usable from
    any thread (callers serialise), waiting up to 30 seconds for another
    connection's lock.
    """
    uri = f"file:{quote(str(path))}?mode={mode}"
    try:
        return sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=_TIMEOUT
        )
    except sqlite3.Error as error:
        raise fail(path, explain(path, error, writing=writing), error) from None


def _survey(conn: sqlite3.Connection) -> tuple[int, set[str]]:
    """The schema version and the tables: the first reads, where most problems show."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return version, tables


def _check_version(path: Path, version: int, tables: set[str]) -> int:
    """The file's schema version, refusing what is not ours."""
    if version > SCHEMA_VERSION:
        raise fail(
            path,
            f"was written by a newer aionas (schema version {version}, this aionas reads up to "
            f"{SCHEMA_VERSION}); upgrade aionas to use it",
        )
    if version == 0 and tables:
        raise fail(
            path, f"is a SQLite database but not an aionas journal (tables {sorted(tables)})"
        )
    if version > 0 and not {"experiments", "models", "events"} <= tables:
        raise fail(path, "is an aionas journal with missing tables; it is damaged")
    return version


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if anything raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def writing(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Turn an SQLite error while preparing the file into a :class:`JournalError`."""
    try:
        yield
    except sqlite3.Error as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise fail(path, explain(path, error, writing=True), error) from None


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check, create or upgrade the schema of a file opened for writing; WAL mode."""
    try:
        version = _check_version(path, *_survey(conn))
    except sqlite3.Error as error:
        raise fail(path, explain(path, error, writing=True), error) from None
    with writing(conn, path):
        if version == 0:
            conn.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
            version = SCHEMA_VERSION
        while version < SCHEMA_VERSION:
            with transaction(conn):
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            version += 1
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")


def open_reader(path: Path) -> sqlite3.Connection:
    """A connection to the existing ``path`` that can only read and leaves no files behind.

    It is opened read-write (SQLite falls back to read-only by itself where the
    file cannot be written) and set ``query_only``: no statement can change the
    file. Being able to write lets SQLite, when this is the last connection to
    close, fold the write-ahead log into the file and remove the ``-wal`` and
    ``-shm`` files, as a writer does; a ``mode=ro`` connection creates them and
    leaves them behind. While another connection is open, closing this one
    leaves them to that connection. A log left by a writer that crashed is folded
    into the file the same way: the file's bytes change, what it holds does not.

    :raises JournalError: if the file cannot be opened.
    """
    conn = connect(path, "rw", writing=False)
    try:
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        conn.close()
        raise fail(path, explain(path, error, writing=False), error) from None
    return conn


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a journal, also where nothing can be written.

    It sees everything committed so far, also while an engine writes, and never
    changes what the file holds. Reading a journal no engine has open leaves no
    ``-wal`` or ``-shm`` file behind (see :func:`open_reader`). Every SQLite error,
    on opening or in the ``with`` block, becomes a :class:`JournalError` naming
    its cause.

    :raises JournalError: if ``path`` does not exist or is not a journal file.
    """
    if not locate(path):
        raise fail(path, "does not exist")
    copy: tempfile.TemporaryDirectory[str] | None = None
    conn = open_reader(path)
    try:
        try:
            found = _survey(conn)
        except sqlite3.Error as error:
            if _code(error) not in _ACCESS:
                raise
            conn.close()
            conn, copy = _read_elsewhere(path, error)
            found = _survey(conn)
        _check_version(path, *found)
        yield conn
    except sqlite3.Error as error:
        raise fail(path, explain(path, error, writing=False), error) from None
    finally:
        conn.close()
        if copy is not None:
            copy.cleanup()


def _read_elsewhere(
    path: Path, error: sqlite3.Error
) -> tuple[sqlite3.Connection, tempfile.TemporaryDirectory[str] | None]:
    """Read a journal whose ``-shm`` file cannot be created (a read-only directory).

    Without a write-ahead log holding data, the file alone is the journal: open it
    ``immutable`` (no ``-shm`` needed). Otherwise the log holds committed events
    that are not in the file yet: read a copy of both in a private directory.
    """
    if not os.access(path, os.R_OK):
        raise fail(path, _access_problem(path, writing=False), error)
    log = Path(f"{path}-wal")
    try:
        pending = log.stat().st_size
    except FileNotFoundError:
        pending = 0
    except OSError as problem:
        raise fail(path, f"its write-ahead log {str(log)!r} cannot be read", problem) from None
    if pending == 0:
        return connect(path, "ro&immutable=1", writing=False), None
    copy = tempfile.TemporaryDirectory(prefix="aionas-journal-")
    target = Path(copy.name) / path.name
    try:
        shutil.copyfile(path, target)
        shutil.copyfile(log, f"{target}-wal")
        return connect(target, "ro", writing=False), copy
    except BaseException as problem:
        copy.cleanup()
        if isinstance(problem, OSError | JournalError):
            raise fail(
                path,
                "is in a directory this user cannot write, and reading it needs a copy of "
                f"the file and its write-ahead log {str(log)!r}, which failed; ask for write "
                "access to the directory, or copy both files elsewhere",
                problem,
            ) from None
        raise
