from __future__ import annotations

import inspect

import aionas

CONTRACT = [
    "AionasError",
    "BudgetExhaustedError",
    "EngineClosedError",
    "ExecutionEngine",
    "FinalMetricEvent",
    "FunctionModel",
    "IntermediateMetricEvent",
    "Metrics",
    "Model",
    "ModelEvent",
    "ModelEventType",
    "ModelInterrupted",
    "ModelStateError",
    "ModelStatus",
    "SequentialExecutionEngine",
    "TrainingEndEvent",
    "TrainingStartEvent",
    "check_cancelled",
    "current_model",
    "get_next_parameter",
    "report_final_result",
    "report_intermediate_result",
]


def test_all_is_sorted_and_unique() -> None:
    assert list(aionas.__all__) == sorted(set(aionas.__all__))


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(aionas).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations"}
    }
    assert public == set(aionas.__all__)


def test_contract_names_are_exported() -> None:
    missing = [name for name in CONTRACT if name not in aionas.__all__]
    assert missing == []


def test_model_interrupted_is_not_an_exception() -> None:
    assert issubclass(aionas.ModelInterrupted, BaseException)
    assert not issubclass(aionas.ModelInterrupted, Exception)
    for error in (aionas.ModelStateError, aionas.BudgetExhaustedError, aionas.EngineClosedError):
        assert issubclass(error, aionas.AionasError)
