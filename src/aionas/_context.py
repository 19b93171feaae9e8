"""The per-run binding between trial code and the engine that runs it.

A run's binding lives in a context variable that the engine sets around
``execute()``; it is never process-global, so code in a thread of one model cannot
report into another.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .model import Model

__all__ = ["RunBinding", "current_run"]


class RunBinding(Protocol):
    """What the trial API needs from the engine for one run of one model."""

    @property
    def model(self) -> Model: ...

    def report_intermediate(self, metric: Any) -> None: ...

    def report_final(self, metric: Any) -> None: ...

    def check_cancelled(self) -> None: ...


current_run: ContextVar[RunBinding | None] = ContextVar("aionas_current_run", default=None)
