"""The process executor: models run in a reused worker process.

The models live in :mod:`tests.process_models` (a worker imports them by name).
Nothing here sleeps to synchronise: a model announces that it runs by reporting
(the test waits for that event), and waits for the test by waiting for a file.
Every test checks, once its engine has exited, that no worker process is left.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas
from aionas import (
    ModelEventType,
    ModelStatus,
    ProcessExecutor,
    SequentialExecutionEngine,
    SqliteJournal,
    WorkerDiedError,
)
from aionas.executors import Executor

from . import process_models as pm
from .helpers import Recorder

pytestmark = pytest.mark.anyio

#: Seconds any wait of a test may take (a worker start is ~0.2 s; this is generous).
WAIT = 20


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """Every engine reaps its workers: none is alive, none is a zombie, afterwards."""
    yield
    assert multiprocessing.active_children() == []


def engine_with(
    executor: ProcessExecutor | None = None, **options: Any
) -> SequentialExecutionEngine:
    return SequentialExecutionEngine(executor=executor or ProcessExecutor(), **options)


def when(
    engine: SequentialExecutionEngine, kind: ModelEventType, model: aionas.Model
) -> anyio.Event:
    """An event set once ``model`` has an event of ``kind`` (seen on the loop)."""
    seen = anyio.Event()

    def callback(event: aionas.ModelEvent) -> None:
        if event.model is model:
            seen.set()

    engine.register_model_event_callback(kind, callback)
    return seen


async def wait_for(event: anyio.Event) -> None:
    with anyio.fail_after(WAIT):
        await event.wait()


def gone(pid: int) -> bool:
    """Whether process ``pid`` no longer exists (not even as a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def final_metric(recorder: Recorder, model: aionas.Model) -> Any:
    """The raw final metric of ``model``, as its event carried it."""
    (event,) = [e for e in recorder.of(model) if isinstance(e, aionas.FinalMetricEvent)]
    return event.metric


# ---------------------------------------------------------------------- running models


async def test_reports_stream_to_a_subscriber_in_order_while_the_model_runs(tmp_path: Path) -> None:
    go = tmp_path / "go"
    model = pm.Streamer({"n": 4, "go": str(go)})
    seen: list[tuple[str, Any]] = []
    async with engine_with() as engine:
        async with engine.subscribe() as events:
            await engine.submit_models(model)
            with anyio.fail_after(WAIT):
                async for event in events:
                    seen.append((event.event_type.value, getattr(event, "metric", None)))
                    if isinstance(event, aionas.IntermediateMetricEvent) and event.metric == 0.0:
                        # The model waits for this file: the metric came while it ran.
                        assert model.status is ModelStatus.Training
                        assert model.metrics.intermediates == [0.0]
                        go.touch()
                    if isinstance(event, aionas.TrainingEndEvent):
                        break
    assert seen == [
        ("training_start", None),
        ("intermediate_metric", 0.0),
        ("intermediate_metric", 1.0),
        ("intermediate_metric", 2.0),
        ("intermediate_metric", 3.0),
        ("final_metric", 4.0),
        ("training_end", None),
    ]
    assert model.status is ModelStatus.Trained
    assert model.metrics.intermediates == [0.0, 1.0, 2.0, 3.0]


async def test_final_metrics_and_trained(tmp_path: Path) -> None:
    returns = aionas.FunctionModel(pm.double, {"x": 21})
    reports = aionas.FunctionModel(pm.reports_and_returns, {})
    pid = pm.Pid()
    async with engine_with() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(returns, reports, pid)
        await engine.wait_models()
    assert returns.status is reports.status is pid.status is ModelStatus.Trained
    assert returns.metric == 42.0
    # It reported its final itself (the worker's copy knows): the return is not reported.
    assert recorder.kinds(reports) == ["training_start", "final_metric", "training_end"]
    assert reports.metric == 1.0
    assert pid.metric != os.getpid()  # it ran in another process ...
    assert not hasattr(pid, "touched")  # ... on a copy: attributes set there stay there


async def test_many_reports_arrive_in_order_through_backpressure() -> None:
    model = pm.Many({"n": 2000})
    async with engine_with(event_buffer_size=4) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        await engine.wait_models()
    metrics = [
        e.metric for e in recorder.of(model) if isinstance(e, aionas.IntermediateMetricEvent)
    ]
    assert metrics == list(range(2000))
    assert model.metrics.intermediates == [float(i) for i in range(2000)]


async def test_bad_metrics_raise_at_the_models_own_call() -> None:
    model = pm.BadMetrics()
    async with engine_with() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        await engine.wait_models()
    assert model.status is ModelStatus.Trained
    assert final_metric(recorder, model)["caught"] == ["ValueError", "ValueError", "TypeError"]
    assert model.metrics.intermediates == []


# ---------------------------------------------------------------------- one worker, reused


async def test_one_worker_process_serves_model_after_model() -> None:
    executor = ProcessExecutor()
    models = [pm.Pid() for _ in range(5)]
    async with engine_with(executor) as engine:
        await engine.submit_models(*models)
        await engine.wait_models()
        assert executor.statistics().workers_started == 1
    pids = {model.metric for model in models}
    assert len(pids) == 1
    assert pids != {float(os.getpid())}


async def test_max_models_per_worker_gives_each_model_a_fresh_worker() -> None:
    executor = ProcessExecutor(max_models_per_worker=1)
    models = [pm.Pid() for _ in range(3)]
    async with engine_with(executor) as engine:
        await engine.submit_models(*models)
        await engine.wait_models()
    assert len({model.metric for model in models}) == 3
    assert all(gone(int(model.metric)) for model in models)


async def test_the_forkserver_context_runs_models() -> None:
    model = pm.Pid()
    async with engine_with(ProcessExecutor(context="forkserver")) as engine:
        await engine.submit_models(model)
        await engine.wait_models()
    assert model.status is ModelStatus.Trained


async def test_placement_sets_the_workers_environment() -> None:
    name = "AIONAS_TEST_PLACEMENT"
    lanes: list[int] = []

    def placement(lane: int) -> dict[str, str]:
        lanes.append(lane)
        return {name: f"lane-{lane}"}

    model = pm.EnvReporter({"name": name})
    async with engine_with(ProcessExecutor(placement=placement)) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        await engine.wait_models()
    assert final_metric(recorder, model)["value"] == "lane-0"
    assert lanes == [0]
    assert name not in os.environ  # set in the worker only


async def test_a_placement_that_returns_no_strings_fails_the_engines_start() -> None:
    executor = ProcessExecutor(placement=lambda lane: {"CUDA_VISIBLE_DEVICES": lane})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"placement\(0\) must return a mapping .* to strings"):
        async with engine_with(executor):
            pass


async def test_a_worker_that_cannot_start_fails_the_engines_start() -> None:
    executor = ProcessExecutor(placement=lambda lane: {"": "no name"})  # fails in the worker
    with pytest.raises(
        RuntimeError, match=r"worker process exited before it was ready \(exit code 1\)"
    ):
        async with engine_with(executor):
            pass


# ---------------------------------------------------------------------- failures


async def test_an_error_fails_the_model_with_the_users_traceback_kept(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    raiser, after = pm.Raiser({"x": 9}), pm.Pid()
    async with engine_with(journal=SqliteJournal(db), continue_on_failure=True) as engine:
        await engine.submit_models(raiser, after)
        await engine.wait_models()
    assert raiser.status is ModelStatus.Failed
    assert isinstance(raiser.error, ValueError)
    assert str(raiser.error) == "x=9 is too large"
    assert raiser.metrics.intermediates == [0.5]
    assert "in _check_params" in str(raiser.error.__cause__)  # as concurrent.futures does
    assert after.status is ModelStatus.Trained

    models, _ = aionas.load_history(db)
    record = {m.model_id: m for m in models}[raiser.model_id]
    assert isinstance(record.error, aionas.RestoredError)
    assert record.error.type_name == "ValueError"
    assert record.error.message == "x=9 is too large"
    text = record.error.traceback
    assert "process_models.py" in text
    assert "in _check_params" in text
    assert "raise ValueError" in text
    assert "_process_worker.py" not in text  # from the user's frames on


async def test_an_error_that_cannot_travel_back_is_named_in_a_runtime_error() -> None:
    model = pm.RaisesOdd()
    async with engine_with(continue_on_failure=True) as engine:
        await engine.submit_models(model)
        await engine.wait_models()
    assert model.status is ModelStatus.Failed
    assert isinstance(model.error, RuntimeError)
    assert "tests.process_models.OddError: odd 7: cannot travel" in str(model.error)
    assert "raise OddError" in str(model.error.__cause__)


@pytest.mark.parametrize(
    ("how", "exitcode", "says"),
    [
        pytest.param({"how": "segfault"}, -11, "killed by signal SIGSEGV", id="segfault"),
        pytest.param({"how": "exit", "code": 3}, 3, "exited with code 3", id="os._exit"),
        pytest.param({"how": "abort"}, -6, "killed by signal SIGABRT", id="abort"),
    ],
)
async def test_a_worker_that_dies_fails_its_model_and_the_next_runs_in_a_fresh_one(
    how: dict[str, Any], exitcode: int, says: str, capfd: pytest.CaptureFixture[str]
) -> None:
    executor = ProcessExecutor()
    before, crash, after = pm.Pid(), pm.Crash(how), pm.Pid()
    async with engine_with(executor, continue_on_failure=True) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(before, crash, after)
        await engine.wait_models()
        statistics = executor.statistics()
    assert crash.status is ModelStatus.Failed
    error = crash.error
    assert isinstance(error, WorkerDiedError)
    assert error.exitcode == exitcode
    assert says in str(error)
    assert f"model {crash.model_id} (Crash, params" in str(error)
    assert recorder.end(crash).reason == "failed"
    assert crash.metrics.intermediates == [1.0]  # sent before it died: delivered
    assert after.status is ModelStatus.Trained
    assert before.metric != after.metric
    assert gone(int(before.metric))
    assert (statistics.workers_started, statistics.workers_died) == (2, 1)
    if how["how"] == "segfault":  # the worker's faulthandler shows where it crashed
        err = capfd.readouterr().err
        assert "Fatal Python error: Segmentation fault" in err
        assert "process_models.py" in err


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux)")
async def test_an_idle_worker_that_dies_is_replaced_before_the_next_model() -> None:
    executor = ProcessExecutor()
    first, second = pm.Pid(), pm.Pid()
    async with engine_with(executor) as engine:
        await engine.submit_models(first)
        await engine.wait_models()
        pid = int(first.metric)
        pidfd = os.pidfd_open(pid)
        try:
            os.kill(pid, 9)
            # Readable once it has exited (its sentinel is closed by then).
            readable, _, _ = await anyio.to_thread.run_sync(select.select, [pidfd], [], [], WAIT)
            assert readable
        finally:
            os.close(pidfd)
        await engine.submit_models(second)
        await engine.wait_models()
    assert second.status is ModelStatus.Trained
    assert second.metric != first.metric
    assert executor.statistics().workers_died == 1


# ---------------------------------------------------------------------- stopping


async def test_a_cooperative_model_is_interrupted_and_its_worker_kept() -> None:
    executor = ProcessExecutor()
    model, after = pm.Cooperative(), pm.Pid()
    async with engine_with(executor) as engine:
        recorder = Recorder(engine)
        running = when(engine, ModelEventType.IntermediateMetric, model)
        await engine.submit_models(model, after)
        await wait_for(running)
        assert engine.cancel_model(model) is aionas.CancelResult.Stopping
        await engine.wait_models()
        statistics = executor.statistics()
    end = recorder.end(model)
    assert (end.status, end.reason) == (ModelStatus.Interrupted, "cancelled")
    assert isinstance(end.error, aionas.ModelInterrupted)
    assert after.status is ModelStatus.Trained
    assert after.metric == model.metrics.intermediates[0]  # the same worker
    assert (statistics.workers_started, statistics.workers_killed) == (1, 0)


@pytest.mark.parametrize("stop", ["cancel", "timeout"])
async def test_a_model_that_ignores_a_stop_is_killed_after_the_grace(
    tmp_path: Path, stop: str
) -> None:
    executor = ProcessExecutor()
    model, after = pm.Stubborn({"release": str(tmp_path / "never")}), pm.Pid()
    options: dict[str, Any] = {"cancel_grace": 0.5}
    if stop == "timeout":
        options["max_model_duration"] = 0.5
    async with engine_with(executor, **options) as engine:
        recorder = Recorder(engine)
        running = when(engine, ModelEventType.IntermediateMetric, model)
        await engine.submit_models(model)
        await wait_for(running)
        pid = int(model.metrics.intermediates[0])
        if stop == "cancel":
            engine.cancel_model(model)
        await engine.submit_models(after)
        await engine.wait_models(timeout=WAIT)
        assert after.status is ModelStatus.Trained
        assert gone(pid)  # killed and reaped before the next worker started
        statistics = executor.statistics()
    end = recorder.end(model)
    assert (end.status, end.reason) == (
        ModelStatus.Interrupted,
        "cancelled" if stop == "cancel" else "timeout",
    )
    assert after.metric != pid
    assert (statistics.workers_started, statistics.workers_killed) == (2, 1)


async def test_a_forced_shutdown_kills_a_model_that_ignores_it(tmp_path: Path) -> None:
    model, queued = pm.Stubborn({"release": str(tmp_path / "never")}), pm.Pid()
    async with engine_with() as engine:
        recorder = Recorder(engine)
        running = when(engine, ModelEventType.IntermediateMetric, model)
        await engine.submit_models(model, queued)
        await wait_for(running)
        pid = int(model.metrics.intermediates[0])
        with anyio.fail_after(WAIT):
            await engine.shutdown(force=True)
        assert model.status is ModelStatus.Interrupted
    assert recorder.end(model).reason == "shutdown"
    assert recorder.end(queued).reason == "shutdown"
    assert gone(pid)


# ---------------------------------------------------------------------- runs kept apart


async def test_a_report_tagged_for_another_run_is_dropped_and_counted() -> None:
    executor = ProcessExecutor()
    model = pm.Forger()
    async with engine_with(executor) as engine:
        await engine.submit_models(model)
        await engine.wait_models()
    assert model.status is ModelStatus.Trained
    assert model.metrics.intermediates == []
    assert executor.statistics().dropped_reports == 1


async def test_a_thread_left_behind_cannot_report_into_the_next_model() -> None:
    leaver, checker = pm.LateReporter(), pm.LateChecker()
    async with engine_with() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(leaver, checker)
        await engine.wait_models()
    assert final_metric(recorder, checker)["late"] == ["interrupted"]
    assert leaver.metrics.intermediates == checker.metrics.intermediates == []


# ---------------------------------------------------------------------- models that cannot travel


def test_check_names_the_class_of_a_model_that_does_not_pickle() -> None:
    executor = ProcessExecutor()
    with pytest.raises(TypeError, match=r"HoldsLock cannot be sent to a worker process") as info:
        executor.check(pm.HoldsLock())
    assert "lock" in str(info.value)
    assert "module level" in str(info.value)
    with pytest.raises(TypeError, match=r"FunctionModel cannot be sent .*lambda"):
        executor.check(aionas.FunctionModel(lambda params: 1.0, {}))
    executor.check(pm.Pid())


async def test_a_model_that_does_not_pickle_is_refused_at_submission() -> None:
    good = pm.Pid()
    async with engine_with() as engine:
        with pytest.raises(TypeError, match="HoldsLock cannot be sent to a worker process"):
            await engine.submit_models(good, pm.HoldsLock())
        assert engine.list_models() == []  # all or nothing
        await engine.submit_models(good)
        await engine.wait_models()
    assert good.status is ModelStatus.Trained


class Unchecked(ProcessExecutor):
    """As if the engine did not call check(): the run itself must fail cleanly."""

    check = Executor.check  # type: ignore[assignment]


async def test_a_model_that_does_not_pickle_fails_its_run_if_not_checked() -> None:
    model, after = pm.HoldsLock(), pm.Pid()
    async with engine_with(Unchecked(), continue_on_failure=True) as engine:
        await engine.submit_models(model, after)
        await engine.wait_models()
    assert model.status is ModelStatus.Failed
    assert isinstance(model.error, TypeError)
    assert "HoldsLock cannot be sent to a worker process" in str(model.error)
    assert after.status is ModelStatus.Trained


def test_worker_died_error_says_how_the_worker_ended_and_pickles() -> None:
    killed = WorkerDiedError("model 1 (M, params {})", -9)
    assert "killed by signal SIGKILL" in str(killed)
    assert "out-of-memory" in str(killed)  # the usual reason, and where to look
    exited = WorkerDiedError("model 2 (M, params {})", 3)
    assert str(exited).endswith("it exited with code 3")
    assert exited.signal_name is None
    assert isinstance(killed, aionas.AionasError)
    copy = pickle.loads(pickle.dumps(killed))
    assert (str(copy), copy.exitcode, copy.signal_name) == (str(killed), -9, "SIGKILL")


# ---------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"context": "fork"}, ValueError, "forking a process with threads"),
        ({"context": "thread"}, ValueError, "'spawn' or 'forkserver'"),
        ({"placement": "GPU0"}, TypeError, "placement must be a function"),
        ({"max_models_per_worker": 0}, ValueError, "max_models_per_worker must be > 0"),
        ({"max_models_per_worker": 1.5}, TypeError, "max_models_per_worker must be a positive int"),
    ],
)
def test_bad_options_are_refused(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ProcessExecutor(**options)


async def test_an_executor_serves_one_engine() -> None:
    executor = ProcessExecutor()
    async with engine_with(executor):
        pass
    with pytest.raises(RuntimeError, match="serves one engine"):
        async with engine_with(executor):
            pass


async def test_a_model_the_worker_cannot_import_fails_with_what_to_do() -> None:
    module = types.ModuleType("aionas_parent_only")
    sys.modules[module.__name__] = module
    try:
        exec(  # a class that pickles by reference to a module only this process has
            "import aionas\n"
            "class Local(aionas.Model):\n"
            "    def execute(self):\n"
            "        aionas.report_final_result(1.0)\n",
            module.__dict__,
        )
        model, after = module.Local(), pm.Pid()
        async with engine_with(continue_on_failure=True) as engine:
            await engine.submit_models(model, after)
            await engine.wait_models()
    finally:
        del sys.modules[module.__name__]
    assert model.status is ModelStatus.Failed
    assert isinstance(model.error, TypeError)
    assert "the worker process could not unpickle the model" in str(model.error)
    assert "aionas_parent_only" in str(model.error)
    assert after.status is ModelStatus.Trained


async def test_ctrl_c_in_the_worker_is_left_to_the_engine(tmp_path: Path) -> None:
    release = tmp_path / "release"
    model = pm.Stubborn({"release": str(release)})
    async with engine_with() as engine:
        running = when(engine, ModelEventType.IntermediateMetric, model)
        await engine.submit_models(model)
        await wait_for(running)
        os.kill(int(model.metrics.intermediates[0]), signal.SIGINT)  # as a terminal's Ctrl+C
        release.touch()
        await engine.wait_models()
    assert model.status is ModelStatus.Trained


# ---------------------------------------------------------------------- no process left behind

_REPO = Path(__file__).resolve().parent.parent

#: argv[1] == "exit": opens a ProcessExecutor, prints its worker's pid, and exits
#: without closing it. "busy": runs a model that never checks for a stop in an
#: engine, prints the worker's pid once the model runs, and waits to be killed.
_SCRIPT = """
import sys, anyio, aionas
from tests import process_models as pm

async def busy():
    async with aionas.SequentialExecutionEngine(executor=aionas.ProcessExecutor()) as engine:
        show = lambda event: print(int(event.metric), flush=True)
        engine.register_model_event_callback("intermediate_metric", show)
        await engine.submit_models(pm.Stubborn({"release": "/never", "timeout": 600}))
        await anyio.Event().wait()

if sys.argv[1] == "busy":
    anyio.run(busy)
else:
    executor = aionas.ProcessExecutor()
    anyio.run(executor.open, None)
    print(executor.statistics().pid, flush=True)
"""


def _exited(pid: int) -> bool:
    """Wait until process ``pid`` has exited (it need not be our child)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], WAIT)
        return bool(readable)
    finally:
        os.close(pidfd)


def _script(how: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, how],
        cwd=_REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux)")
def test_a_worker_whose_engine_process_dies_exits_even_while_running_a_model() -> None:
    with _script("busy") as script:
        try:
            assert script.stdout is not None
            pid = int(script.stdout.readline())
        finally:
            script.kill()  # SIGKILL: no atexit, no aclose; only the worker can clean up
    assert _exited(pid)


def test_a_worker_never_closed_is_terminated_at_interpreter_exit() -> None:
    with _script("exit") as script:
        try:
            output, _ = script.communicate(timeout=WAIT)
        finally:
            script.kill()  # if it hangs (its worker, left alone, then exits by itself)
    assert script.returncode == 0
    assert gone(int(output))


async def test_a_kill_that_lands_as_the_model_ends_by_itself_spares_the_next(
    tmp_path: Path,
) -> None:
    release = tmp_path / "restore"
    model = pm.EndsWhileKilled({"release": str(release)})
    after = pm.Pid()
    async with engine_with(ProcessExecutor(), cancel_grace=0.05) as engine:
        running = when(engine, ModelEventType.IntermediateMetric, model)
        await engine.submit_models(model, after)
        await wait_for(running)
        engine.cancel_model(model)  # ignored: the kill comes while its END is being read
        await engine.wait_models(model, timeout=WAIT)
        release.touch()  # now the supervisor finishes reading the END of a killed worker
        await engine.wait_models(after, timeout=WAIT)
    assert model.status is ModelStatus.Interrupted
    assert after.status is ModelStatus.Trained


async def test_an_error_whose_unpickling_raises_system_exit_fails_the_model() -> None:
    model, after = pm.RaisesBomb(), pm.Pid()
    async with engine_with(ProcessExecutor(), continue_on_failure=True) as engine:
        await engine.submit_models(model, after)
        await engine.wait_models(timeout=WAIT)
    assert model.status is ModelStatus.Failed
    assert isinstance(model.error, RuntimeError)
    assert "Bomb" in str(model.error)
    assert after.status is ModelStatus.Trained


async def test_what_a_model_leaves_running_goes_with_its_worker(tmp_path: Path) -> None:
    executor = ProcessExecutor(max_models_per_worker=1)
    left, killed = (
        pm.LeavesThings(),
        pm.LeavesThings({"stubborn": True, "release": str(tmp_path / "never")}),
    )
    async with engine_with(executor, cancel_grace=0.2) as engine:
        await engine.submit_models(left)
        await engine.wait_models(left, timeout=WAIT)  # its worker retires at once, not in 60 s
        running = when(engine, ModelEventType.IntermediateMetric, killed)
        await engine.submit_models(killed)
        await wait_for(running)
        engine.cancel_model(killed)
        await engine.wait_models(timeout=WAIT)
    assert left.status is ModelStatus.Trained
    assert killed.status is ModelStatus.Interrupted
    for model in (left, killed):
        child = int(model.metrics.intermediates[0])
        assert dead(child), f"the subprocess {child} of {model!r} outlived its worker"


def dead(pid: int) -> bool:
    """Gone, or a zombie: killed, and waiting for whoever inherited it to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_a_model_class_a_worker_cannot_import_is_refused_at_submission() -> None:
    code = """
import anyio, aionas

class InMain(aionas.Model):
    def execute(self):
        aionas.report_final_result(1.0)

async def main():
    async with aionas.SequentialExecutionEngine(executor=aionas.ProcessExecutor()) as engine:
        try:
            await engine.submit_models(InMain())
        except TypeError as error:
            print("refused:", error)
        print("models:", len(engine.list_models()))

anyio.run(main)
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "refused: InMain is defined in a __main__ that a worker process cannot" in result.stdout
    assert "models: 0" in result.stdout
