"""What every part of the command shares: its usage error, optional extras, how values print.

A :class:`UsageError` is a problem with what the user asked for; ``main`` prints it as
one line and exits with code 2. :func:`require` imports an optional dependency or
says which extra installs it.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "DEFAULT_JOURNAL",
    "UsageError",
    "emit",
    "format_params",
    "format_value",
    "make_console",
    "require",
    "stdout_closed",
    "stdout_failed",
    "stdout_gone",
    "write_failed",
]

#: The journal every command uses unless told otherwise.
DEFAULT_JOURNAL = "aionas.db"
#: The width of tables written to a pipe or a file: wide enough never to cut a row.
PIPE_WIDTH = 10_000


class UsageError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


def require(module: str, extra: str = "all") -> Any:
    """Import ``module``, or raise a :class:`UsageError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"this needs {module.split('.')[0]!r}: pip install 'aionas[{extra}]'"
        ) from None


def format_value(value: Any) -> str:
    """A metric or parameter as the command prints it (``-`` for None, 4 digits for floats)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return str(value) if math.isnan(value) or math.isinf(value) else f"{value:.4g}"
    return str(value)


_closed = False
_write_failed = False


def stdout_gone() -> None:
    """The reader of stdout has gone (``| head``): send what is left to ``/dev/null``.

    So that nothing more raises :class:`BrokenPipeError`, not even the flush at
    the interpreter's exit. The command goes on (a search runs to its end).
    """
    global _closed
    _closed = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a test's captured stdout)
        pass


def stdout_closed() -> bool:
    """Whether :func:`stdout_gone` was called: nothing printed to stdout is read now."""
    return _closed


def emit(console: Console, text: str) -> None:
    """Print one plain line (no markup), unless stdout's reader has gone.

    On a terminal it goes through ``console`` (above a live panel); otherwise it
    is written and flushed at once, so that ``| tail -f`` and ``| head`` see it.
    """
    if _closed:
        return
    try:
        if console.is_terminal:
            console.print(text, highlight=False, markup=False)
        else:
            print(text, flush=True)
    except BrokenPipeError:
        stdout_gone()
    except OSError as error:  # a full disk, /dev/full: say it once, go on
        stdout_failed(error)


def stdout_failed(error: OSError) -> None:
    """Writing stdout failed (not by its reader leaving): say so once, write no more."""
    global _write_failed
    _write_failed = True
    stdout_gone()
    print(f"aionas: stdout cannot be written ({error.strerror}); going on", file=sys.stderr)


def write_failed() -> bool:
    """Whether writing to stdout failed other than by its reader leaving."""
    return _write_failed


def make_console() -> Console:
    """The console the command prints through; a closed pipe raises :class:`BrokenPipeError`.

    (rich would exit with code 1 instead.) Written to a pipe or a file, it is wide
    enough never to cut a table's row.
    """
    from rich.console import Console

    class CommandConsole(Console):
        def on_broken_pipe(self) -> None:
            stdout_gone()
            raise BrokenPipeError

        def _write_buffer(self) -> None:
            try:
                super()._write_buffer()
            except OSError:  # not a broken pipe: a full disk; main says so
                stdout_gone()
                raise

    terminal = sys.stdout.isatty()
    return CommandConsole(soft_wrap=not terminal, width=None if terminal else PIPE_WIDTH)


def format_params(params: dict[str, Any]) -> str:
    """A model's parameters on one line: ``name=value, ...``."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
