"""Models: a frozen set of parameters plus an ``execute()`` that trains and evaluates."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .events import error_dict, json_safe
from .metrics import Metrics
from .status import ModelStatus

__all__ = ["FunctionModel", "Model"]


class Model:
    """Base class for user models.

    A model holds its ``params`` (a dict), its ``status`` (``Frozen`` at first), its
    ``metrics``, once ``Failed`` its ``error``, and once submitted its ``model_id``.
    Subclasses implement :meth:`execute`, a blocking function that the engine runs
    in a worker thread; an ``async def execute`` is awaited on the event loop instead.

    >>> import aionas
    >>> class Quadratic(aionas.Model):
    ...     def execute(self) -> None:
    ...         x = self.params["x"]
    ...         aionas.report_final_result(-(x - 3) ** 2)
    >>> Quadratic({"x": 1}).status
    <ModelStatus.Frozen: 'frozen'>
    """

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a mapping of names to values, got {type(params).__name__}"
            )
        self.params: dict[str, Any] = dict(params or {})
        self.status: ModelStatus = ModelStatus.Frozen
        self.metrics: Metrics = Metrics()
        self.error: BaseException | None = None
        #: The id the engine gave the model at its first submission (None before).
        self.model_id: int | None = None
        # True while the model is queued or running in some engine.
        self._aionas_busy = False

    @property
    def metric(self) -> Any:
        """The final metric (``metrics.final``), or None if none was reported."""
        return self.metrics.final

    def to_dict(self) -> dict[str, Any]:
        """The model as a JSON-safe plain dict, for a web service or a report.

        ``json.dumps(model.to_dict(), allow_nan=False)`` always works. The keys are
        ``model_id`` (None before its first submission), ``class_name`` (the
        model class's qualified name), ``params``, ``status`` (its string value),
        ``metrics`` (``{"intermediates": [...], "final": ...}``) and ``error``
        (``{"type": "ValueError", "message": "..."}`` for a failed model, else None).

        Values are encoded as by :meth:`ModelEvent.to_dict`: NaN and infinities
        become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, at any
        depth of ``params`` and of dict metrics; numpy scalars become Python
        numbers; an exception becomes its type name and message; anything else
        JSON cannot hold becomes its ``repr()`` (see ``aionas.events.json_safe``).
        It is a snapshot: later changes to the model do not show in it.

        >>> import aionas
        >>> model = aionas.Model({"lr": 0.1})
        >>> model.metrics.add_intermediate(float("inf"))
        >>> model.to_dict()  # doctest: +NORMALIZE_WHITESPACE
        {'model_id': None, 'class_name': 'Model', 'params': {'lr': 0.1}, 'status': 'frozen',
         'metrics': {'intermediates': ['Infinity'], 'final': None}, 'error': None}
        """
        error = self.error
        return {
            "model_id": self.model_id,
            "class_name": type(self).__qualname__,
            "params": json_safe(self.params),
            "status": self.status.value,
            "metrics": {
                "intermediates": json_safe(self.metrics.intermediates),
                "final": json_safe(self.metrics.final),
            },
            "error": None if error is None else error_dict(error),
        }

    def execute(self) -> Any:
        """Train and evaluate the model, reporting through the trial API.

        Runs in a worker thread (or on the event loop if overridden as ``async def``).
        Raise to fail the model; return to end it ``Trained``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement execute(); subclass aionas.Model and "
            "override it, or wrap a function in aionas.FunctionModel"
        )

    def __repr__(self) -> str:
        text = f"{type(self).__name__}(params={self.params!r}, status={self.status.value}"
        if self.metrics.final is not None:
            text += f", metric={self.metrics.final!r}"
        return text + ")"


class FunctionModel(Model):
    """A model whose ``execute()`` calls ``fn(params)``.

    If ``fn`` returns a number and reported no final metric itself, that number
    becomes the final metric. ``fn`` may be an ``async def`` function; it is then
    awaited on the event loop.

    >>> import aionas
    >>> model = aionas.FunctionModel(lambda p: p["x"] * 2, {"x": 21})
    """

    def __init__(
        self,
        fn: Callable[[dict[str, Any]], Any] | Callable[[dict[str, Any]], Awaitable[Any]],
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"FunctionModel needs a callable, got {fn!r}")
        super().__init__(params)
        self.fn = fn
        if inspect.iscoroutinefunction(fn):
            self.execute = self._execute_async  # type: ignore[method-assign,assignment]

    def execute(self) -> None:
        self._finish(self.fn(self.params))

    async def _execute_async(self) -> None:
        result = self.fn(self.params)
        self._finish(await result if inspect.isawaitable(result) else result)

    def _finish(self, result: Any) -> None:
        from .trial import report_final_result

        if result is not None and self.metrics.final is None:
            report_final_result(result)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return super().__repr__().replace("FunctionModel(", f"FunctionModel({name}, ", 1)
