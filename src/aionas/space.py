"""Search spaces: the parameters a strategy may choose, and how to draw them.

>>> import random
>>> from aionas.space import Choice, Float, Int, SearchSpace
>>> space = SearchSpace(
...     depth=Int(1, 3), act=Choice(["relu", "tanh"]), lr=Float(1e-4, 1e-1, log=True)
... )
>>> params = space.sample(random.Random(0))
>>> space.contains(params)
True
>>> SearchSpace(depth=Int(1, 3), act=Choice(["relu", "tanh"])).size
6

Everything random takes a ``random.Random``, so a seed reproduces a search.
"""

from __future__ import annotations

import itertools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Choice", "Float", "Int", "Param", "SearchSpace"]


class Param(ABC):
    """One parameter's domain."""

    @abstractmethod
    def sample(self, rng: random.Random) -> Any:
        """A value drawn from the domain."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is in the domain."""

    @property
    @abstractmethod
    def size(self) -> int | None:
        """How many values there are; None for a continuous domain."""

    def values(self) -> list[Any]:
        """Every value, in order (finite domains only).

        :raises ValueError: for a continuous domain.
        """
        raise ValueError(f"{self!r} is continuous: it has no finite list of values")

    def mutate(self, value: Any, rng: random.Random) -> Any:
        """A different value near ``value`` where the domain allows; by default a fresh draw."""
        if self.size == 1:
            return value
        for _ in range(16):
            new = self.sample(rng)
            if new != value:
                return new
        return value


class Choice(Param):
    """One of a fixed list of values (any JSON-friendly values)."""

    def __init__(self, values: Iterable[Any]) -> None:
        self.choices = tuple(values)
        if not self.choices:
            raise ValueError("Choice needs at least one value")

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.choices)

    def contains(self, value: Any) -> bool:
        return any(value == choice and type(value) is type(choice) for choice in self.choices)

    @property
    def size(self) -> int:
        return len(self.choices)

    def values(self) -> list[Any]:
        return list(self.choices)

    def __repr__(self) -> str:
        return f"Choice({list(self.choices)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choice) and self.choices == other.choices

    __hash__ = None  # type: ignore[assignment]


class Int(Param):
    """An integer from ``low`` to ``high`` inclusive, every ``step``."""

    def __init__(self, low: int, high: int, step: int = 1) -> None:
        for name, value in (("low", low), ("high", high), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Int {name} must be an int, got {value!r}")
        if step < 1:
            raise ValueError(f"Int step must be >= 1, got {step}")
        if high < low:
            raise ValueError(f"Int needs low <= high, got low={low}, high={high}")
        self.low, self.high, self.step = low, high, step

    def sample(self, rng: random.Random) -> int:
        return self.low + self.step * rng.randrange(self.size)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def mutate(self, value: Any, rng: random.Random) -> Any:
        """One step up or down (a fresh draw if ``value`` is not in the domain)."""
        if not self.contains(value) or self.size == 1:
            return self.sample(rng) if not self.contains(value) else value
        moves = [v for v in (value - self.step, value + self.step) if self.contains(v)]
        return rng.choice(moves)

    def __repr__(self) -> str:
        step = f", step={self.step}" if self.step != 1 else ""
        return f"Int({self.low}, {self.high}{step})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Int) and (self.low, self.high, self.step) == (
            other.low,
            other.high,
            other.step,
        )

    __hash__ = None  # type: ignore[assignment]


class Float(Param):
    """A float between ``low`` and ``high``; ``log=True`` draws evenly in log scale."""

    def __init__(self, low: float, high: float, *, log: bool = False) -> None:
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            raise ValueError(f"Float needs finite low < high, got low={low}, high={high}")
        if log and low <= 0:
            raise ValueError(f"Float(log=True) needs low > 0, got low={low}")
        self.low, self.high, self.log = float(low), float(high), log

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    @property
    def size(self) -> None:
        return None

    def mutate(self, value: Any, rng: random.Random) -> Any:
        """A Gaussian step of a tenth of the range (in log scale if ``log``), kept inside."""
        if not self.contains(value):
            return self.sample(rng)
        if self.log:
            low, high, x = math.log(self.low), math.log(self.high), math.log(value)
            moved = min(high, max(low, rng.gauss(x, (high - low) / 10)))
            return math.exp(moved)
        return min(self.high, max(self.low, rng.gauss(value, (self.high - self.low) / 10)))

    def __repr__(self) -> str:
        log = ", log=True" if self.log else ""
        return f"Float({self.low}, {self.high}{log})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Float) and (self.low, self.high, self.log) == (
            other.low,
            other.high,
            other.log,
        )

    __hash__ = None  # type: ignore[assignment]


class SearchSpace(Mapping[str, Param]):
    """Names mapped to parameter domains: ``SearchSpace(lr=Float(...), depth=Int(1, 4))``.

    A plain dict of :class:`Param` works wherever a space is taken
    (:meth:`of` turns it into one).
    """

    def __init__(self, params: Mapping[str, Param] | None = None, /, **more: Param) -> None:
        merged = {**(params or {}), **more}
        if not merged:
            raise ValueError("a search space needs at least one parameter")
        for name, param in merged.items():
            if not isinstance(param, Param):
                raise TypeError(f"parameter {name!r} must be a Choice, Int or Float, got {param!r}")
        self._params = merged

    @classmethod
    def of(cls, space: SearchSpace | Mapping[str, Param]) -> SearchSpace:
        """``space`` itself, or a space made from a mapping of names to domains."""
        return space if isinstance(space, SearchSpace) else cls(space)

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={param!r}" for name, param in self._params.items())
        return f"SearchSpace({inner})"

    @property
    def size(self) -> int | None:
        """How many points the space holds; None if any parameter is continuous."""
        total = 1
        for param in self._params.values():
            size = param.size
            if size is None:
                return None
            total *= size
        return total

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """A point drawn from every parameter's domain."""
        return {name: param.sample(rng) for name, param in self._params.items()}

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every point, in a fixed order (the last parameter varies fastest).

        :raises ValueError: if a parameter is continuous, naming it.
        """
        continuous = [name for name, param in self._params.items() if param.size is None]
        if continuous:
            raise ValueError(
                f"grid() needs a finite space, but {continuous} are continuous; "
                "use Choice or Int for them, or a random or evolutionary search"
            )
        names = list(self._params)
        for values in itertools.product(*(self._params[n].values() for n in names)):
            yield dict(zip(names, values, strict=True))

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` has exactly this space's names, each value in its domain."""
        return set(params) == set(self._params) and all(
            param.contains(params[name]) for name, param in self._params.items()
        )

    def mutate(
        self, params: Mapping[str, Any], rng: random.Random, prob: float = 0.5
    ) -> dict[str, Any]:
        """A copy of ``params`` with each parameter changed with probability ``prob``.

        At least one parameter changes (where the space allows any change).
        """
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be between 0 and 1, got {prob}")
        names = list(self._params)
        changed = {name for name in names if rng.random() < prob}
        if not changed:
            changed = {rng.choice(names)}
        result = dict(params)
        for name in names:
            if name in changed or name not in result:
                result[name] = self._params[name].mutate(result.get(name), rng)
        return result
