"""aionas.testing, the pytest plugin for users' tests.

Under pytest-asyncio (``@pytest.mark.asyncio``, its async fixtures, a module loop
scope), under anyio's plugin (``@pytest.mark.anyio``, asyncio and trio through the
conftest), and as a newcomer meets it: a project of its own, run by ``pytester``
in a subprocess, with the plugin loaded through its entry point.
"""

from __future__ import annotations

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import aionas
from aionas.testing import (
    BlockingModel,
    EngineFactory,
    EventLog,
    ScriptedModel,
    collect_events,
    running_engine,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

Engine = aionas.SequentialExecutionEngine
STARTED_TO_END = ["training_start", "intermediate_metric", "final_metric", "training_end"]


def end_of(log: EventLog, model: aionas.Model) -> tuple[aionas.ModelStatus, str]:
    end = log.end(model)
    return end.status, end.reason


# ---------------------------------------------------------------- under pytest-asyncio


@pytest.mark.asyncio
async def test_asyncio_engine_runs_a_script(aionas_engine: Engine) -> None:
    model = ScriptedModel(intermediates=[0.1, 0.2], final=0.3, params={"lr": 0.1})
    with collect_events(aionas_engine) as log:
        await aionas_engine.submit_models(model)
        await aionas_engine.wait_models(model)
    log.assert_consistent()
    assert log.kinds(model) == [
        "training_start",
        "intermediate_metric",
        "intermediate_metric",
        "final_metric",
        "training_end",
    ]
    assert log.intermediates(model) == [0.1, 0.2]
    assert model.metrics.intermediates == [0.1, 0.2]
    assert end_of(log, model) == (aionas.ModelStatus.Trained, "completed")
    assert model.metric == 0.3
    assert model.params == {"lr": 0.1}


@pytest_asyncio.fixture
async def trained(aionas_engine: Engine) -> ScriptedModel:
    """A pytest-asyncio async fixture building on aionas_engine: the same engine."""
    model = ScriptedModel(final=0.5)
    await aionas_engine.submit_models(model)
    await aionas_engine.wait_models(model)
    return model


@pytest.mark.asyncio
async def test_asyncio_fixture_shares_the_engine(
    aionas_engine: Engine, trained: ScriptedModel
) -> None:
    assert [m is trained for m in aionas_engine.list_models()] == [True]
    assert trained.status is aionas.ModelStatus.Trained
    late = ScriptedModel(final=0.7)
    await aionas_engine.submit_models(late)  # the engine still runs in the test's loop
    await aionas_engine.wait_models(late)
    assert late.metric == 0.7


@pytest.mark.asyncio
@pytest.mark.aionas_engine(max_model_count=1)
async def test_asyncio_marker_configures_the_engine(aionas_engine: Engine) -> None:
    await aionas_engine.submit_models(ScriptedModel(final=1.0))
    with pytest.raises(aionas.BudgetExhaustedError):
        await aionas_engine.submit_models(ScriptedModel(final=2.0))


@pytest.mark.aionas_engine(max_model_count=1, continue_on_failure=False)
class TestIndirectParameter:
    """The class's marker gives defaults; an indirect parameter wins over it."""

    @pytest.mark.asyncio
    @pytest.mark.parametrize("aionas_engine", [{"continue_on_failure": True}], indirect=True)
    async def test_parameter_wins(self, aionas_engine: Engine) -> None:
        boom = ScriptedModel(intermediates=[1.0], raises=ValueError("boom"))
        await aionas_engine.submit_models(boom)
        await aionas_engine.wait_models(boom)
        assert boom.status is aionas.ModelStatus.Failed  # and the engine kept running:
        assert aionas_engine.budget_available() is False  # max_model_count=1 still applies

    @pytest.mark.asyncio
    @pytest.mark.aionas_engine(max_model_count=2)
    async def test_closest_marker_wins(self, aionas_engine: Engine) -> None:
        await aionas_engine.submit_models(ScriptedModel(final=1.0), ScriptedModel(final=2.0))
        assert aionas_engine.budget_available() is False


@pytest.mark.asyncio(loop_scope="module")
async def test_asyncio_module_loop_scope(aionas_engine: Engine) -> None:
    """The engine lives in the test's loop, whatever its scope."""
    model = ScriptedModel(intermediates=[1.0], final=2.0)
    await aionas_engine.submit_models(model)
    await aionas_engine.wait_models(model)
    assert model.metric == 2.0


@pytest.mark.asyncio
async def test_asyncio_cancel_a_blocked_model(aionas_engine: Engine) -> None:
    blocked = BlockingModel(intermediates=[0.5], final=0.9)
    queued = ScriptedModel(final=1.0)
    with collect_events(aionas_engine) as log:
        await aionas_engine.submit_models(blocked, queued)
        await blocked.wait_blocked()
        assert blocked.blocked
        aionas_engine.cancel_model(blocked)
        await aionas_engine.wait_models()
    log.assert_consistent()
    assert end_of(log, blocked) == (aionas.ModelStatus.Interrupted, "cancelled")
    assert log.kinds(blocked) == ["training_start", "intermediate_metric", "training_end"]
    assert queued.metric == 1.0


@pytest.mark.asyncio
@pytest.mark.aionas_engine(max_model_count=5)
async def test_asyncio_factory(aionas_engine_factory: EngineFactory) -> None:
    async with aionas_engine_factory(max_model_count=1) as first:
        await first.submit_models(ScriptedModel(final=1.0))
        assert not first.budget_available()  # the override won
    async with aionas_engine_factory() as second:
        await second.submit_models(*(ScriptedModel(final=float(i)) for i in range(5)))
        assert not second.budget_available()  # the marker's default
    # Leaving each block ended every model.
    assert [m.metric for m in second.list_models()] == [0.0, 1.0, 2.0, 3.0, 4.0]


# ---------------------------------------------------------------- under anyio's plugin


@pytest.mark.anyio
async def test_anyio_engine_runs_a_script(aionas_engine: Engine, anyio_backend: str) -> None:
    model = ScriptedModel(intermediates=[{"default": 0.5, "loss": 1.0}], final=0.6)
    with collect_events(aionas_engine) as log:
        await aionas_engine.submit_models(model)
        await aionas_engine.wait_models(model)
    log.assert_consistent()
    assert log.kinds(model) == STARTED_TO_END
    assert log.intermediates(model) == [{"default": 0.5, "loss": 1.0}]
    assert model.metric == 0.6


@pytest.mark.anyio
@pytest.mark.aionas_engine(continue_on_failure=True)
async def test_anyio_fail_after_k_reports(aionas_engine: Engine) -> None:
    models = [
        ScriptedModel(intermediates=[1.0, 2.0, 3.0], final=4.0, raises=ValueError, fail_after=k)
        for k in range(5)
    ]
    with collect_events(aionas_engine) as log:
        await aionas_engine.submit_models(*models)
        await aionas_engine.wait_models()
    log.assert_consistent()
    for k, model in enumerate(models):
        assert model.status is aionas.ModelStatus.Failed
        assert isinstance(model.error, ValueError)
        assert (*model.metrics.intermediates, model.metric)[:k] == (1.0, 2.0, 3.0, 4.0)[:k]
        assert len(model.metrics.intermediates) == min(k, 3)
        assert model.metric == (4.0 if k == 4 else None)


@pytest.mark.anyio
@pytest.mark.aionas_engine(max_model_duration=0.05)
async def test_anyio_timeout_interrupts_a_blocked_model(aionas_engine: Engine) -> None:
    model = BlockingModel(final=0.9)  # no report before its gate: it surely gets there
    with collect_events(aionas_engine) as log:
        await aionas_engine.submit_models(model)
        await aionas_engine.wait_models(model)
    assert model.blocked
    assert end_of(log, model) == (aionas.ModelStatus.Interrupted, "timeout")


@pytest.mark.anyio
async def test_anyio_shutdown_ends_blocked_and_queued(aionas_engine: Engine) -> None:
    blocked, queued = BlockingModel(), ScriptedModel(final=1.0)
    with collect_events(aionas_engine) as log:
        await aionas_engine.submit_models(blocked, queued)
        await blocked.wait_blocked()
        await aionas_engine.shutdown()
        await aionas_engine.wait_models()
    log.assert_consistent()
    assert end_of(log, blocked) == (aionas.ModelStatus.Interrupted, "shutdown")
    assert log.kinds(queued) == ["training_end"]  # it never started
    assert end_of(log, queued) == (aionas.ModelStatus.Interrupted, "shutdown")


@pytest.mark.anyio
async def test_anyio_released_model_finishes(aionas_engine: Engine) -> None:
    model = BlockingModel(intermediates=[0.1], final=0.9)
    model.release()  # before it runs: it passes through
    await aionas_engine.submit_models(model)
    await aionas_engine.wait_models(model)
    assert model.metric == 0.9


@pytest.mark.anyio
async def test_anyio_exit_timeout_shuts_down_and_fails(
    aionas_engine_factory: EngineFactory,
) -> None:
    model = BlockingModel(final=1.0)
    with pytest.raises(AssertionError, match=r"1 model\(s\) had not ended 0\.05s after"):
        async with aionas_engine_factory(exit_timeout=0.05) as engine:
            await engine.submit_models(model)
            await model.wait_blocked()
    assert model.status is aionas.ModelStatus.Interrupted


@pytest.mark.anyio
async def test_anyio_error_in_block_shuts_down(aionas_engine_factory: EngineFactory) -> None:
    model = BlockingModel()
    with pytest.raises(RuntimeError, match="test failed"):
        async with aionas_engine_factory() as engine:
            await engine.submit_models(model)
            await model.wait_blocked()
            raise RuntimeError("test failed")
    assert model.status is aionas.ModelStatus.Interrupted


@pytest.mark.anyio
async def test_anyio_model_failure_raised_on_exit(aionas_engine_factory: EngineFactory) -> None:
    """The default continue_on_failure=False: the model's error leaves the block."""
    with pytest.raises(ValueError, match="boom"):
        async with aionas_engine_factory() as engine:
            await engine.submit_models(
                ScriptedModel(intermediates=[1.0], raises=ValueError("boom"))
            )


@pytest.mark.anyio
async def test_running_engine_checks_exit_timeout() -> None:
    with pytest.raises(ValueError, match="exit_timeout must be >= 0"):
        async with running_engine(exit_timeout=-1):
            pass
    with pytest.raises(TypeError, match="no_such_option"):
        async with running_engine(no_such_option=1):
            pass


@pytest.mark.anyio
async def test_blocking_model_wait_times_out() -> None:
    with pytest.raises(TimeoutError, match=r"did not reach its gate within 0\.01s"):
        await BlockingModel().wait_blocked(timeout=0.01)


# ---------------------------------------------------------------- helpers, no engine


def test_scripted_model_checks_its_script() -> None:
    assert ScriptedModel(intermediates=[1, 2]).script == (1, 2)
    assert ScriptedModel(intermediates=iter([1]), final=3).script == (1, 3)
    assert ScriptedModel(raises=KeyError, fail_after=0).fail_after == 0
    with pytest.raises(TypeError, match="raises must be an exception"):
        ScriptedModel(raises="boom")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fail_after needs raises="):
        ScriptedModel(fail_after=1)
    with pytest.raises(ValueError, match="fail_after must be an int >= 0"):
        ScriptedModel(raises=ValueError, fail_after=-1)
    with pytest.raises(TypeError):
        ScriptedModel({"x": 1})  # type: ignore[call-arg]  # everything is keyword-only


def test_event_log_checks_the_engine_promises() -> None:
    a, b = aionas.Model(), aionas.Model()
    start = aionas.TrainingStartEvent
    metric = aionas.IntermediateMetricEvent
    end = aionas.TrainingEndEvent
    done = aionas.ModelStatus.Trained
    log = EventLog()
    log.events += [start(a, seq=1), metric(a, metric=1.0, seq=2), end(b, status=done, seq=3)]
    log.events += [end(a, status=done, seq=4), start(a, seq=5)]  # a second run, still going
    log.assert_consistent()
    assert len(log) == 5
    assert log.kinds(b) == ["training_end"]
    with pytest.raises(AssertionError, match="expected one end event"):
        log.end(aionas.Model())
    broken: dict[str, list[aionas.ModelEvent]] = {
        "seq went from 2 to 2": [start(a, seq=1), start(b, seq=2), start(b, seq=2)],
        "a second start": [start(a, seq=1), start(a, seq=2)],
        "a metric outside a run": [
            start(a, seq=1),
            end(a, status=done, seq=2),
            metric(a, metric=0, seq=3),
        ],
        "an end with status training": [end(a, status=aionas.ModelStatus.Training, seq=1)],
    }
    for message, events in broken.items():
        log = EventLog()
        log.events += events
        with pytest.raises(AssertionError, match=message):
            log.assert_consistent()


@pytest.mark.parametrize("name", ["_engine", "_events", "_models", "_plugin"])
def test_submodule_doctests(name: str) -> None:
    """tests/test_docs.py runs the package's doctests; these are its modules'."""
    module = importlib.import_module(f"aionas.testing.{name}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_importing_does_not_import_pytest_asyncio_or_trio() -> None:
    code = "import sys, aionas.testing; print({'pytest_asyncio', 'trio'} & set(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "set()"


# ---------------------------------------------------------------- a newcomer's project


def readme_testing_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Testing your search code", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def run_project(pytester: pytest.Pytester, *args: str, **files: Any) -> pytest.RunResult:
    """Run pytest in a subprocess on a project of its own, plugins loaded by entry point."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\naddopts = --strict-markers -p no:cacheprovider\n"
    )
    pytester.makepyfile(**files)
    return pytester.runpytest_subprocess(*args, timeout=60)


def test_newcomer_readme_example_passes(pytester: pytest.Pytester) -> None:
    """The README's example, as a user's test file under pytest-asyncio strict mode."""
    result = run_project(pytester, "-v", test_search=readme_testing_block())
    result.assert_outcomes(passed=4)  # two pytest-asyncio tests, one anyio test on two backends
    result.stdout.fnmatch_lines(["*test_cancel_a_running_model?trio? PASSED*"])


def test_newcomer_in_auto_mode_sees_teardown_errors_and_clear_messages(
    pytester: pytest.Pytester,
) -> None:
    """pytest-asyncio's auto mode (no marker needed); what goes wrong is reported
    as an error of the test's setup or teardown, never as a hang."""
    user_tests = """
        import pytest
        from aionas.testing import ScriptedModel

        async def test_auto_mode(aionas_engine):
            model = ScriptedModel(intermediates=[1.0], final=2.0)
            await aionas_engine.submit_models(model)
            await aionas_engine.wait_models(model)
            assert model.metric == 2.0

        async def test_failure_stops_the_engine(aionas_engine):
            await aionas_engine.submit_models(ScriptedModel(raises=ValueError("boom")))

        def test_sync_test_cannot_have_an_engine(aionas_engine):
            pass

        @pytest.mark.aionas_engine(no_such_option=1)
        async def test_unknown_option(aionas_engine):
            pass
    """
    result = run_project(pytester, "-o", "asyncio_mode=auto", test_misuse=user_tests)
    result.assert_outcomes(passed=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_failure_stops_the_engine*",
            "*ValueError: boom*",
            "*ERROR at setup of test_sync_test_cannot_have_an_engine*",
            "*needs an async test run by pytest-asyncio (@pytest.mark.asyncio) or by anyio*",
            "*ERROR at setup of test_unknown_option*",
            "*TypeError*no_such_option*",
        ],
        consecutive=False,
    )


def test_plugin_is_inert_for_projects_that_do_not_use_it(pytester: pytest.Pytester) -> None:
    """Loaded by its entry point, it adds no autouse fixture, and without pytest-asyncio
    it neither imports it nor needs it (anyio's plugin alone is enough)."""
    user_tests = """
        import sys
        import pytest
        import aionas.testing

        def test_loaded_and_inert(request):
            assert request.config.pluginmanager.get_plugin("aionas") is aionas.testing
            assert [name for name in request.fixturenames if "aionas" in name] == []
            assert "pytest_asyncio" not in sys.modules

        @pytest.mark.anyio
        async def test_anyio_alone(aionas_engine):
            model = aionas.testing.ScriptedModel(final=1.0)
            await aionas_engine.submit_models(model)
            await aionas_engine.wait_models(model)
            assert model.metric == 1.0
    """
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_inert=user_tests)
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=3)
