"""Models as flat rows, a pandas DataFrame and CSV (``aionas.journal._table``)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal
from aionas.journal._base import RestoredError
from aionas.journal._table import BASE_COLUMNS, cell, columns, model_rows, to_dataframe, write_csv
from aionas.journal.history import History, summarize

from .helpers import Boom, Reporter, record

BASE = list(BASE_COLUMNS)


def test_columns_are_fixed_then_the_union_of_params_in_first_seen_order() -> None:
    models = [
        record(1, {"lr": 0.1, "act": "relu"}, [0.5, 0.6], 0.7, experiment="e", reason="completed"),
        record(2, {"depth": 3, "lr": 0.01}),
    ]
    rows = model_rows(models)
    expected = [*BASE, "params_lr", "params_act", "params_depth"]
    assert BASE == ["id", "experiment", "status", "reason", "metric", "epochs", "error"]
    assert columns(models) == expected
    assert [list(row) for row in rows] == [expected, expected]
    assert rows[0] == {
        "id": 1,
        "experiment": "e",
        "status": "trained",
        "reason": "completed",
        "metric": 0.7,
        "epochs": 2,
        "error": None,
        "params_lr": 0.1,
        "params_act": "relu",
        "params_depth": None,
    }
    assert rows[1]["params_act"] is None
    assert rows[1]["params_depth"] == 3
    assert rows[1]["metric"] is None
    assert rows[1]["epochs"] == 0
    assert rows[1]["reason"] is None  # a record that never ended


def test_a_param_named_like_a_fixed_column_does_not_clash() -> None:
    (row,) = model_rows([record(7, {"id": "mine", "metric": 2})])
    assert row["id"] == 7
    assert row["params_id"] == "mine"
    assert row["params_metric"] == 2


def test_nan_and_infinities_stay_floats() -> None:
    (row,) = model_rows([record(1, {"x": math.nan, "y": -math.inf}, [math.inf], math.nan)])
    assert isinstance(row["metric"], float)
    assert math.isnan(row["metric"])
    assert isinstance(row["params_x"], float)
    assert math.isnan(row["params_x"])
    assert row["params_y"] == -math.inf
    assert row["epochs"] == 1


def test_numpy_scalars_become_python_numbers() -> None:
    model = record(
        1, {"n": np.int64(4), "lr": np.float32(0.5)}, [np.float64(0.25)], np.float32(1.5)
    )
    (row,) = model_rows([model])
    assert type(row["metric"]) is float
    assert row["metric"] == 1.5
    assert type(row["params_n"]) is int
    assert row["params_n"] == 4
    assert type(row["params_lr"]) is float


def test_a_dict_metric_and_a_list_param_become_json_text() -> None:
    metric = {"default": 0.9, "loss": math.nan}
    (row,) = model_rows([record(1, {"sizes": [1, 2]}, [], metric)])
    assert isinstance(row["metric"], str)
    decoded = json.loads(row["metric"])
    assert decoded["default"] == 0.9
    assert math.isnan(decoded["loss"])
    assert row["params_sizes"] == "[1, 2]"


def test_cell_keeps_none_str_and_bool_and_falls_back_to_repr() -> None:
    assert cell(None) is None
    assert cell("relu") == "relu"
    assert cell(True) is True
    assert cell(np.bool_(True)) == repr(np.bool_(True))  # not a number, not JSON: its repr
    unstorable = object()
    assert cell(unstorable) == repr(unstorable)


def test_error_text_is_type_and_message() -> None:
    failed = record(1, {}, status=ModelStatus.Failed)
    failed.error = ValueError("boom")
    restored = record(2, {}, status=ModelStatus.Failed)
    restored.error = RestoredError("KeyError", "'x'", "Traceback ...")
    bare = record(3, {}, status=ModelStatus.Failed)
    bare.error = RestoredError("MemoryError", "")
    rows = model_rows([failed, restored, bare])
    assert [row["error"] for row in rows] == ["ValueError: boom", "KeyError: 'x'", "MemoryError"]


def test_a_model_that_is_not_a_record_has_no_experiment_or_reason() -> None:
    model = aionas.Model({"x": 1})
    (row,) = model_rows([model])
    assert row["id"] is None
    assert row["experiment"] is None
    assert row["reason"] is None
    assert row["status"] == "frozen"


def test_no_models_no_rows() -> None:
    assert model_rows([]) == []
    assert columns([]) == BASE


@pytest.mark.anyio
async def test_rows_of_a_real_journal_carry_reason_experiment_and_error(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db, experiment="exp"), continue_on_failure=True
    ) as engine:
        await engine.submit_models(Reporter({"n": 2}), Boom({"n": 1}))
        await engine.wait_models()
    history = aionas.load_history(db)
    rows = model_rows(history.models)
    assert [(r["id"], r["status"], r["reason"]) for r in rows] == [
        (1, "trained", "completed"),
        (2, "failed", "failed"),
    ]
    assert [r["experiment"] for r in rows] == ["exp", "exp"]
    assert rows[0]["metric"] == 2.0
    assert rows[0]["epochs"] == 2
    assert rows[1]["error"] == "ValueError: boom"
    assert rows[1]["epochs"] == 1
    assert [r["params_n"] for r in rows] == [2, 1]

    pandas = pytest.importorskip("pandas")
    frame = history.to_dataframe()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["reason"]) == ["completed", "failed"]


def test_to_dataframe_has_one_row_per_model_and_numeric_dtypes() -> None:
    pytest.importorskip("pandas")
    models = [
        record(1, {"lr": 0.1, "act": "relu"}, [0.5], 0.7),
        record(2, {"lr": 0.01, "depth": 2}, [0.4, math.nan], math.nan),
        record(3, {"lr": 0.001, "depth": 3}, [], None, ModelStatus.Frozen),
    ]
    frame = to_dataframe(models)
    assert frame.shape == (3, len(BASE) + 3)
    assert list(frame.columns) == [*BASE, "params_lr", "params_act", "params_depth"]
    assert list(frame.index) == [0, 1, 2]
    assert frame["id"].dtype.kind == "i"
    assert frame["epochs"].dtype.kind == "i"
    assert frame["metric"].dtype.kind == "f"
    assert frame["params_lr"].dtype.kind == "f"
    assert frame["params_depth"].dtype.kind == "f"  # missing for model 1: NaN
    assert frame["metric"].isna().tolist() == [False, True, True]
    assert frame["params_depth"].tolist()[1:] == [2.0, 3.0]
    assert frame.loc[0, "params_act"] == "relu"


def test_to_dataframe_of_no_models_keeps_the_columns() -> None:
    pytest.importorskip("pandas")
    frame = to_dataframe([])
    assert frame.shape == (0, len(BASE))
    assert list(frame.columns) == BASE


def test_to_dataframe_without_pandas_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match="pip install pandas"):
        to_dataframe([record(1, {})])
    history = History([record(1, {})], summarize([], (), 0, 0.0))
    with pytest.raises(ImportError, match="pip install pandas"):
        history.to_dataframe()


def test_csv_round_trips_through_the_csv_module() -> None:
    models = [
        record(1, {"lr": 0.1, "act": "relu"}, [0.5, 0.6], 1 / 3, reason="completed"),
        record(2, {"lr": math.nan}, [], math.inf, ModelStatus.Failed, reason="failed"),
        record(3, {"depth": 2}, [], {"default": 0.5}, ModelStatus.Trained),
    ]
    models[1].error = ValueError('bad, "quoted"\nand multiline')
    stream = io.StringIO(newline="")
    write_csv(models, stream)
    header, *lines = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert header == columns(models)
    assert len(lines) == 3
    rows = [dict(zip(header, line, strict=True)) for line in lines]
    assert float(rows[0]["metric"]) == 1 / 3  # written in full
    assert rows[0]["params_depth"] == ""  # None
    assert rows[0]["error"] == ""
    assert rows[0]["epochs"] == "2"
    assert rows[1]["metric"] == "inf"
    assert rows[1]["params_lr"] == "nan"
    assert rows[1]["error"] == 'ValueError: bad, "quoted"\nand multiline'
    assert rows[1]["reason"] == "failed"
    assert json.loads(rows[2]["metric"]) == {"default": 0.5}
    assert rows[2]["params_depth"] == "2"


def test_csv_of_no_models_is_just_the_header() -> None:
    stream = io.StringIO()
    write_csv([], stream)
    assert stream.getvalue() == ",".join(BASE) + "\r\n"
