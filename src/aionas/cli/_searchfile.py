"""Loading a search file: the ``space``, ``evaluate`` and ``mode`` that ``aionas run FILE`` uses.

A search file is plain Python. It defines ``space`` (a ``SearchSpace`` or a dict of
``Choice``/``Int``/``Float``), ``evaluate(params)`` and optionally ``mode``
(``"max"`` by default). ``aionas demo`` runs the bundled digits example the same way.

An error while the file runs (a syntax error, a failed import, anything) becomes a
:class:`SearchFileError` that shows the user's own frames only. The models
:func:`model_factory` builds fail, rather than end ``Trained`` without a metric,
when ``evaluate`` forgets to return one.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._tracebacks import search_file_traceback
from ..model import FunctionModel, Model
from ..space import Choice, SearchSpace
from ..trial import current_model
from ._common import UsageError

__all__ = ["SearchFileError", "demo_file", "load_search", "model_factory"]


class SearchFileError(UsageError):
    """An exception raised while a search file ran, shown from the user's own frames.

    The message is ``error in search file 'PATH':`` and, on the lines after it,
    the traceback without aionas's or the import machinery's frames, ending with
    the exception (for a :class:`SyntaxError`, the file, line, source and caret).
    ``main`` prints it after ``aionas:`` and exits with code 2.
    """


#: This package's folder: ``src/aionas/cli`` in a source tree, ``aionas/cli`` when installed.
_HERE = Path(__file__).resolve().parent


def _module_name(path: Path) -> str:
    """The name to import the file under: its stem, as ``python FILE`` would see it,
    so that ``spawn`` child processes and pickle can import it again; a private
    name if the stem is not an identifier or names another module."""
    stem = path.stem
    if stem.isidentifier() and stem not in sys.modules:
        try:
            found = importlib.util.find_spec(stem)  # its folder is first on sys.path
        except (ImportError, ValueError):
            found = None
        origin = None if found is None else found.origin
        if origin not in (None, "built-in", "frozen") and Path(str(origin)).resolve() == (
            path.resolve()
        ):
            return stem
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    return f"aionas_search_{safe}"


def load_search(path: Path) -> tuple[SearchSpace, Callable[[dict[str, Any]], Any], str | None]:
    """The ``space``, ``evaluate`` and ``mode`` (None if it sets none) a search file defines.

    The file runs as a script would: its folder first on ``sys.path`` (so it
    imports the modules beside it), as a module named after it where that name is
    free (so worker processes and pickle can import it again).

    :raises SearchFileError: if running the file raises (any :class:`Exception`).
    :raises UsageError: if there is no such file, or it lacks ``space`` or
        ``evaluate``, or its ``space`` or ``mode`` is not a valid one.
    """
    if not path.is_file():
        raise UsageError(f"no search file at {str(path)!r}")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that pickling, dataclasses and the like work
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[spec.name]
        shown = search_file_traceback(error).rstrip("\n")
        raise SearchFileError(f"error in search file {str(path)!r}:\n{shown}") from None
    space, evaluate = getattr(module, "space", None), getattr(module, "evaluate", None)
    if space is None or not callable(evaluate):
        raise UsageError(
            f"{str(path)!r} must define `space` (a SearchSpace or a dict of Choice/Int/Float) "
            "and `evaluate(params)`"
        )
    try:
        search_space = SearchSpace.of(space)
        for key, param in search_space.items():
            if not isinstance(key, str):
                raise TypeError(f"parameter names must be strings, got {key!r}")
            if isinstance(param, Choice):
                json.dumps(param.values(), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"{str(path)!r}: bad `space`: {error} (parameter names are strings, and choices "
            "plain JSON values: numbers, strings, booleans, None)"
        ) from None
    mode = getattr(module, "mode", None)
    if mode is not None and mode not in ("max", "min"):
        raise UsageError(f"{str(path)!r}: `mode` must be 'max' or 'min', got {mode!r}")
    return search_space, evaluate, mode


def _check(result: Any, problem: str) -> Any:
    if result is None:
        model = current_model()
        if model is not None and model.metrics.final is None:
            raise TypeError(problem)
    return result


class _Checked:
    """``evaluate(params)``, failing a forgotten ``return``.

    A module-level class, not a closure, so that it pickles (by reference to
    ``evaluate``): a :class:`~aionas.ProcessExecutor` sends it to its worker.
    """

    def __init__(self, evaluate: Callable[[dict[str, Any]], Any], problem: str) -> None:
        functools.update_wrapper(self, evaluate)
        self.evaluate = evaluate
        self.problem = problem

    def __call__(self, params: dict[str, Any]) -> Any:
        return _check(self.evaluate(params), self.problem)


def model_factory(
    evaluate: Callable[[dict[str, Any]], Any], path: Path
) -> Callable[[dict[str, Any]], Model]:
    """``params -> Model``: a :class:`~aionas.FunctionModel` running ``evaluate(params)``.

    As with any ``FunctionModel``, a returned number is the final metric unless
    ``evaluate`` reported one itself. Unlike a bare one, a model whose ``evaluate``
    returns None without reporting a final metric (a forgotten ``return``) ends
    ``Failed`` with a :class:`TypeError` saying so, instead of ``Trained`` with no
    metric (one that was asked to stop meanwhile still ends ``Interrupted``: the
    engine does not count an error raised after a cancel as a failure).
    ``evaluate`` may be an ``async def`` function. The models pickle when
    ``evaluate`` does (a sync one defined at the top of an importable file).
    """
    problem = (
        f"evaluate() in {str(path)!r} returned None and reported no final metric: return "
        "the final metric (a number) or call aionas.report_final_result()"
    )
    checked: Callable[[dict[str, Any]], Any]
    if inspect.iscoroutinefunction(evaluate):

        @functools.wraps(evaluate)
        async def checked_async(params: dict[str, Any]) -> Any:
            return _check(await evaluate(params), problem)

        checked = checked_async
    else:
        checked = _Checked(evaluate, problem)
    return functools.partial(FunctionModel, checked)


def demo_file() -> Path:
    """The digits search file: the repository's example, or the copy bundled in the wheel."""
    source_tree = _HERE.parents[2] / "examples" / "digits_mlp.py"
    if source_tree.is_file():
        return source_tree
    bundled = _HERE.parent / "_demo" / "digits_mlp.py"
    if bundled.is_file():
        return bundled
    raise UsageError("the demo search file is missing from this installation")
