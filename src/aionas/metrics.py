"""Metrics of one model: the intermediate curve and the final value."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Metrics", "canonical_metric"]


def canonical_metric(value: Any) -> float:
    """Return the float that a reported metric stands for, as NNI does.

    An int, a float or a numpy scalar becomes a ``float``. A dict is a metric with
    side values; its ``'default'`` entry is the number that counts.

    :raises ValueError: for a dict without ``'default'``, or for anything that is
        not a number (a string, ``None``, a bool, an array, a tensor).

    >>> canonical_metric(3)
    3.0
    >>> canonical_metric({"default": 0.9, "loss": 0.2})
    0.9
    """
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if isinstance(value, dict):
        if "default" not in value:
            raise ValueError(
                f"a metric dict must have a 'default' key holding the number to optimise; "
                f"got keys {sorted(map(str, value))}"
            )
        return canonical_metric(value["default"])
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    hint = " (call .item() on a tensor or array)" if hasattr(value, "item") else ""
    raise ValueError(
        f"metric {value!r} of type {type(value).__name__} is not a number; report an int, "
        f"a float, a numpy scalar, or a dict with a 'default' number{hint}"
    )


class Metrics:
    """The metrics a model reported: ``intermediates`` in order, and ``final``.

    Strict by default, as in NNI: every value is stored as the float it stands for
    (see :func:`canonical_metric`); events keep the raw value as it was reported.
    With ``strict=False`` values are stored as given, unchecked.

    >>> m = Metrics()
    >>> m.add_intermediate(0.5)
    >>> m.final = {"default": 0.75}
    >>> m.to_dict()
    {'intermediates': [0.5], 'final': 0.75}
    >>> Metrics.from_dict(m.to_dict()) == m
    True
    """

    __slots__ = ("_final", "intermediates", "strict")

    def __init__(
        self,
        intermediates: Iterable[Any] = (),
        final: Any = None,
        *,
        strict: bool = True,
    ) -> None:
        self.strict = strict
        self.intermediates: list[Any] = [self._check(v) for v in intermediates]
        self._final: Any = None if final is None else self._check(final)

    def _check(self, value: Any) -> Any:
        return canonical_metric(value) if self.strict else value

    @property
    def final(self) -> Any:
        """The final metric, or None if none was reported."""
        return self._final

    @final.setter
    def final(self, value: Any) -> None:
        self._final = None if value is None else self._check(value)

    def add_intermediate(self, value: Any) -> None:
        """Append one intermediate metric.

        :raises ValueError: in strict mode, for a value that is not a number.
        """
        self.intermediates.append(self._check(value))

    def clear(self) -> None:
        """Forget every metric (a model that is retried starts afresh)."""
        self.intermediates.clear()
        self._final = None

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict; :meth:`from_dict` reads it back."""
        return {"intermediates": list(self.intermediates), "final": self._final}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Metrics:
        """Rebuild metrics from :meth:`to_dict`'s output.

        :raises ValueError: if ``data`` lacks the ``intermediates`` or ``final`` keys.
        """
        missing = {"intermediates", "final"} - set(data)
        if missing:
            raise ValueError(f"Metrics.from_dict needs the keys {sorted(missing)}; got {data!r}")
        return cls(data["intermediates"], data["final"], strict=strict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metrics):
            return NotImplemented
        return self.intermediates == other.intermediates and self._final == other._final

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Metrics(intermediates={self.intermediates!r}, final={self._final!r})"
