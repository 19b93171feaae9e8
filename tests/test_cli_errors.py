"""What the user sees when their own code is wrong.

An error while a search file runs shows the user's frames only; an ``evaluate``
that forgets ``return`` fails its model; a failed model's traceback starts at the
user's code.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import traceback
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal
from aionas.cli._common import UsageError
from aionas.cli._searchfile import SearchFileError, load_search, model_factory
from aionas.events import error_traceback

from .helpers import Recorder

AIONAS = [sys.executable, "-m", "aionas.cli"]
PACKAGE = str(Path(aionas.__file__).resolve().parent)
GOOD = "from aionas.space import Int\nspace = {'x': Int(0, 3)}\ndef evaluate(p):\n    return 1\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(SearchFileError) as caught:
        load_search(path)
    assert isinstance(caught.value, UsageError)  # main prints it on one "aionas:" line, exit 2
    message = str(caught.value)
    assert message.startswith(f"error in search file {str(path)!r}:\n")
    assert PACKAGE not in message
    assert "importlib" not in message
    assert "<frozen" not in message
    return message


def frames(text: str) -> list[str]:
    """The files of a formatted traceback's frames, in order."""
    return [line.split('"')[1] for line in text.splitlines() if line.startswith('  File "')]


# -- errors while a search file runs --------------------------------------------------


def test_a_syntax_error_shows_the_line_and_the_caret(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.py", "space = {}\ndef evaluate(p)\n    return 1\n")
    lines = load_error(path).splitlines()
    # No "Traceback" line: nothing ran, there are no frames to show.
    assert lines[1] == f'  File "{path}", line 2'
    assert lines[2].strip() == "def evaluate(p)"
    assert set(lines[3].strip()) == {"^"}
    assert lines[-1].startswith("SyntaxError: ")
    assert len(lines) == 5


def test_an_import_error_in_a_module_the_file_imports_shows_both_files(tmp_path: Path) -> None:
    write(tmp_path, "helper_for_the_search.py", "x = 1\nimport no_such_module_for_aionas_tests\n")
    path = write(tmp_path, "imports.py", "import sys\nimport helper_for_the_search\n")
    sys.path.insert(0, str(tmp_path))
    try:
        message = load_error(path)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("helper_for_the_search", None)
    assert message.splitlines()[1] == "Traceback (most recent call last):"
    assert frames(message) == [str(path), str(tmp_path / "helper_for_the_search.py")]
    assert "import no_such_module_for_aionas_tests" in message
    assert message.endswith(
        "ModuleNotFoundError: No module named 'no_such_module_for_aionas_tests'"
    )


def test_a_syntax_error_in_an_imported_module_shows_where(tmp_path: Path) -> None:
    write(tmp_path, "broken_helper_for_the_search.py", "def f(:\n    pass\n")
    path = write(tmp_path, "imports_broken.py", "import broken_helper_for_the_search\n")
    sys.path.insert(0, str(tmp_path))
    try:
        message = load_error(path)
    finally:
        sys.path.remove(str(tmp_path))
    assert frames(message) == [str(path), str(tmp_path / "broken_helper_for_the_search.py")]
    assert message.splitlines()[-1].startswith("SyntaxError: ")


def test_a_name_error_keeps_every_frame_of_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "names.py",
        """
        def build():
            return undefined_name

        space = build()
        """,
    )
    message = load_error(path)
    assert frames(message) == [str(path), str(path)]
    assert "    space = build()" in message
    assert "    return undefined_name" in message
    assert message.endswith("NameError: name 'undefined_name' is not defined")


def test_an_error_raised_inside_aionas_for_the_file_shows_the_users_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bad_space.py", "from aionas.space import Int\nspace = {'x': Int(5, 1)}\n"
    )
    message = load_error(path)
    assert frames(message) == [str(path)]
    assert "space = {'x': Int(5, 1)}" in message
    assert message.splitlines()[-1].startswith("ValueError: ")


def test_a_failed_search_file_is_forgotten_and_can_be_fixed(tmp_path: Path) -> None:
    path = write(tmp_path, "fixable.py", "raise RuntimeError('not yet')\n")
    assert load_error(path).endswith("RuntimeError: not yet")
    assert "aionas_search_fixable" not in sys.modules
    path.write_text(GOOD)
    try:
        space, evaluate, mode = load_search(path)
    finally:
        sys.modules.pop("aionas_search_fixable", None)
    assert evaluate({"x": 0}) == 1
    assert mode is None  # the file sets none
    assert len(space) == 1


def aionas_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AIONAS, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_command_prints_the_users_frames_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path, "oops.py", "import aionas\nspace = {}\nprint(undefined_name)\n")
    result = aionas_command("run", "oops.py", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("aionas: error in search file 'oops.py':\n")
    assert frames(result.stderr) == [str(tmp_path / "oops.py")]
    assert result.stderr.rstrip().endswith("NameError: name 'undefined_name' is not defined")
    assert "cli" not in result.stderr
    assert not (tmp_path / "aionas.db").exists()


def test_history_of_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    result = aionas_command("history", "adir/", cwd=tmp_path)
    assert result.returncode == 2
    assert "is a directory, not a journal file" in result.stderr
    assert "does not exist" not in result.stderr
    assert "Traceback" not in result.stderr


# -- an evaluate that forgets to return ------------------------------------------------

FORGOT = (
    "evaluate() in 'search.py' returned None and reported no final metric: return the final "
    "metric (a number) or call aionas.report_final_result()"
)


async def run_models(*models: aionas.Model) -> Recorder:
    async with SequentialExecutionEngine(continue_on_failure=True) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*models)
        await engine.wait_models()
    return recorder


@pytest.mark.anyio
async def test_an_evaluate_that_forgets_return_fails_its_model() -> None:
    def evaluate(params: dict[str, Any]) -> None:
        aionas.report_intermediate_result(params["x"])  # trains, then forgets `return`

    async def evaluate_async(params: dict[str, Any]) -> None:
        aionas.report_intermediate_result(params["x"])

    sync = model_factory(evaluate, Path("search.py"))({"x": 1})
    awaited = model_factory(evaluate_async, Path("search.py"))({"x": 2})
    recorder = await run_models(sync, awaited)
    for model in (sync, awaited):
        assert model.status is ModelStatus.Failed
        assert isinstance(model.error, TypeError)
        assert str(model.error) == FORGOT
        assert recorder.end(model).reason == "failed"
        assert model.metric is None
    assert sync.metrics.intermediates == [1]


@pytest.mark.anyio
async def test_an_evaluate_that_returns_or_reports_its_metric_is_trained() -> None:
    def returns(params: dict[str, Any]) -> float:
        return float(params["x"]) * 2.0

    def reports(params: dict[str, Any]) -> None:
        aionas.report_final_result(params["x"] * 3.0)

    async def returns_async(params: dict[str, Any]) -> float:
        return float(params["x"]) * 4.0

    models = [model_factory(f, Path("search.py"))({"x": 1}) for f in (returns, reports)]
    models.append(model_factory(returns_async, Path("search.py"))({"x": 1}))
    await run_models(*models)
    assert [(m.status, m.metric) for m in models] == [
        (ModelStatus.Trained, 2.0),
        (ModelStatus.Trained, 3.0),
        (ModelStatus.Trained, 4.0),
    ]
    assert isinstance(models[0], aionas.FunctionModel)
    assert repr(models[0]).startswith("FunctionModel(test_an_evaluate_that_returns_or_reports")


@pytest.mark.anyio
async def test_an_evaluate_that_returns_text_fails_as_any_model_does() -> None:
    def evaluate(params: dict[str, Any]) -> str:
        return "0.9"

    model = model_factory(evaluate, Path("search.py"))({})
    await run_models(model)
    assert model.status is ModelStatus.Failed
    assert isinstance(model.error, ValueError)
    assert "metric '0.9' of type str is not a number" in str(model.error)


@pytest.mark.anyio
async def test_an_evaluate_that_stops_when_asked_ends_interrupted_not_failed() -> None:
    started = threading.Event()

    def evaluate(params: dict[str, Any]) -> None:
        started.set()
        try:
            while True:
                threading.Event().wait(0.005)
                aionas.check_cancelled()
        except aionas.ModelInterrupted:
            return None  # stops quietly, with no metric

    model = model_factory(evaluate, Path("search.py"))({})
    async with SequentialExecutionEngine(continue_on_failure=True) as engine:
        await engine.submit_models(model)
        assert await anyio.to_thread.run_sync(started.wait, 10)
        engine.cancel_model(model)
        await engine.wait_models()
    assert model.status is ModelStatus.Interrupted
    assert model.error is None


def test_outside_an_engine_evaluate_is_called_as_is() -> None:
    def evaluate(params: dict[str, Any]) -> None:
        return None

    model = model_factory(evaluate, Path("search.py"))({"x": 1})
    assert isinstance(model, aionas.FunctionModel)
    assert model.fn({"x": 1}) is None


# -- a failed model's traceback --------------------------------------------------------


def user_code(params: dict[str, Any]) -> None:
    aionas.report_intermediate_result(0.5)
    raise ValueError("the user's bug")


def reports_text(params: dict[str, Any]) -> None:
    aionas.report_final_result("high")


def chained(params: dict[str, Any]) -> None:
    table: dict[str, int] = {}
    try:
        table["missing"]
    except KeyError as error:
        raise RuntimeError("while looking it up") from error


def grouped(params: dict[str, Any]) -> None:
    errors = []
    for text in ("one", "two"):
        try:
            raise ValueError(text)
        except ValueError as error:
            errors.append(error)
    raise ExceptionGroup("both", errors)


@pytest.mark.anyio
async def test_a_failed_models_traceback_starts_at_the_users_code() -> None:
    model = aionas.FunctionModel(user_code, {})
    await run_models(model)
    assert model.error is not None
    text = error_traceback(model.error)
    assert frames(text) == [__file__]
    assert text.startswith("Traceback (most recent call last):\n")
    assert '    raise ValueError("the user\'s bug")' in text
    assert text.endswith("ValueError: the user's bug\n")
    full = "".join(traceback.format_exception(model.error))
    assert PACKAGE in frames(full)[0]  # what was there before: the executor's frame first


@pytest.mark.anyio
async def test_aionas_frames_after_the_users_stay() -> None:
    model = aionas.FunctionModel(reports_text, {})
    await run_models(model)
    assert model.error is not None
    text = error_traceback(model.error)
    found = frames(text)
    assert found[0] == __file__
    assert len(found) > 1
    assert all(f.startswith(PACKAGE) for f in found[1:])  # report_final_result and below
    assert "is not a number" in text.splitlines()[-1]


@pytest.mark.anyio
async def test_an_error_entirely_inside_aionas_keeps_every_frame() -> None:
    model = aionas.Model({})  # execute() not implemented: aionas raises, no user frame
    await run_models(model)
    assert isinstance(model.error, NotImplementedError)
    text = error_traceback(model.error)
    found = frames(text)
    assert len(found) >= 2
    assert all(f.startswith(PACKAGE) for f in found)


@pytest.mark.anyio
async def test_chained_and_grouped_errors_are_trimmed_each() -> None:
    cause, group = aionas.FunctionModel(chained, {}), aionas.FunctionModel(grouped, {})
    await run_models(cause, group)
    assert cause.error is not None
    assert group.error is not None
    text = error_traceback(cause.error)
    assert "KeyError: 'missing'" in text
    assert "The above exception was the direct cause" in text
    assert all(f == __file__ for f in frames(text)), text
    grouped_text = error_traceback(group.error)
    assert "ValueError: one" in grouped_text
    assert "ValueError: two" in grouped_text
    assert all(f == __file__ for f in frames(grouped_text)), grouped_text


def test_unprintable_and_restored_errors() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_traceback(Unprintable()).endswith("Unprintable: <exception str() failed>\n")
    restored = aionas.RestoredError("ValueError", "bad", "Traceback ...\nValueError: bad\n")
    assert error_traceback(restored) == "Traceback ...\nValueError: bad\n"


@pytest.mark.anyio
async def test_the_journal_keeps_the_traceback_from_the_users_frame(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), continue_on_failure=True
    ) as engine:
        await engine.submit_models(aionas.FunctionModel(user_code, {}))
        await engine.wait_models()
    (model,), _ = aionas.load_history(db)
    assert isinstance(model.error, aionas.RestoredError)
    assert frames(model.error.traceback) == [__file__]
    assert model.error.traceback.endswith("ValueError: the user's bug\n")
