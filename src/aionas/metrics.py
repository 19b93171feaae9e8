"""Metrics of one model: the intermediate curve and the final value.

Also the rules a reported metric follows everywhere, with or without a journal:
:func:`canonical_metric` (the number a metric stands for) and :func:`check_storable`
(that a journal can keep it), so that the same training code behaves the same.
"""

from __future__ import annotations

import json
import math
import numbers
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Metrics", "canonical_metric", "check_storable", "metric_json"]


def canonical_metric(value: Any) -> float:
    """Return the float that a reported metric stands for, as NNI does.

    An int, a float or a numpy scalar becomes a ``float``. A dict is a metric with
    side values; its ``'default'`` entry is the number that counts.

    :raises ValueError: for a dict without ``'default'``, for anything that is
        not a number (a string, ``None``, a bool, an array, a tensor), or for a
        number too large for a float (``10**400``).

    >>> canonical_metric(3)
    3.0
    >>> canonical_metric({"default": 0.9, "loss": 0.2})
    0.9
    """
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _too_large(value) from None
    if isinstance(value, dict):
        if "default" not in value:
            raise ValueError(
                f"a metric dict must have a 'default' key holding the number to optimise; "
                f"got keys {sorted(map(str, value))}"
            )
        return canonical_metric(value["default"])
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise _too_large(value) from None
    hint = " (call .item() on a tensor or array)" if hasattr(value, "item") else ""
    raise ValueError(
        f"metric {_brief(value)} of type {type(value).__name__} is not a number; report an "
        f"int, a float, a numpy scalar, or a dict with a 'default' number{hint}"
    )


def _too_large(value: Any) -> ValueError:
    """The error for a number beyond the float range, without printing all its digits."""
    size = ""
    if isinstance(value, numbers.Integral):
        number = int(value)
        size = f" of about {'-' if number < 0 else ''}10**{int(math.log10(abs(number)))}"
    return ValueError(
        f"metric ({type(value).__name__}){size} is too large for a float (at most about "
        "1.8e308); report a float, such as its logarithm or a rescaled value"
    )


class _Brief(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # too long to print (sys.get_int_max_str_digits())
            return f"<int of about {int(x.bit_length() * math.log10(2))} digits>"


_repr = _Brief()
_repr.maxstring = _repr.maxother = 80


def _brief(value: Any) -> str:
    """A short ``repr`` for an error message, whatever the value's size."""
    return _repr.repr(value)


def _json_number(value: Any) -> int | float:
    """JSON's fallback: numbers it does not know (numpy scalars, fractions) as int or float."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{type(value).__name__} {_brief(value)} is not a JSON value")


# NaN and infinities are kept (as NaN, Infinity, -Infinity), as Python's json does.
_encoder = json.JSONEncoder(default=_json_number)


def metric_json(value: Any) -> str:
    """The JSON text a journal stores for a metric (or any value it keeps).

    Numbers JSON does not know become numbers first: every ``numbers.Integral``
    (``numpy.int64``) an ``int``, every other ``numbers.Real`` (``numpy.float32``)
    a ``float``; ``numpy.bool_`` is not a number. NaN and infinities are kept.

    :raises TypeError: for a value JSON cannot hold even then (an ``object()``).
    :raises ValueError: for a circular container, or an int too long to print.
    :raises OverflowError: for a number beyond the float range that is not an int.

    >>> import numpy as np
    >>> metric_json({"default": np.float32(0.5), "epochs": np.int64(3)})
    '{"default": 0.5, "epochs": 3}'
    """
    if type(value) is float:
        if math.isfinite(value):
            return repr(value)
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if type(value) is int:
        return str(value)
    return _encoder.encode(value)


#: Types found to be ``numbers.Real``: checked once, then known (an ABC check is slow).
_NUMBER_TYPES: set[type] = {bool}


def check_storable(metric: Any) -> None:
    """Check that a journal can store ``metric``, with or without a journal.

    Plain numbers return at once. Everything else must be JSON once numbers are
    converted as :func:`metric_json` does (NaN and infinities are allowed). The
    engine calls this on every report, so a metric that is accepted can always be
    stored, and the same training code behaves the same with and without a journal.

    :raises TypeError: naming the metric and what to report instead.

    >>> check_storable({"default": 0.5, "loss": float("nan")})
    >>> check_storable({"default": 0.5, "model": object()})
    Traceback (most recent call last):
    ...
    TypeError: metric {'default': 0.5, 'model': <object object at ...>} cannot be stored ...
    """
    kind = type(metric)
    if kind is float or kind is int or kind in _NUMBER_TYPES:
        return
    if isinstance(metric, numbers.Real):  # numpy scalars, fractions: stored as numbers
        _NUMBER_TYPES.add(kind)
        return
    try:
        metric_json(metric)
    except (TypeError, ValueError, ArithmeticError, RecursionError) as error:
        raise TypeError(
            f"metric {_brief(metric)} cannot be stored as JSON ({error}); report numbers, "
            "strings, booleans and None, in dicts with string keys or in lists (call .item() "
            "on a tensor or numpy value, .tolist() on an array)"
        ) from None


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
