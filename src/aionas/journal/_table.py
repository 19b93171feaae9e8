"""Models as flat rows: for ``aionas history --csv`` and :meth:`History.to_dataframe`.

One row per model, one column per fact, parameters as ``params_<name>`` columns
(the names Optuna's ``trials_dataframe`` uses), so a journal opens in a
spreadsheet or in pandas without further unpacking.
"""

from __future__ import annotations

import csv
import importlib
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..events import error_dict
from ..metrics import metric_json

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from ..model import Model

__all__ = ["BASE_COLUMNS", "columns", "model_rows", "to_dataframe", "write_csv"]

#: The columns every row has, in this order, before its ``params_<name>`` columns.
BASE_COLUMNS = ("id", "experiment", "status", "reason", "metric", "epochs", "error")


def cell(value: Any) -> Any:
    """A metric or parameter as a table holds it.

    None, ``str`` and ``bool`` stay as they are; every other number becomes a plain
    Python ``int`` (integral numbers, such as ``numpy.int64``) or ``float`` (NaN and
    infinities stay floats); anything else (a dict metric, a list) becomes its JSON
    text as a journal stores it (NaN as ``NaN``), or its ``repr()`` if JSON cannot
    hold it.
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        return metric_json(value)
    except (TypeError, ValueError, ArithmeticError, RecursionError):
        return repr(value)


def _error_text(model: Model) -> str | None:
    """``"Type: message"`` (just ``"Type"`` without a message) for a failed model."""
    if model.error is None:
        return None
    error = error_dict(model.error)
    return f"{error['type']}: {error['message']}" if error["message"] else error["type"]


def columns(models: Sequence[Model]) -> list[str]:
    """The column names of :func:`model_rows`: :data:`BASE_COLUMNS`, then
    ``params_<name>`` for every parameter name of any model, in first-seen order."""
    names: dict[str, None] = {}
    for model in models:
        names.update(dict.fromkeys(model.params))
    return [*BASE_COLUMNS, *(f"params_{name}" for name in names)]


def model_rows(models: Sequence[Model]) -> list[dict[str, Any]]:
    """One flat dict per model, in the order given, every dict with the same keys.

    The keys are those of :func:`columns`, in that order: ``id`` (``model_id``),
    ``experiment`` (None for a model not read from a journal), ``status`` (its
    string value), ``reason`` (why its last run ended, if known), ``metric`` (the
    final metric), ``epochs`` (how many intermediate metrics it reported),
    ``error`` (``"Type: message"`` for a failed model, else None), then
    ``params_<name>`` for the union of parameter names (None where a model lacks
    one). Metrics and parameters are converted by :func:`cell`: numbers stay
    numbers (NaN stays ``float("nan")``), dicts become JSON text.
    """
    keys = columns(models)
    rows = []
    for model in models:
        row: dict[str, Any] = dict.fromkeys(keys)
        row.update(
            id=model.model_id,
            experiment=getattr(model, "experiment", None),
            status=model.status.value,
            reason=getattr(model, "reason", None),
            metric=cell(model.metric),
            epochs=len(model.metrics.intermediates),
            error=_error_text(model),
        )
        for name, value in model.params.items():
            row[f"params_{name}"] = cell(value)
        rows.append(row)
    return rows


def to_dataframe(models: Sequence[Model]) -> Any:
    """A ``pandas.DataFrame`` of :func:`model_rows`: one row per model, in order.

    Its columns are :func:`columns` (also when there are no models), its index
    the default ``0..n-1``; pandas infers each column's dtype (a numeric column
    with a missing value becomes ``float64`` with NaN).

    :raises ImportError: if pandas is not installed, saying how to install it.
    """
    try:
        pandas = importlib.import_module("pandas")
    except ImportError:
        raise ImportError("History.to_dataframe() needs pandas: pip install pandas") from None
    return pandas.DataFrame(model_rows(models), columns=columns(models))


def write_csv(models: Sequence[Model], stream: SupportsWrite[str]) -> None:
    """Write :func:`model_rows` to ``stream`` as CSV: a header, then one line per model.

    Written by the :mod:`csv` module (``excel`` dialect): None is an empty field,
    NaN and infinities are ``nan``, ``inf`` and ``-inf``, floats are written in
    full (``repr``). Open a file for it with ``newline=""``.
    """
    keys = columns(models)
    writer = csv.writer(stream)
    writer.writerow(keys)
    for row in model_rows(models):
        writer.writerow(row[key] for key in keys)
