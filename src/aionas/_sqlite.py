"""The SQLite side of the journal: schema, migrations, opening safely, rows in and out.

Schema (``PRAGMA user_version`` = ``SCHEMA_VERSION``):

- ``experiments``: one row per experiment (``id``, ``name``): the budget counters (``model_count``,
  ``total_duration``) and the writing engine's process (``owner_pid``,
  ``owner_host``), cleared when it closes.
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
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .events import ModelEvent, ModelEventType, TrainingEndEvent
from .exceptions import JournalError
from .history import History, ModelRecord, RestoredError, summarize
from .metrics import Metrics, canonical_metric
from .status import ModelStatus

if TYPE_CHECKING:
    from .model import Model

__all__ = ["SCHEMA_VERSION", "Restored", "RestoredModel", "Store", "encode_json", "read_history"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    model_count INTEGER NOT NULL DEFAULT 0,
    total_duration REAL NOT NULL DEFAULT 0,
    owner_pid INTEGER,
    owner_host TEXT
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

#: ``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1`` (none yet).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}

_TYPE_NAMES = {kind: kind.value for kind in ModelEventType}
_CHUNK = 1_000  # event rows per transaction
_open_for_writing: set[tuple[str, str]] = set()  # (file, experiment) in this process
_open_lock = threading.Lock()


def encode_json(value: Any) -> str:
    """JSON text for a raw metric or params; NaN and infinities round-trip."""
    if type(value) is float:
        if math.isfinite(value):
            return repr(value)
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if type(value) is int:
        return str(value)
    return json.dumps(value)  # allow_nan is the default: NaN is written as NaN


def _end_data(event: TrainingEndEvent) -> str:
    """The JSON ``data`` of an end event (remembered for the common, error-free case)."""
    data: dict[str, Any] = {"status": event.status.value, "reason": event.reason}
    error = event.error
    if error is None:
        text = _END_DATA[event.status, event.reason] = json.dumps(data)
        return text
    data["error"] = {
        "type": type(error).__qualname__,
        "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
    }
    return json.dumps(data)


_END_DATA: dict[tuple[ModelStatus, str], str] = {}


def _canonical(raw: Any) -> float | None:
    try:
        value = canonical_metric(raw)
    except ValueError:
        return None
    return None if value != value else value  # SQLite stores NaN as NULL anyway


@dataclass
class RestoredModel:
    """One model as its rows say it was."""

    model_id: int
    params: dict[str, Any]
    class_name: str
    submissions: int
    ends: int = 0
    status: ModelStatus = ModelStatus.Frozen
    reason: str | None = None
    error: RestoredError | None = None
    metrics: Metrics = field(default_factory=lambda: Metrics(strict=False))
    running: bool = False  # started after its last end, and not ended since

    @property
    def unfinished(self) -> bool:
        """Submitted more often than it ended: queued or running when the writer stopped."""
        return self.ends < self.submissions


@dataclass
class Restored:
    """What a journal holds for one experiment."""

    models: list[RestoredModel]
    model_count: int
    total_duration: float
    next_seq: int
    next_id: int


def _fail(path: Path, problem: str, error: BaseException | None = None) -> JournalError:
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return JournalError(f"journal {str(path)!r}: {problem}{detail}")


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    mode = "ro" if readonly else "rwc"
    uri = f"file:{quote(str(path))}?mode={mode}"
    try:
        return sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
        )
    except sqlite3.Error as error:
        raise _fail(path, "cannot be opened; check the path and its permissions", error) from None


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, refusing what is not ours. Reads only."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    except sqlite3.DatabaseError as error:
        raise _fail(path, "is not a SQLite database, or is corrupt", error) from None
    if version > SCHEMA_VERSION:
        raise _fail(
            path,
            f"was written by a newer aionas (schema version {version}, this aionas reads up to "
            f"{SCHEMA_VERSION}); upgrade aionas to use it",
        )
    if version == 0 and tables:
        raise _fail(
            path, f"is a SQLite database but not an aionas journal (tables {sorted(tables)})"
        )
    if version > 0 and not {"experiments", "models", "events"} <= tables:
        raise _fail(path, "is an aionas journal with missing tables; it is damaged")
    return version


_ROWS_PER_STATEMENT = 200
_statements: dict[tuple[str, str, int], str] = {}


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


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
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
def _writing(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Turn an SQLite error while preparing the file into a :class:`JournalError`."""
    try:
        yield
    except sqlite3.Error as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise _fail(
            path, "cannot be written; check its permissions and free space", error
        ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """One experiment of one journal file, open for writing by one engine.

    Every method is blocking and meant to run in a worker thread; a lock makes
    calls from different threads take turns on the one connection.
    """

    def __init__(self, path: Path, experiment: str) -> None:
        self.path = path
        self.experiment = experiment
        self._key = (str(path.resolve()), experiment)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._eid = 0  # the experiment's row id

    # -- opening -----------------------------------------------------------------

    def open(self) -> Restored:
        """Validate, upgrade or create the file, claim the experiment, read it back."""
        path = self.path
        if not path.parent.is_dir():
            raise _fail(path, f"its directory {str(path.parent)!r} does not exist")
        with _open_lock:
            if self._key in _open_for_writing:
                raise _fail(
                    path,
                    f"experiment {self.experiment!r} is already open for writing by another "
                    "engine in this process; use another experiment name or close that engine",
                )
            conn = _connect(path, readonly=False)
            try:
                self._prepare(conn)
                self._eid = self._claim(conn)
                restored = _load(conn, path, self._eid)
            except BaseException:
                conn.close()
                raise
            _open_for_writing.add(self._key)
        self._conn = conn
        return restored

    def _prepare(self, conn: sqlite3.Connection) -> None:
        version = _check_version(conn, self.path)
        with _writing(conn, self.path):
            if version == 0:
                conn.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
                version = SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                with _transaction(conn):
                    MIGRATIONS[version](conn)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
                version += 1
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")

    def _claim(self, conn: sqlite3.Connection) -> int:
        """Take the experiment for this process (creating it), refusing a live writer."""
        path, name = self.path, self.experiment
        host, pid = socket.gethostname(), os.getpid()
        with _writing(conn, path), _transaction(conn):
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
            if owner_pid not in (None, pid) and owner_host == host and _pid_alive(owner_pid):
                raise _fail(
                    path,
                    f"experiment {name!r} is open for writing by process {owner_pid}; "
                    "stop that engine first, or use another experiment name",
                )
            conn.execute(
                "UPDATE experiments SET owner_pid = ?, owner_host = ? WHERE id = ?",
                (pid, host, eid),
            )
            return int(eid)

    # -- writing -----------------------------------------------------------------

    def record_submissions(
        self, rows: list[tuple[int, str, str, float]], retried: list[int], model_count: int
    ) -> None:
        """New models ``(id, params JSON, class, time)``, resubmitted ids, and the count."""
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
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
                conn.execute(
                    "UPDATE experiments SET model_count = ? WHERE id = ?",
                    (model_count, self._eid),
                )

    def record_events(
        self,
        events: Iterable[ModelEvent],
        model_ids: Mapping[int, int],
        total_duration: float,
    ) -> int:
        """Commit a batch of events; ``model_ids`` maps ``id(model)`` to the engine's id."""
        return self._record_events(events, model_ids, total_duration)

    def _record_events(
        self,
        events: Iterable[ModelEvent],
        model_ids: Mapping[int, int],
        total_duration: float,
    ) -> int:
        """Commit a batch of events, in chunks; returns the rows written.

        Rows of each kind go through their own statement binding only what varies
        (binding a parameter costs about as much as the rest of an insert).
        """
        names = _TYPE_NAMES
        known = _END_DATA
        intermediate, final = ModelEventType.IntermediateMetric, ModelEventType.FinalMetric
        start, end = ModelEventType.TrainingStart, ModelEventType.TrainingEnd
        batch: list[Any] = events if isinstance(events, list) else list(events)
        chunks: list[tuple[list[tuple[Any, ...]], ...]] = []
        for offset in range(0, len(batch), _CHUNK):
            metrics: list[tuple[Any, ...]] = []
            starts: list[tuple[Any, ...]] = []
            ends: list[tuple[Any, ...]] = []
            for event in batch[offset : offset + _CHUNK]:
                mid = model_ids[id(event.model)]
                kind = event.event_type
                if kind is start:
                    starts.append((event.seq, mid, event.timestamp))
                elif kind is end:
                    data = None
                    if event.error is None:
                        data = known.get((event.status, event.reason))
                    ends.append((event.seq, mid, event.timestamp, data or _end_data(event)))
                elif kind is intermediate or kind is final:
                    raw = event.metric
                    value = raw if type(raw) is float and raw == raw else _canonical(raw)
                    metrics.append(
                        (event.seq, mid, names[kind], event.timestamp, value, encode_json(raw))
                    )
            chunks.append((metrics, starts, ends))
        count = len(batch)
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
                with _transaction(conn):
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
        return count

    def close(self) -> None:
        """Release the experiment and close the file."""
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
                with _open_lock:
                    _open_for_writing.discard(self._key)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {str(self.path)!r} is not open for writing")
        return self._conn


# -- reading -----------------------------------------------------------------------


def _load(conn: sqlite3.Connection, path: Path, experiment: int) -> Restored:
    """Rebuild one experiment (by row id) from its rows."""
    try:
        row = conn.execute(
            "SELECT model_count, total_duration FROM experiments WHERE id = ?", (experiment,)
        ).fetchone()
        model_rows = conn.execute(
            "SELECT id, params, class, submissions FROM models WHERE experiment = ? ORDER BY id",
            (experiment,),
        ).fetchall()
        event_rows = conn.execute(
            "SELECT seq, model_id, type, data FROM events WHERE experiment = ? ORDER BY seq",
            (experiment,),
        ).fetchall()
    except sqlite3.DatabaseError as error:
        raise _fail(path, "cannot be read; it may be corrupt", error) from None
    models: dict[int, RestoredModel] = {}
    for model_id, params, class_name, submissions in model_rows:
        models[model_id] = RestoredModel(model_id, json.loads(params), class_name, submissions)
    next_seq = 0
    for seq, model_id, kind, data in event_rows:
        next_seq = seq + 1
        model = models.get(model_id)
        if model is None:
            continue
        if kind == "training_start":
            model.metrics.clear()
            model.status, model.error, model.running = ModelStatus.Training, None, True
        elif kind == "intermediate_metric":
            model.metrics.add_intermediate(_restore_metric(data))
        elif kind == "final_metric":
            model.metrics.final = _restore_metric(data)
        elif kind == "training_end":
            end = json.loads(data)
            model.ends += 1
            model.status, model.reason = ModelStatus(end["status"]), end["reason"]
            model.running, model.error = False, None
            details = end.get("error")
            if details is not None and model.status is ModelStatus.Failed:
                model.error = RestoredError(
                    details["type"], details.get("message", ""), details.get("traceback", "")
                )
    for model in models.values():
        if model.unfinished and not model.running and model.status.completed():
            model.status = ModelStatus.Retrying  # queued again after an end
    model_count, total_duration = row if row is not None else (0, 0.0)
    return Restored(
        models=list(models.values()),
        model_count=model_count,
        total_duration=total_duration,
        next_seq=next_seq,
        next_id=max(models, default=0) + 1,
    )


def _restore_metric(raw: str | None) -> Any:
    value = None if raw is None else json.loads(raw)
    try:
        return canonical_metric(value)
    except ValueError:
        return value


def to_record(model: RestoredModel, experiment: str) -> ModelRecord:
    record = ModelRecord(model.params)
    record.model_id = model.model_id
    record.status = model.status
    record.metrics = Metrics(model.metrics.intermediates, model.metrics.final, strict=False)
    record.error = model.error
    record.experiment = experiment
    return record


def read_history(path: Path, experiment: str | None) -> History:
    if not path.is_file():
        raise _fail(path, "does not exist")
    conn = _connect(path, readonly=True)
    try:
        _check_version(conn, path)
        try:
            found = conn.execute("SELECT name, id FROM experiments ORDER BY name").fetchall()
        except sqlite3.DatabaseError as error:
            raise _fail(path, "cannot be read; it may be corrupt", error) from None
        ids = dict(found)
        names = list(ids)
        if experiment is not None:
            if experiment not in ids:
                raise _fail(path, f"holds no experiment {experiment!r} (it holds {names})")
            names = [experiment]
        models: list[Model] = []
        model_count, total_duration = 0, 0.0
        for name in names:
            restored = _load(conn, path, ids[name])
            models.extend(to_record(model, name) for model in restored.models)
            model_count += restored.model_count
            total_duration += restored.total_duration
    finally:
        conn.close()
    return History(models, summarize(models, tuple(names), model_count, total_duration))
