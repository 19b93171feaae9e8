"""``ModelEvent.to_dict()`` and ``Model.to_dict()``: JSON-safe plain dicts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import numpy as np
import pytest

import aionas
from aionas import events
from aionas.events import json_safe

NAN, INF = float("nan"), float("inf")


def dumps(data: Any) -> str:
    """What a web service does with the dict: it must never raise."""
    return json.dumps(data, allow_nan=False)


def round_trip(data: Any) -> Any:
    """The dict after ``json.dumps(..., allow_nan=False)`` and back: it must be unchanged."""
    back = json.loads(dumps(data))
    assert back == data
    return back


# -- every event kind ---------------------------------------------------------------


def test_start_event() -> None:
    event = aionas.TrainingStartEvent(aionas.Model(), seq=1, timestamp=10.5, model_id=7)
    assert round_trip(event.to_dict()) == {
        "type": "training_start",
        "seq": 1,
        "timestamp": 10.5,
        "model_id": 7,
    }


def test_intermediate_event() -> None:
    event = aionas.IntermediateMetricEvent(
        aionas.Model(), metric=0.5, seq=3, timestamp=1.0, model_id=7
    )
    assert round_trip(event.to_dict()) == {
        "type": "intermediate_metric",
        "seq": 3,
        "timestamp": 1.0,
        "model_id": 7,
        "metric": 0.5,
    }


def test_final_event() -> None:
    event = aionas.FinalMetricEvent(aionas.Model(), metric=2, seq=4, timestamp=2.0, model_id=0)
    assert round_trip(event.to_dict()) == {
        "type": "final_metric",
        "seq": 4,
        "timestamp": 2.0,
        "model_id": 0,
        "metric": 2,
    }


def test_end_event_without_error() -> None:
    event = aionas.TrainingEndEvent(
        aionas.Model(), status=aionas.ModelStatus.Trained, seq=5, timestamp=3.0, model_id=7
    )
    assert round_trip(event.to_dict()) == {
        "type": "training_end",
        "seq": 5,
        "timestamp": 3.0,
        "model_id": 7,
        "status": "trained",
        "reason": "completed",
        "error": None,
    }


def test_end_event_with_error() -> None:
    event = aionas.TrainingEndEvent(
        aionas.Model(),
        status=aionas.ModelStatus.Failed,
        reason="failed",
        error=ValueError("lr must be positive"),
        seq=6,
        timestamp=4.0,
        model_id=2,
    )
    data = round_trip(event.to_dict())
    assert data["status"] == "failed"
    assert data["reason"] == "failed"
    assert data["error"] == {"type": "ValueError", "message": "lr must be positive"}


def test_end_event_interrupted() -> None:
    event = aionas.TrainingEndEvent(
        aionas.Model(),
        status=aionas.ModelStatus.Interrupted,
        reason="cancelled",
        error=aionas.ModelInterrupted("cancelled by cancel_model"),
        model_id=1,
    )
    data = round_trip(event.to_dict())
    assert data["status"] == "interrupted"
    assert data["reason"] == "cancelled"
    assert data["error"]["type"] == "ModelInterrupted"
    assert "cancel_model" in data["error"]["message"]


def test_defaults_of_a_bare_event() -> None:
    data = round_trip(aionas.TrainingStartEvent(aionas.Model()).to_dict())
    assert data == {"type": "training_start", "seq": -1, "timestamp": 0.0, "model_id": None}


def test_events_from_the_fast_constructors() -> None:
    model = aionas.Model()
    made = [
        events.new_start(model, 9, 1, 1.0),
        events.new_intermediate(model, 9, NAN, 2, 1.0),
        events.new_final(model, 9, {"default": -INF}, 3, 1.0),
        events.new_end(model, 9, aionas.ModelStatus.Failed, "failed", KeyError("x"), 4, 1.0),
    ]
    dicts = [round_trip(e.to_dict()) for e in made]
    assert [d["type"] for d in dicts] == [kind.value for kind in aionas.ModelEventType]
    assert all(d["model_id"] == 9 for d in dicts)
    assert dicts[1]["metric"] == "NaN"
    assert dicts[2]["metric"] == {"default": "-Infinity"}
    assert dicts[3]["error"] == {"type": "KeyError", "message": "'x'"}


def test_a_subclass_gets_its_own_fields() -> None:
    @dataclass(frozen=True, slots=True)
    class Pruned(aionas.ModelEvent):
        event_type: ClassVar[aionas.ModelEventType] = aionas.ModelEventType.TrainingEnd
        rung: int = 0
        score: float = 0.0

    data = round_trip(Pruned(aionas.Model(), rung=2, score=-INF, seq=1, model_id=3).to_dict())
    assert data == {
        "type": "training_end",
        "seq": 1,
        "timestamp": 0.0,
        "model_id": 3,
        "rung": 2,
        "score": "-Infinity",
    }


def test_the_model_is_not_in_the_event_dict() -> None:
    model = aionas.Model({"secret": object()})
    data = aionas.TrainingStartEvent(model, model_id=1).to_dict()
    assert "model" not in data
    dumps(data)


# -- NaN and infinities ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(NAN, "NaN"), (INF, "Infinity"), (-INF, "-Infinity"), (-0.0, -0.0), (1e308, 1e308)],
)
def test_special_floats_are_strings(value: float, encoded: Any) -> None:
    event = aionas.FinalMetricEvent(aionas.Model(), metric=value, model_id=1)
    data = event.to_dict()
    assert data["metric"] == encoded
    assert json.loads(dumps(data))["metric"] == encoded


def test_the_encoding_reads_back_with_float() -> None:
    for value in (NAN, INF, -INF):
        text = json_safe(value)
        assert isinstance(text, str)
        back = float(text)
        assert back == value or (math.isnan(back) and math.isnan(value))


def test_special_floats_nested_in_dict_metrics() -> None:
    metric: dict[str, Any] = {"default": NAN, "losses": [1.0, INF, {"val": -INF}], "ok": 0.25}
    event = aionas.IntermediateMetricEvent(aionas.Model(), metric=metric, model_id=1)
    assert round_trip(event.to_dict())["metric"] == {
        "default": "NaN",
        "losses": [1.0, "Infinity", {"val": "-Infinity"}],
        "ok": 0.25,
    }
    assert math.isnan(metric["default"]), "the event's own metric is left as it was"


def test_the_timestamp_is_encoded_too() -> None:
    data = aionas.TrainingStartEvent(aionas.Model(), timestamp=NAN).to_dict()
    assert data["timestamp"] == "NaN"
    dumps(data)


# -- numpy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float32(0.5), 0.5),
        (np.float64(0.25), 0.25),
        (np.float16(2.0), 2.0),
        (np.int64(3), 3),
        (np.int8(-4), -4),
        (np.uint64(2**63), 2**63),
        (np.bool_(True), True),
        (np.float64("nan"), "NaN"),
        (np.float32("inf"), "Infinity"),
        (np.float64("-inf"), "-Infinity"),
    ],
)
def test_numpy_scalars_become_python_numbers(value: Any, expected: Any) -> None:
    encoded = json_safe(value)
    assert encoded == expected
    assert type(encoded) is type(expected)
    event = aionas.FinalMetricEvent(aionas.Model(), metric={"default": value}, model_id=1)
    assert round_trip(event.to_dict())["metric"] == {"default": expected}


def test_numpy_arrays_become_lists() -> None:
    array = np.array([[1.0, np.nan], [np.inf, 2.0]])
    assert round_trip(json_safe({"w": array})) == {"w": [[1.0, "NaN"], ["Infinity", 2.0]]}


# -- params, nesting, odd values ----------------------------------------------------------


class Colour(Enum):
    RED = "red"


def test_nested_params() -> None:
    params: dict[Any, Any] = {
        "lr": np.float32(0.5),
        "layers": (64, 32),
        "opt": {"name": "sgd", "momentum": NAN, "betas": [0.9, INF]},
        "colour": Colour.RED,
        "status": aionas.ModelStatus.Trained,
        3: "int key",
        None: "none key",
        "flag": False,
    }
    model = aionas.Model(params)
    assert round_trip(model.to_dict())["params"] == {
        "lr": 0.5,
        "layers": [64, 32],
        "opt": {"name": "sgd", "momentum": "NaN", "betas": [0.9, "Infinity"]},
        "colour": "red",
        "status": "trained",
        "3": "int key",
        "None": "none key",
        "flag": False,
    }


def test_anything_else_becomes_its_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    params: dict[str, Any] = {"thing": Thing(), "set": {1}, "c": 1 + 2j, "broken": Broken()}
    data = round_trip(aionas.Model(params).to_dict())["params"]
    assert data["thing"] == "Thing()"
    assert data["set"] == "{1}"
    assert data["c"] == "(1+2j)"
    assert "Broken" in data["broken"]


def test_a_container_that_contains_itself() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    data = round_trip(json_safe(loop))
    assert data["a"] == 1
    assert isinstance(data["self"], str)
    shared = [1.0]
    assert json_safe({"x": shared, "y": shared}) == {"x": [1.0], "y": [1.0]}, "not a cycle"


def test_the_dict_is_a_copy() -> None:
    model = aionas.Model({"opt": {"lr": 0.1}})
    data = model.to_dict()
    data["params"]["opt"]["lr"] = 99
    assert model.params == {"opt": {"lr": 0.1}}


# -- errors ---------------------------------------------------------------------------------


def test_an_error_is_text_never_the_object() -> None:
    class CustomError(Exception):
        pass

    model = aionas.Model()
    model.status = aionas.ModelStatus.Failed
    model.error = CustomError("diverged at step 3")
    data = round_trip(model.to_dict())
    assert data["error"] == {
        "type": "test_an_error_is_text_never_the_object.<locals>.CustomError",
        "message": "diverged at step 3",
    }
    assert data["status"] == "failed"


def test_an_error_whose_str_fails() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    model = aionas.Model()
    model.error = Unprintable()
    data = round_trip(model.to_dict())
    assert data["error"]["type"].endswith("Unprintable")
    assert isinstance(data["error"]["message"], str)


def test_a_restored_error_keeps_the_original_type_and_message() -> None:
    error = aionas.RestoredError("ValueError", "bad lr", "Traceback ...")
    event = aionas.TrainingEndEvent(
        aionas.Model(), status=aionas.ModelStatus.Failed, reason="failed", error=error
    )
    assert round_trip(event.to_dict())["error"] == {"type": "ValueError", "message": "bad lr"}


def test_an_exception_inside_params_is_text_too() -> None:
    data = round_trip(aionas.Model({"last": OSError(28, "disk full")}).to_dict())
    assert data["params"]["last"] == {"type": "OSError", "message": "[Errno 28] disk full"}


# -- Model.to_dict ------------------------------------------------------------------------


def test_a_fresh_model() -> None:
    assert round_trip(aionas.Model({"x": 1}).to_dict()) == {
        "model_id": None,
        "class_name": "Model",
        "params": {"x": 1},
        "status": "frozen",
        "metrics": {"intermediates": [], "final": None},
        "error": None,
    }


def test_a_trained_model() -> None:
    class Net(aionas.Model):
        pass

    model = Net({"width": 8})
    model.model_id = 12
    model.status = aionas.ModelStatus.Trained
    for value in (0.5, NAN, np.float32(0.75), INF):
        model.metrics.add_intermediate(value)
    model.metrics.final = {"default": -INF, "loss": 0.2}
    data = round_trip(model.to_dict())
    assert data == {
        "model_id": 12,
        "class_name": "test_a_trained_model.<locals>.Net",
        "params": {"width": 8},
        "status": "trained",
        "metrics": {"intermediates": [0.5, "NaN", 0.75, "Infinity"], "final": "-Infinity"},
        "error": None,
    }


def test_non_strict_metrics_keep_their_shape() -> None:
    model = aionas.Model()
    model.metrics = aionas.Metrics(strict=False)
    model.metrics.add_intermediate({"default": np.float64(0.5), "curve": [NAN]})
    model.metrics.final = "text"
    data = round_trip(model.to_dict())
    assert data["metrics"] == {
        "intermediates": [{"default": 0.5, "curve": ["NaN"]}],
        "final": "text",
    }


def test_a_function_model() -> None:
    model = aionas.FunctionModel(lambda p: p["x"], {"x": 2})
    assert model.to_dict()["class_name"] == "FunctionModel"


# -- through a real engine (the public API only) --------------------------------------------


class Diverging(aionas.Model):
    def execute(self) -> None:
        aionas.report_intermediate_result(np.float32(0.5))
        aionas.report_intermediate_result(float("nan"))
        aionas.report_intermediate_result({"default": float("inf"), "step": np.int64(2)})
        aionas.report_final_result(np.float64("-inf"))


class Failing(aionas.Model):
    def execute(self) -> None:
        raise ValueError("lr too high")


@pytest.mark.anyio
async def test_every_event_of_a_real_run_dumps() -> None:
    seen: list[aionas.ModelEvent] = []
    models: list[aionas.Model] = [Diverging({"lr": np.float32(0.1)}), Failing({"lr": INF})]
    async with aionas.SequentialExecutionEngine(continue_on_failure=True) as engine:
        for kind in aionas.ModelEventType:
            engine.register_model_event_callback(kind, seen.append)
        await engine.submit_models(*models)
        await engine.wait_models()
    dicts = [round_trip(event.to_dict()) for event in seen]
    assert all(e.model_id is not None for e in seen)
    assert [d["model_id"] for d in dicts] == [e.model_id for e in seen]
    first = [d for d, e in zip(dicts, seen, strict=True) if e.model is models[0]]
    assert [d["type"] for d in first] == [
        "training_start",
        "intermediate_metric",
        "intermediate_metric",
        "intermediate_metric",
        "final_metric",
        "training_end",
    ]
    assert [d.get("metric") for d in first[1:5]] == [
        0.5,
        "NaN",
        {"default": "Infinity", "step": 2},
        "-Infinity",
    ]
    ends = [d for d in dicts if d["type"] == "training_end"]
    assert [d["status"] for d in ends] == ["trained", "failed"]
    assert ends[1]["error"] == {"type": "ValueError", "message": "lr too high"}

    trained, failed = (round_trip(m.to_dict()) for m in models)
    assert trained["metrics"] == {"intermediates": [0.5, "NaN", "Infinity"], "final": "-Infinity"}
    assert trained["params"] == {"lr": pytest.approx(0.1)}
    assert failed["params"] == {"lr": "Infinity"}
    assert failed["error"] == {"type": "ValueError", "message": "lr too high"}
    assert {trained["model_id"], failed["model_id"]} == {e["model_id"] for e in ends}
