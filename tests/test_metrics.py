from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import aionas
from aionas import Metrics, canonical_metric
from aionas.metrics import check_storable, metric_json


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (0.5, 0.5),
        (np.float32(0.25), 0.25),
        (np.int64(7), 7.0),
        (np.float64(0.125), 0.125),
        (Fraction(1, 4), 0.25),
        ({"default": 3, "loss": "x"}, 3.0),
        ({"default": np.float64(0.5)}, 0.5),
    ],
)
def test_numbers_are_stored_as_float(value: object, expected: float) -> None:
    stored = canonical_metric(value)
    assert type(stored) is float
    assert stored == expected


@pytest.mark.parametrize(
    "value", ["0.5", None, True, np.bool_(True), [1.0], np.array([1.0, 2.0]), object()]
)
def test_non_numbers_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="not a number"):
        canonical_metric(value)


def test_dict_without_default_names_default() -> None:
    with pytest.raises(ValueError, match="'default'"):
        canonical_metric({"accuracy": 0.9})


def test_metrics_api() -> None:
    m = Metrics()
    assert m.intermediates == []
    assert m.final is None
    m.add_intermediate(1)
    m.add_intermediate({"default": 2})
    m.final = np.float64(0.5)
    assert m.intermediates == [1.0, 2.0]
    assert m.final == 0.5
    assert type(m.final) is float
    copy = Metrics.from_dict(m.to_dict())
    assert copy == m
    assert copy is not m
    assert m != Metrics([1.0, 2.0])
    m.clear()
    assert m == Metrics()


def test_metrics_strict_rejects_bad_values_and_keeps_state() -> None:
    m = Metrics([0.1])
    with pytest.raises(ValueError, match="not a number"):
        m.add_intermediate("high")
    with pytest.raises(ValueError, match="'default'"):
        m.final = {"acc": 1.0}
    assert m == Metrics([0.1])


def test_metrics_non_strict_stores_as_given() -> None:
    m = Metrics(strict=False)
    m.add_intermediate("anything")
    assert m.intermediates == ["anything"]


def test_from_dict_names_missing_keys() -> None:
    with pytest.raises(ValueError, match="final"):
        Metrics.from_dict({"intermediates": []})


def test_events_are_immutable_and_nni_shaped() -> None:
    model = aionas.Model({"x": 1})
    event = aionas.IntermediateMetricEvent(model, 0.5)
    assert event.event_type is aionas.ModelEventType.IntermediateMetric
    assert event.metric == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.metric = 1.0  # type: ignore[misc]
    end = aionas.TrainingEndEvent(model, aionas.ModelStatus.Trained)
    assert end.reason == "completed"
    assert end.error is None
    kinds = {
        aionas.TrainingStartEvent: "training_start",
        aionas.IntermediateMetricEvent: "intermediate_metric",
        aionas.FinalMetricEvent: "final_metric",
        aionas.TrainingEndEvent: "training_end",
    }
    for cls, value in kinds.items():
        assert cls.event_type == value


def test_event_type_parse() -> None:
    assert aionas.ModelEventType.parse("training_end") is aionas.ModelEventType.TrainingEnd
    with pytest.raises(ValueError, match="training_end"):
        aionas.ModelEventType.parse("training_ended")


def test_engine_event_factories_match_the_constructors() -> None:
    from aionas import events

    model = aionas.Model()
    error = ValueError("x")
    pairs = [
        (
            events.new_start(model, 7, 1, 2.0),
            aionas.TrainingStartEvent(model, seq=1, timestamp=2.0, model_id=7),
        ),
        (
            events.new_intermediate(model, 7, 0.5, 2, 3.0),
            aionas.IntermediateMetricEvent(model, 0.5, seq=2, timestamp=3.0, model_id=7),
        ),
        (
            events.new_final(model, 7, {"default": 1}, 3, 4.0),
            aionas.FinalMetricEvent(model, {"default": 1}, seq=3, timestamp=4.0, model_id=7),
        ),
        (
            events.new_end(model, 7, aionas.ModelStatus.Failed, "failed", error, 4, 5.0),
            aionas.TrainingEndEvent(
                model, aionas.ModelStatus.Failed, "failed", error, seq=4, timestamp=5.0, model_id=7
            ),
        ),
    ]
    for fast, slow in pairs:
        assert type(fast) is type(slow)
        assert fast == slow
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.seq = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (10**400, "about 10**400"),
        (-(10**400), "about -10**400"),
        ({"default": 10**400}, "about 10**400"),
        (Fraction(10**400), "(Fraction)"),
    ],
    ids=["int", "negative-int", "dict", "fraction"],
)
def test_numbers_beyond_a_float_raise_value_error_naming_their_size(value: Any, size: str) -> None:
    with pytest.raises(ValueError, match="too large for a float") as caught:
        canonical_metric(value)
    message = str(caught.value)
    assert size in message
    assert len(message) < 200  # never the 400 digits
    with pytest.raises(ValueError, match="too large"):
        Metrics().add_intermediate(value)


@pytest.mark.parametrize(
    ("metric", "text"),
    [
        (np.float32(0.5), "0.5"),
        (np.int64(3), "3"),
        (np.float64(0.25), "0.25"),
        (Fraction(1, 4), "0.25"),
        (math.nan, "NaN"),
        (-math.inf, "-Infinity"),
        (
            {"default": np.float32(0.5), "epochs": np.int64(3), "curve": [np.float64(1.0)]},
            '{"default": 0.5, "epochs": 3, "curve": [1.0]}',
        ),
        ({"default": 0.5, "loss": math.nan, "ok": True, "note": None}, None),
    ],
)
def test_numpy_scalars_and_nan_are_storable(metric: Any, text: str | None) -> None:
    check_storable(metric)
    stored = metric_json(metric)
    if text is not None:
        assert stored == text


def _circular() -> dict[str, Any]:
    metric: dict[str, Any] = {"default": 1.0}
    metric["self"] = metric
    return metric


@pytest.mark.parametrize(
    ("metric", "named"),
    [
        ({"default": 1.0, "blob": object()}, "'blob': <object object"),
        ([object()], "[<object object"),
        ({"default": 1.0, "done": np.bool_(True)}, "'done'"),
        ({np.int64(1): 2.0}, "int64"),
        ({"default": 1.0, "big": 10**5000}, "<int of about 5000 digits>"),
        (_circular(), "'self'"),
    ],
)
def test_what_json_cannot_hold_is_refused_naming_the_metric(metric: Any, named: str) -> None:
    with pytest.raises(TypeError, match="cannot be stored as JSON") as caught:
        check_storable(metric)
    message = str(caught.value)
    assert named in message
    assert "report numbers" in message  # what to do instead
    assert len(message) < 600


def test_plain_numbers_are_storable() -> None:
    for metric in (0.5, 3, True, -0.0, math.inf, {"default": 1}, [1, 2.5], "text", None):
        assert check_storable(metric) is None
