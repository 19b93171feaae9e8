"""The trial API: what a model's training code calls, as with ``nni.report_*``.

Inside ``execute()`` (in the worker thread, or in any code running in a copy of its
context) these calls are bound to the model being run. Outside any run (a plain
script, a debugger), they work in a standalone mode: ``get_next_parameter()`` and
``current_model()`` return None, reports are logged at INFO on the ``aionas.trial``
logger, and a single warning says that no engine is running.

>>> import aionas
>>> def train(params):
...     for epoch in range(3):
...         aionas.report_intermediate_result(0.5 + 0.1 * epoch)
...     return 0.7            # a FunctionModel reports this as the final metric
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ._context import current_run
from .metrics import canonical_metric

if TYPE_CHECKING:
    from .model import Model

__all__ = [
    "check_cancelled",
    "current_model",
    "get_next_parameter",
    "report_final_result",
    "report_intermediate_result",
]

_logger = logging.getLogger("aionas.trial")
_warned = False
_warn_lock = threading.Lock()


def _warn_standalone() -> None:
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    _logger.warning(
        "aionas: no engine is running this code (standalone mode): get_next_parameter() "
        "returns None and reports are only logged at INFO on the 'aionas.trial' logger"
    )


def get_next_parameter() -> dict[str, Any] | None:
    """The running model's ``params``; None when no engine is running this code."""
    run = current_run.get()
    if run is None:
        _warn_standalone()
        return None
    return run.model.params


def current_model() -> Model | None:
    """The model being run; None when no engine is running this code."""
    run = current_run.get()
    return None if run is None else run.model


def report_intermediate_result(metric: Any) -> None:
    """Report one intermediate metric (an epoch's accuracy, say) of the running model.

    It returns without waiting for the event loop; it waits only when every
    subscriber's buffer is full (lossless backpressure).

    :raises ValueError: if ``metric`` is not a number or a dict with ``'default'``.
    :raises ModelInterrupted: if the model has been asked to stop.
    """
    run = current_run.get()
    if run is None:
        canonical_metric(metric)
        _warn_standalone()
        _logger.info("intermediate result (standalone): %r", metric)
        return
    run.report_intermediate(metric)


def report_final_result(metric: Any) -> None:
    """Report the final metric of the running model (the number a strategy ranks by).

    :raises ValueError: if ``metric`` is not a number or a dict with ``'default'``.
    :raises ModelInterrupted: if the model has been asked to stop.
    """
    run = current_run.get()
    if run is None:
        canonical_metric(metric)
        _warn_standalone()
        _logger.info("final result (standalone): %r", metric)
        return
    run.report_final(metric)


def check_cancelled() -> None:
    """Raise :class:`~aionas.ModelInterrupted` if the running model has been asked to stop.

    Call it in long loops that report rarely, so cancellation and timeouts take
    effect promptly. A no-op outside an engine.
    """
    run = current_run.get()
    if run is not None:
        run.check_cancelled()
