"""Tracebacks that start at the user's code, not at aionas's machinery.

:func:`user_traceback` is the text kept for a failed model: the frames of the
executor and of ``Model.execute`` that lead to the user's code are dropped. It
keeps every frame when all of them are aionas's (an aionas bug stays
debuggable), and every frame after the first of the user's, aionas's included
(a call into ``aionas.report_*`` that raises shows where).

:func:`search_file_traceback` is the text shown for an error while a search file
runs: only the user's frames, none of aionas or of the import machinery.

Both apply to every exception of a chain (``raise ... from``, an error while
handling another, the members of an exception group), and never raise.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Iterator
from traceback import FrameSummary, StackSummary, TracebackException

__all__ = ["is_aionas_frame", "is_import_frame", "search_file_traceback", "user_traceback"]


def _folders(path: str) -> tuple[str, ...]:
    """``path``'s folder, as imported and with links resolved, each ending in a separator."""
    folder = os.path.dirname(os.path.abspath(path))
    return tuple({os.path.join(folder, ""), os.path.join(os.path.realpath(folder), "")})


_AIONAS = _folders(__file__)  # this module is at the package's top
_IMPORTLIB = _folders(importlib.__file__ or "")


def is_aionas_frame(frame: FrameSummary) -> bool:
    """Whether ``frame`` runs code of the aionas package (any of its modules)."""
    return frame.filename.startswith(_AIONAS)


def is_import_frame(frame: FrameSummary) -> bool:
    """Whether ``frame`` runs the import machinery (``importlib``, a ``<frozen ...>`` module)."""
    return frame.filename.startswith(("<frozen ", *_IMPORTLIB))


def user_traceback(error: BaseException) -> str:
    """``error`` formatted as ``traceback.format_exception`` does, from the user's first frame.

    Of each exception in the chain, the leading frames inside aionas are left
    out, unless every frame is aionas's. Falls back to the full traceback if
    trimming fails, and to ``""`` if formatting fails altogether.
    """
    return _format(error, _leading(is_aionas_frame))


def search_file_traceback(error: BaseException) -> str:
    """``error`` formatted with only the user's frames: none of aionas, none of importlib.

    A :class:`SyntaxError` keeps its ``File "...", line N``, the source line and
    the caret, as Python prints them. Falls back as :func:`user_traceback` does.
    """
    return _format(error, _anywhere(lambda f: is_aionas_frame(f) or is_import_frame(f)))


_Trim = Callable[[StackSummary], list[FrameSummary]]


def _leading(internal: Callable[[FrameSummary], bool]) -> _Trim:
    """Drop the frames before the first one that is not ``internal`` (all if there is none)."""

    def trim(stack: StackSummary) -> list[FrameSummary]:
        for index, frame in enumerate(stack):
            if not internal(frame):
                return list(stack[index:])
        return list(stack)

    return trim


def _anywhere(internal: Callable[[FrameSummary], bool]) -> _Trim:
    """Drop every frame that is ``internal``."""

    def trim(stack: StackSummary) -> list[FrameSummary]:
        return [frame for frame in stack if not internal(frame)]

    return trim


def _format(error: BaseException, trim: _Trim) -> str:
    try:
        formatted = TracebackException.from_exception(error)
        for each in _chain(formatted):
            each.stack = StackSummary.from_list(trim(each.stack))
        return "".join(formatted.format())
    except Exception:  # a user exception may break formatting; never lose the error for it
        try:
            return "".join(traceback.format_exception(error))
        except Exception:
            return ""


def _chain(root: TracebackException) -> Iterator[TracebackException]:
    """``root`` and every exception it refers to: causes, contexts, group members."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, *(current.exceptions or ())]
        pending.extend(each for each in linked if each is not None)
