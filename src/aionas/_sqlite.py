"""The SQLite side of the journal: schema, migrations, opening safely, rows in and out.

Schema (``PRAGMA user_version`` = ``SCHEMA_VERSION``):

- ``experiments``: one row per experiment: the budget counters (``model_count``,
  ``total_duration``) and the writing engine's process (``owner_pid``,
  ``owner_host``), cleared when it closes.
- ``models``: one row per model: ``id``, ``params`` (JSON), its class name, when
  it was first submitted, and how many times it was submitted.
- ``events``: one row per event, in ``seq`` order: ``type``, ``time``, the raw
  metric as JSON and its canonical value, and for an end event the status,
  reason, duration and error (type, message, traceback).

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .events import ModelEvent, ModelEventType, TrainingEndEvent, TrainingStartEvent
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
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model_count INTEGER NOT NULL DEFAULT 0,
    total_duration REAL NOT NULL DEFAULT 0,
    owner_pid INTEGER,
    owner_host TEXT
);
CREATE TABLE models (
    experiment TEXT NOT NULL,
    id INTEGER NOT NULL,
    params TEXT NOT NULL,
    class TEXT NOT NULL,
    submitted REAL NOT NULL,
    submissions INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (experiment, id)
);
CREATE TABLE events (
    experiment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    model_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    time REAL NOT NULL,
    raw TEXT,
    value REAL,
    status TEXT,
    reason TEXT,
    duration REAL,
    error_type TEXT,
    error_message TEXT,
    error_traceback TEXT,
    PRIMARY KEY (experiment, seq)
);
CREATE VIEW model_status AS
    SELECT m.experiment, m.id, m.params, e.status, e.reason, e.duration, e.error_type,
           e.error_message, e.time AS ended
    FROM models AS m LEFT JOIN events AS e
      ON e.experiment = m.experiment AND e.model_id = m.id AND e.type = 'training_end'
     AND e.seq = (SELECT MAX(seq) FROM events
                  WHERE experiment = m.experiment AND model_id = m.id
                    AND type = 'training_end');
"""

#: ``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1`` (none yet).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}

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
    return json.dumps(value, allow_nan=True)


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
        self._started: dict[int, float] = {}  # model id -> start time of its current run

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
                self._claim(conn)
                restored = _load(conn, path, self.experiment)
            except BaseException:
                conn.close()
                raise
            _open_for_writing.add(self._key)
        self._conn = conn
        for model in restored.models:
            if model.running:
                self._started[model.model_id] = 0.0
        return restored

    def _prepare(self, conn: sqlite3.Connection) -> None:
        path = self.path
        version = _check_version(conn, path)
        try:
            if version == 0:
                conn.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
                version = SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
                conn.execute("COMMIT")
                version += 1
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _fail(
                path, "cannot be written; check its permissions and free space", error
            ) from None

    def _claim(self, conn: sqlite3.Connection) -> None:
        path, name = self.path, self.experiment
        host, pid = socket.gethostname(), os.getpid()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT owner_pid, owner_host FROM experiments WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO experiments (name, created, owner_pid, owner_host) "
                    "VALUES (?, ?, ?, ?)",
                    (name, time.time(), pid, host),
                )
            else:
                owner_pid, owner_host = row
                if (
                    owner_pid is not None
                    and owner_pid != pid
                    and owner_host == host
                    and _pid_alive(owner_pid)
                ):
                    conn.execute("ROLLBACK")
                    raise _fail(
                        path,
                        f"experiment {name!r} is open for writing by process {owner_pid}; "
                        "stop that engine first, or use another experiment name",
                    )
                conn.execute(
                    "UPDATE experiments SET owner_pid = ?, owner_host = ? WHERE name = ?",
                    (pid, host, name),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _fail(
                path, "cannot be written; check its permissions and free space", error
            ) from None

    # -- writing -----------------------------------------------------------------

    def record_submissions(
        self, rows: list[tuple[int, str, str, float]], retried: list[int], model_count: int
    ) -> None:
        """New models ``(id, params JSON, class, time)``, resubmitted ids, and the count."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO models (experiment, id, params, class, submitted) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(self.experiment, *row) for row in rows],
                )
                conn.executemany(
                    "UPDATE models SET submissions = submissions + 1 "
                    "WHERE experiment = ? AND id = ?",
                    [(self.experiment, model_id) for model_id in retried],
                )
                conn.execute(
                    "UPDATE experiments SET model_count = ? WHERE name = ?",
                    (model_count, self.experiment),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def record_events(
        self,
        events: Iterable[ModelEvent],
        model_id: Callable[[Model], int],
        total_duration: float,
    ) -> int:
        """Commit a batch of events in one transaction; returns the rows written."""
        experiment, started = self.experiment, self._started
        rows: list[tuple[Any, ...]] = []
        for event in events:
            mid = model_id(event.model)
            kind = event.event_type
            if kind is ModelEventType.IntermediateMetric or kind is ModelEventType.FinalMetric:
                raw = event.metric  # type: ignore[attr-defined]
                rows.append(
                    (experiment, event.seq, mid, kind.value, event.timestamp, encode_json(raw),
                     _canonical(raw), None, None, None, None, None, None)
                )  # fmt: skip
            elif isinstance(event, TrainingStartEvent):
                started[mid] = event.timestamp
                rows.append(
                    (experiment, event.seq, mid, kind.value, event.timestamp,
                     None, None, None, None, None, None, None, None)
                )  # fmt: skip
            elif isinstance(event, TrainingEndEvent):
                begin = started.pop(mid, None)
                duration = None if not begin else event.timestamp - begin
                error = event.error
                error_type = error_message = error_trace = None
                if error is not None:
                    error_type = type(error).__qualname__
                    error_message = str(error)
                    error_trace = "".join(traceback.format_exception(error))
                rows.append(
                    (experiment, event.seq, mid, kind.value, event.timestamp, None, None,
                     event.status.value, event.reason, duration, error_type, error_message,
                     error_trace)
                )  # fmt: skip
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                conn.execute(
                    "UPDATE experiments SET total_duration = ? WHERE name = ?",
                    (total_duration, experiment),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return len(rows)

    def close(self) -> None:
        """Release the experiment and close the file."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute(
                    "UPDATE experiments SET owner_pid = NULL, owner_host = NULL WHERE name = ?",
                    (self.experiment,),
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


def _load(conn: sqlite3.Connection, path: Path, experiment: str) -> Restored:
    """Rebuild one experiment from its rows."""
    try:
        row = conn.execute(
            "SELECT model_count, total_duration FROM experiments WHERE name = ?", (experiment,)
        ).fetchone()
        model_rows = conn.execute(
            "SELECT id, params, class, submissions FROM models WHERE experiment = ? ORDER BY id",
            (experiment,),
        ).fetchall()
        event_rows = conn.execute(
            "SELECT seq, model_id, type, raw, status, reason, error_type, error_message, "
            "error_traceback FROM events WHERE experiment = ? ORDER BY seq",
            (experiment,),
        ).fetchall()
    except sqlite3.DatabaseError as error:
        raise _fail(path, "cannot be read; it may be corrupt", error) from None
    models: dict[int, RestoredModel] = {}
    for model_id, params, class_name, submissions in model_rows:
        models[model_id] = RestoredModel(model_id, json.loads(params), class_name, submissions)
    next_seq = 0
    for seq, model_id, kind, raw, status, reason, error_type, message, trace in event_rows:
        next_seq = seq + 1
        model = models.get(model_id)
        if model is None:
            continue
        if kind == "training_start":
            model.metrics.clear()
            model.status, model.error, model.running = ModelStatus.Training, None, True
        elif kind == "intermediate_metric":
            model.metrics.add_intermediate(_restore_metric(raw))
        elif kind == "final_metric":
            model.metrics.final = _restore_metric(raw)
        elif kind == "training_end":
            model.ends += 1
            model.status, model.reason, model.running = ModelStatus(status), reason, False
            model.error = None
            if error_type is not None and model.status is ModelStatus.Failed:
                model.error = RestoredError(error_type, message or "", trace or "")
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
            names = [row[0] for row in conn.execute("SELECT name FROM experiments ORDER BY name")]
        except sqlite3.DatabaseError as error:
            raise _fail(path, "cannot be read; it may be corrupt", error) from None
        if experiment is not None:
            if experiment not in names:
                raise _fail(path, f"holds no experiment {experiment!r} (it holds {names})")
            names = [experiment]
        models: list[Model] = []
        model_count, total_duration = 0, 0.0
        for name in names:
            restored = _load(conn, path, name)
            models.extend(to_record(model, name) for model in restored.models)
            model_count += restored.model_count
            total_duration += restored.total_duration
    finally:
        conn.close()
    return History(models, summarize(models, tuple(names), model_count, total_duration))
