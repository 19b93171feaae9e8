"""Events and models to rows and back: what each column holds, and rebuilding from it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import ModelEvent, TrainingEndEvent, new_end, new_final, new_intermediate, new_start
from ..metrics import canonical_metric, metric_json
from ..status import ModelStatus
from ._base import Restored, RestoredError, RestoredModel
from ._schema import explain, fail

if TYPE_CHECKING:
    from ..model import Model

from ..events import error_dict, error_traceback

__all__ = [
    "encode_json",
    "end_data",
    "load",
    "metric_value",
    "params_json",
    "read_metadata",
    "rebuild_events",
]

#: JSON text for a raw metric or params: numpy scalars become numbers, NaN and
#: infinities round-trip (see :func:`aionas.metrics.metric_json`).
encode_json = metric_json


def end_data(event: TrainingEndEvent) -> str:
    """The JSON ``data`` of an end event (remembered for the common, error-free case)."""
    data: dict[str, Any] = {"status": event.status.value, "reason": event.reason}
    error = event.error
    if error is None:
        text = END_DATA[event.status, event.reason] = json.dumps(data)
        return text
    data["error"] = error_dict(error)  # survives a __str__ that raises or lies
    data["error"]["traceback"] = error_traceback(error)  # from the user's frame on; never raises
    return json.dumps(data)


#: ``(status, reason)`` -> the ``data`` of an end event without an error.
END_DATA: dict[tuple[ModelStatus, str], str] = {}


def metric_value(raw: Any) -> float | None:
    """The ``value`` column of a metric: its canonical number (NULL for none, or NaN)."""
    try:
        value = canonical_metric(raw)
    except ValueError:
        return None
    return None if value != value else value  # SQLite stores NaN as NULL anyway


def _restore_metric(data: str | None) -> Any:
    value = None if data is None else json.loads(data)
    try:
        return canonical_metric(value)
    except ValueError:
        return value


def _restore_error(details: Mapping[str, Any] | None) -> RestoredError | None:
    if details is None:
        return None
    return RestoredError(details["type"], details.get("message", ""), details.get("traceback", ""))


def load(conn: sqlite3.Connection, path: Path, experiment: int) -> Restored:
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
    except sqlite3.Error as error:
        raise fail(path, explain(path, error, writing=False), error) from None
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
            if model.status is ModelStatus.Failed:
                model.error = _restore_error(end.get("error"))
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
        metadata=read_metadata(conn, path, experiment),
    )


def read_metadata(conn: sqlite3.Connection, path: Path, experiment: int) -> dict[str, Any]:
    """The metadata recorded with an experiment (``{}`` if none, or a version-1 file)."""
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(experiments)")}
        if "metadata" not in columns:  # a version-1 file read without upgrading it
            return {}
        row = conn.execute(
            "SELECT metadata FROM experiments WHERE id = ?", (experiment,)
        ).fetchone()
    except sqlite3.Error as error:
        raise fail(path, explain(path, error, writing=False), error) from None
    if row is None or row[0] is None:
        return {}
    try:
        value = json.loads(row[0])
    except ValueError:
        raise fail(path, f"holds experiment metadata that is not JSON: {row[0][:80]!r}") from None
    return value if isinstance(value, dict) else {}


def rebuild_events(
    rows: Sequence[tuple[int, int, str, float, str | None]], models: Mapping[int, Model]
) -> list[ModelEvent]:
    """Events from ``(seq, model_id, type, time, data)`` rows, about ``models[model_id]``.

    :raises KeyError: naming a ``model_id`` that ``models`` lacks.
    """
    events: list[ModelEvent] = []
    ends: dict[str, tuple[ModelStatus, Any, RestoredError | None]] = {}
    for seq, model_id, kind, timestamp, data in rows:
        try:
            model = models[model_id]
        except KeyError:
            raise KeyError(
                f"event {seq} is about model {model_id}, which is not in the models given"
            ) from None
        if kind == "intermediate_metric":
            raw = None if data is None else json.loads(data)
            events.append(new_intermediate(model, model_id, raw, seq, timestamp))
        elif kind == "final_metric":
            raw = None if data is None else json.loads(data)
            events.append(new_final(model, model_id, raw, seq, timestamp))
        elif kind == "training_start":
            events.append(new_start(model, model_id, seq, timestamp))
        elif kind == "training_end":
            assert data is not None, f"end event {seq} has no data"
            known = ends.get(data)
            if known is None:
                end = json.loads(data)
                known = (ModelStatus(end["status"]), end["reason"], None)
                if "error" in end:
                    known = (known[0], known[1], _restore_error(end["error"]))
                else:
                    ends[data] = known  # errors differ; the rest repeats
            status, reason, error = known
            events.append(new_end(model, model_id, status, reason, error, seq, timestamp))
    return events


_HINT = "a journal stores them as JSON: use numbers, strings, booleans, None, lists and dicts"


def params_json(model: Model) -> str:
    """``model.params`` as the JSON text a journal stores (numpy scalars as numbers).

    :raises TypeError: naming the first key whose value JSON cannot hold.
    """
    params = model.params
    if not params:
        return "{}"
    for key in params:
        if not isinstance(key, str):
            raise TypeError(f"param name {key!r} of {model!r} is not a string; {_HINT}")
    try:
        return metric_json(params)  # NaN and infinities are allowed
    except (TypeError, ValueError, RecursionError):
        for key, value in params.items():
            try:
                metric_json(value)
            except (TypeError, ValueError, RecursionError) as error:
                raise TypeError(
                    f"param {key!r} of {model!r} is not JSON-serialisable ({error}); {_HINT}"
                ) from None
        raise
