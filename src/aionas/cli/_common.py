"""What every part of the command shares: its usage error, optional extras, how values print.

A :class:`UsageError` is a problem with what the user asked for; ``main`` prints it as
one line and exits with code 2. :func:`require` imports an optional dependency or
says which extra installs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DEFAULT_JOURNAL", "UsageError", "format_params", "format_value", "require"]

#: The journal every command uses unless told otherwise.
DEFAULT_JOURNAL = "aionas.db"


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
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def format_params(params: dict[str, Any]) -> str:
    """A model's parameters on one line: ``name=value, ...``."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
