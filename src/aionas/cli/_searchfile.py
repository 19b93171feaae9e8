"""Loading a search file: the ``space``, ``evaluate`` and ``mode`` that ``aionas run FILE`` uses.

A search file is plain Python. It defines ``space`` (a ``SearchSpace`` or a dict of
``Choice``/``Int``/``Float``), ``evaluate(params)`` and optionally ``mode``
(``"max"`` by default). ``aionas demo`` runs the bundled digits example the same way.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..space import SearchSpace
from ._common import UsageError

__all__ = ["demo_file", "load_search"]

#: This package's folder: ``src/aionas/cli`` in a source tree, ``aionas/cli`` when installed.
_HERE = Path(__file__).resolve().parent


def load_search(path: Path) -> tuple[SearchSpace, Callable[[dict[str, Any]], Any], str]:
    """The ``space``, ``evaluate`` and optional ``mode`` a search file defines."""
    if not path.is_file():
        raise UsageError(f"no search file at {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"aionas_search_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that pickling, dataclasses and the like work
    spec.loader.exec_module(module)
    space, evaluate = getattr(module, "space", None), getattr(module, "evaluate", None)
    if space is None or not callable(evaluate):
        raise UsageError(
            f"{str(path)!r} must define `space` (a SearchSpace or a dict of Choice/Int/Float) "
            "and `evaluate(params)`"
        )
    try:
        search_space = SearchSpace.of(space)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{str(path)!r}: bad `space`: {error}") from None
    return search_space, evaluate, str(getattr(module, "mode", "max"))


def demo_file() -> Path:
    """The digits search file: the repository's example, or the copy bundled in the wheel."""
    source_tree = _HERE.parents[2] / "examples" / "digits_mlp.py"
    if source_tree.is_file():
        return source_tree
    bundled = _HERE.parent / "_demo" / "digits_mlp.py"
    if bundled.is_file():
        return bundled
    raise UsageError("the demo search file is missing from this installation")
