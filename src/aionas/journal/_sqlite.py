"""The SQLite journal: one experiment of one file, written by one engine at a time.

Shared state (the engine calls a :class:`Store` from several worker threads):

=============================  ===========================  ===========================
field                          written by, under            read by, under
=============================  ===========================  ===========================
``Store._conn``                open, close; ``_lock``       record_*; ``_lock``
``Store._reader``              open, close; ``_read_lock``  read_events; ``_read_lock``
``Store._eid``, ``_identity``  open, before it returns      anyone after open
``_writers`` (module)          open, close; ``_open_lock``  open; ``_open_lock``
``SqliteJournal._store``       open, close (the engine)     every method, a plain read
=============================  ===========================  ===========================
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import ModelEvent, ModelEventType
from ..exceptions import JournalError
from ._base import Journal, Restored
from ._rows import END_DATA, encode_json, end_data, load, metric_value, rebuild_events
from ._schema import (
    connect,
    explain,
    fail,
    locate,
    open_reader,
    prepare,
    transaction,
    unwritable_directory,
    writing,
)

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["SqliteJournal", "Store"]

_TYPE_NAMES = {kind: kind.value for kind in ModelEventType}
_CHUNK = 1_000  # event rows per transaction
_ROWS_PER_STATEMENT = 200
_statements: dict[tuple[str, str, int], str] = {}


@dataclass
class _Writing:
    """A file this process writes: the path it was opened by, and its experiments."""

    path: str
    experiments: set[str] = field(default_factory=set)


# Files open for writing in this process, by identity (st_dev, st_ino): a hard link
# is the same file under another name, and SQLite must not write it under two names.
_writers: dict[tuple[int, int], _Writing] = {}
_open_lock = threading.Lock()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def insert_rows(
    conn: sqlite3.Connection, head: str, row: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` with a few multi-row ``INSERT`` statements.

    Not ``executemany``: that releases and retakes the GIL for every row, and
    while a model's thread computes in Python each retake can wait a whole GIL
    switch interval (5 ms); measured here, a contended ``executemany`` managed
    about 2,000 rows a second, these statements about 30,000, and uncontended
    they cost half as much per row.
    """
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[start : start + _ROWS_PER_STATEMENT]
        key = (head, row, len(part))
        sql = _statements.get(key)
        if sql is None:
            sql = _statements[key] = head + ", ".join([row] * len(part))
        conn.execute(sql, [value for values in part for value in values])


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with that id exists (it may be another's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """One experiment of one journal file, open for writing by one engine.

    Every method is blocking and meant to run in a worker thread. Writes take
    turns on one connection (``_lock``); reads use a second, read-only connection
    (``_read_lock``), so they see only what is committed and never wait for a write.
    """

    def __init__(self, path: Path, experiment: str, metadata: str | None = None) -> None:
        self.path = path
        self.experiment = experiment
        self.metadata = metadata  # JSON text to record when claiming, if any
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._eid = 0  # the experiment's row id
        self._identity: tuple[int, int] | None = None

    # -- opening -----------------------------------------------------------------

    def open(self) -> Restored:
        """Validate, upgrade or create the file, claim the experiment, read it back."""
        path = self.path
        folder = path.parent
        locate(path)
        if not os.access(folder, os.W_OK | os.X_OK):  # SQLite writes -wal and -shm there
            raise fail(path, unwritable_directory(path))
        resolved = path.resolve()  # SQLite names its -wal and -shm files after this
        with _open_lock:
            self._refuse_other_writer(_identity(resolved), str(resolved))
            conn = connect(resolved, "rwc", writing=True)
            reader = None
            try:
                prepare(conn, path)
                self._eid = self._claim(conn)
                restored = load(conn, path, self._eid)
                self._record_metadata(conn)
                reader = connect(resolved, "ro", writing=False)
                identity = _identity(resolved)
                if identity is None:
                    raise fail(path, "disappeared while it was being opened")
            except BaseException:
                conn.close()
                if reader is not None:
                    reader.close()
                raise
            _writers.setdefault(identity, _Writing(str(resolved))).experiments.add(self.experiment)
            self._identity = identity
        self._conn, self._reader = conn, reader
        return restored

    def _refuse_other_writer(self, identity: tuple[int, int] | None, resolved: str) -> None:
        """Refuse a file another engine of this process writes, whatever its name."""
        other = _writers.get(identity) if identity is not None else None
        if other is None:
            return
        alias = other.path != resolved
        if self.experiment in other.experiments:
            if alias:
                where = f" (through {other.path!r}, the same file under another name)"
                action = "close that engine first"
            else:
                where, action = "", "use another experiment name or close that engine"
            raise fail(
                self.path,
                f"experiment {self.experiment!r} is already open for writing by another "
                f"engine in this process{where}; {action}",
            )
        if alias:
            raise fail(
                self.path,
                f"is the same file as {other.path!r} (a hard link), which another engine in "
                "this process is writing; SQLite cannot safely write one file under two "
                f"names, so open it as {other.path!r}, or close that engine first",
            )

    def _claim(self, conn: sqlite3.Connection) -> int:
        """Take the experiment for this process (creating it), refusing a live writer."""
        path, name = self.path, self.experiment
        host, pid = socket.gethostname(), os.getpid()
        with writing(conn, path), transaction(conn):
            row = conn.execute(
                "SELECT id, owner_pid, owner_host FROM experiments WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                eid = conn.execute(
                    "INSERT INTO experiments (name, created, owner_pid, owner_host) "
                    "VALUES (?, ?, ?, ?)",
                    (name, time.time(), pid, host),
                ).lastrowid
                assert eid is not None
                return int(eid)
            eid, owner_pid, owner_host = row
            if owner_pid not in (None, pid) and owner_host == host and pid_alive(owner_pid):
                raise fail(
                    path,
                    f"experiment {name!r} is open for writing by process {owner_pid}; "
                    "stop that engine first, or use another experiment name",
                )
            conn.execute(
                "UPDATE experiments SET owner_pid = ?, owner_host = ? WHERE id = ?",
                (pid, host, eid),
            )
            return int(eid)

    def _record_metadata(self, conn: sqlite3.Connection) -> None:
        """Replace the claimed experiment's metadata with ours, if we have any."""
        if self.metadata is not None:
            with writing(conn, self.path), transaction(conn):
                conn.execute(
                    "UPDATE experiments SET metadata = ? WHERE id = ?", (self.metadata, self._eid)
                )

    # -- writing -----------------------------------------------------------------

    def record_submissions(
        self,
        rows: Sequence[tuple[int, str, str, float]],
        retried: Iterable[int],
        model_count: int,
    ) -> None:
        """New models ``(id, params JSON, class, time)``, resubmitted ids, and the count."""
        with self._lock:
            conn = self._connection()
            with transaction(conn):
                insert_rows(  # the experiment is our own integer: written in, not bound
                    conn,
                    "INSERT INTO models (experiment, id, params, class, submitted) VALUES ",
                    f"({int(self._eid)}, ?, ?, ?, ?)",
                    rows,
                )
                conn.executemany(
                    "UPDATE models SET submissions = submissions + 1 "
                    "WHERE experiment = ? AND id = ?",
                    [(self._eid, model_id) for model_id in retried],
                )
                conn.execute(  # concurrent submissions may commit out of order
                    "UPDATE experiments SET model_count = MAX(model_count, ?) WHERE id = ?",
                    (model_count, self._eid),
                )

    def record_events(self, events: Iterable[ModelEvent], total_duration: float) -> int:
        """Commit a batch of events, in chunks; returns the rows written.

        Each event's ``model_id`` names its model. Rows of each kind go through
        their own statement binding only what varies (binding a parameter costs
        about as much as the rest of an insert).
        """
        names = _TYPE_NAMES
        known = END_DATA
        intermediate, final = ModelEventType.IntermediateMetric, ModelEventType.FinalMetric
        start, end = ModelEventType.TrainingStart, ModelEventType.TrainingEnd
        batch: list[Any] = events if isinstance(events, list) else list(events)
        chunks: list[tuple[list[tuple[Any, ...]], ...]] = []
        for offset in range(0, len(batch), _CHUNK):
            metrics: list[tuple[Any, ...]] = []
            starts: list[tuple[Any, ...]] = []
            ends: list[tuple[Any, ...]] = []
            for event in batch[offset : offset + _CHUNK]:
                kind = event.event_type
                if kind is start:
                    starts.append((event.seq, event.model_id, event.timestamp))
                elif kind is end:
                    data = None
                    if event.error is None:
                        data = known.get((event.status, event.reason))
                    ends.append(
                        (event.seq, event.model_id, event.timestamp, data or end_data(event))
                    )
                elif kind is intermediate or kind is final:
                    raw = event.metric
                    value = raw if type(raw) is float and raw == raw else metric_value(raw)
                    metrics.append(
                        (
                            event.seq,
                            event.model_id,
                            names[kind],
                            event.timestamp,
                            value,
                            encode_json(raw),
                        )
                    )
            chunks.append((metrics, starts, ends))
        eid = int(self._eid)  # our own integer: safe to write into the statements
        insert = "INSERT INTO events VALUES "
        metric_row = f"({eid}, ?, ?, ?, ?, ?, ?)"
        start_row = f"({eid}, ?, ?, 'training_start', ?, NULL, NULL)"
        end_row = f"({eid}, ?, ?, 'training_end', ?, NULL, ?)"
        # Commit in chunks, taking turns with submissions between them: a submission
        # waits for one chunk, never for a whole batch.
        for metrics, starts, ends in chunks:
            with self._lock:
                conn = self._connection()
                with transaction(conn):
                    if metrics:
                        insert_rows(conn, insert, metric_row, metrics)
                    if starts:
                        insert_rows(conn, insert, start_row, starts)
                    if ends:
                        insert_rows(conn, insert, end_row, ends)
                    conn.execute(
                        "UPDATE experiments SET total_duration = ? WHERE id = ?",
                        (total_duration, eid),
                    )
        return len(batch)

    # -- reading -----------------------------------------------------------------

    def read_events(
        self, after_seq: int, through_seq: int, models: Mapping[int, Model]
    ) -> list[ModelEvent]:
        """Committed events with ``after_seq < seq <= through_seq``, rebuilt."""
        with self._read_lock:
            temporary = self._reader is None
            if self._reader is not None:
                reader = self._reader
            else:  # closed since: a subscriber still catching up reads on
                if not self._eid:
                    raise JournalError(f"journal {str(self.path)!r} was never opened")
                reader = open_reader(self.path.resolve())
            try:
                rows = reader.execute(
                    "SELECT seq, model_id, type, time, data FROM events "
                    "WHERE experiment = ? AND seq > ? AND seq <= ? ORDER BY seq",
                    (self._eid, after_seq, through_seq),
                ).fetchall()
            except sqlite3.Error as error:
                raise fail(self.path, explain(self.path, error, writing=False), error) from None
            finally:
                if temporary:
                    reader.close()
        return rebuild_events(rows, models)

    # -- closing -----------------------------------------------------------------

    def close(self) -> None:
        """Release the experiment and close the file."""
        with self._read_lock:
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.close()
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute(
                    "UPDATE experiments SET owner_pid = NULL, owner_host = NULL WHERE id = ?",
                    (self._eid,),
                )
            except sqlite3.Error:
                pass  # the owner check treats a dead process as gone anyway
            finally:
                conn.close()
                self._forget()

    def _forget(self) -> None:
        with _open_lock:
            identity = self._identity
            writing_it = _writers.get(identity) if identity is not None else None
            if writing_it is not None:
                writing_it.experiments.discard(self.experiment)
                if not writing_it.experiments:
                    del _writers[identity]  # type: ignore[arg-type]

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {str(self.path)!r} is not open for writing")
        return self._conn


def metadata_json(metadata: Mapping[str, Any]) -> str:
    """``metadata`` as the JSON text the journal stores.

    :raises TypeError: if it is not JSON (names must be strings; values numbers,
        strings, booleans, None, lists and mappings of those).
    """
    try:
        return json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must be plain JSON, got {dict(metadata)!r}: {error}") from None


class SqliteJournal(Journal):
    """Where an engine keeps its history: one experiment in one SQLite file.

    ``path`` is created if it does not exist (its directory must). Several
    experiments may share a file; only one engine at a time may write each. The
    file is opened when the engine starts (``async with``), and any problem
    (not a journal, corrupt, from a newer aionas, not writable, already being
    written, also through another name of the same file) raises
    :class:`~aionas.JournalError` then, naming the file and the cause; a failed
    open never modifies an existing file.

    ``metadata``, if given, is recorded with the experiment when the journal
    opens, replacing what was recorded before, in the transaction that claims the
    experiment (a JSON object: the ``aionas`` command keeps the experiment's
    direction, strategy, seed and search space there). :meth:`open` returns what
    was recorded before, in :attr:`Restored.metadata`; :func:`aionas.load_history`
    and :func:`aionas.list_experiments` read it.

    Read a journal without an engine with :func:`aionas.load_history`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        experiment: str = "default",
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a file path, got {path!r}")
        if not isinstance(experiment, str) or not experiment.strip():
            raise ValueError(f"experiment must be a non-empty name, got {experiment!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {metadata!r}")
        self.path = Path(path)
        self.experiment = experiment
        self._metadata = None if metadata is None else metadata_json(metadata)
        self._store: Store | None = None
        self._closed: Store | None = None  # the last store, for reading after close

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r}, experiment={self.experiment!r})"

    def open(self) -> Restored:
        """Open the file (creating it), claim the experiment, and read it back.

        :raises ~aionas.JournalError: as the class says, or if this object is
            already open (one journal object per engine).
        """
        if self._store is not None:
            raise JournalError(
                f"{self!r} is already in use by an engine; one journal object per engine"
            )
        store = Store(self.path, self.experiment, self._metadata)
        restored = store.open()
        self._store = store
        return restored

    def record_submissions(
        self,
        new: Sequence[tuple[int, str, str, float]],
        resubmitted: Sequence[int],
        model_count: int,
    ) -> None:
        """Commit new models, resubmissions and the submission count, in one transaction.

        :raises sqlite3.Error: if the write fails (nothing was committed).
        :raises ~aionas.JournalError: if the journal is not open.
        """
        self._open_store().record_submissions(new, resubmitted, model_count)

    def record_events(self, events: Sequence[ModelEvent], total_duration: float) -> None:
        """Commit events, up to 1,000 per transaction, and the execution-time counter.

        :raises sqlite3.Error: if a write fails (the chunks before it are committed).
        :raises ~aionas.JournalError: if the journal is not open.
        """
        self._open_store().record_events(events, total_duration)

    def read_events(
        self, after_seq: int, through_seq: int, models: Mapping[int, Model]
    ) -> list[ModelEvent]:
        """The committed events with ``after_seq < seq <= through_seq``, in ``seq`` order.

        Reads through a second, read-only connection: safe while the engine
        writes from another thread, and it sees only committed events. Metrics
        come back as JSON holds them (a ``numpy.float32`` as a ``float``).

        :raises KeyError: if an event's model is not in ``models``.
        :raises ~aionas.JournalError: if the journal is not open, or reading fails.
        """
        store = self._store or self._closed
        if store is None:
            return self._open_store().read_events(after_seq, through_seq, models)  # raises
        return store.read_events(after_seq, through_seq, models)

    def close(self) -> None:
        """Release the experiment and close the file; the object can be opened again.

        Events it committed can still be read with :meth:`read_events` (a
        subscription catching up when the engine exits reads them read-only).
        """
        store, self._store = self._store, None
        if store is not None:
            self._closed = store
            store.close()

    def _open_store(self) -> Store:
        store = self._store
        if store is None:
            raise JournalError(
                f"{self!r} is not open; an engine opens it when it starts, or call open()"
            )
        return store
