from __future__ import annotations

import logging
from typing import Any

import pytest

import aionas
from aionas import trial


def test_model_defaults() -> None:
    params = {"lr": 0.1}
    model = aionas.Model(params)
    assert model.params == params
    assert model.params is not params
    assert model.status is aionas.ModelStatus.Frozen
    assert model.metrics == aionas.Metrics()
    assert model.metric is None
    assert model.error is None
    assert aionas.Model().params == {}
    model.metrics.final = 0.5
    assert model.metric == 0.5
    assert "0.5" in repr(model)


def test_model_rejects_non_mapping_params() -> None:
    with pytest.raises(TypeError, match="mapping"):
        aionas.Model([1, 2])  # type: ignore[arg-type]


def test_base_execute_says_what_to_do() -> None:
    with pytest.raises(NotImplementedError, match="FunctionModel"):
        aionas.Model().execute()


def test_function_model_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        aionas.FunctionModel(42, {})  # type: ignore[arg-type]


@pytest.fixture
def fresh_standalone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trial, "_warned", False)


@pytest.mark.usefixtures("fresh_standalone")
def test_standalone_mode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aionas.trial")
    assert aionas.get_next_parameter() is None
    assert aionas.current_model() is None
    aionas.report_intermediate_result(0.5)
    aionas.report_final_result({"default": 0.9})
    aionas.check_cancelled()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no engine is running" in warnings[0].getMessage()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("0.5" in m for m in infos)
    assert any("0.9" in m for m in infos)


@pytest.mark.usefixtures("fresh_standalone")
def test_standalone_still_validates_metrics() -> None:
    with pytest.raises(ValueError, match="not a number"):
        aionas.report_intermediate_result("bad")


@pytest.mark.usefixtures("fresh_standalone")
def test_function_model_runs_standalone() -> None:
    seen: list[Any] = []

    def fn(params: dict[str, Any]) -> float:
        seen.append(params)
        return 2.0

    model = aionas.FunctionModel(fn, {"x": 1})
    model.execute()
    assert seen == [{"x": 1}]
