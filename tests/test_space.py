from __future__ import annotations

import math
import random

import pytest

from aionas.space import Choice, Float, Int, SearchSpace

SPACE = SearchSpace(
    depth=Int(1, 4),
    width=Choice([32, 64, 128]),
    lr=Float(1e-4, 1e-1, log=True),
    dropout=Float(0.0, 0.5),
)


def test_sample_is_in_the_space_and_seeded() -> None:
    first = [SPACE.sample(random.Random(7)) for _ in range(3)]
    again = [SPACE.sample(random.Random(7)) for _ in range(3)]
    assert first == again
    rng = random.Random(1)
    for _ in range(200):
        assert SPACE.contains(SPACE.sample(rng))


def test_log_float_spreads_over_decades() -> None:
    rng = random.Random(0)
    values = [Float(1e-4, 1e-1, log=True).sample(rng) for _ in range(2000)]
    below = sum(v < 1e-3 for v in values) / len(values)
    assert 0.25 < below < 0.42  # a third of the log range


def test_grid_and_size() -> None:
    finite = SearchSpace(a=Int(0, 4, step=2), b=Choice(["x", "y"]))
    points = list(finite.grid())
    assert finite.size == len(points) == 6
    assert points[0] == {"a": 0, "b": "x"}
    assert points[-1] == {"a": 4, "b": "y"}
    assert len({tuple(p.items()) for p in points}) == 6
    assert SPACE.size is None
    with pytest.raises(ValueError, match=r"\['lr', 'dropout'\] are continuous"):
        list(SPACE.grid())


def test_contains() -> None:
    assert SPACE.contains({"depth": 2, "width": 64, "lr": 0.01, "dropout": 0.1})
    assert not SPACE.contains({"depth": 5, "width": 64, "lr": 0.01, "dropout": 0.1})
    assert not SPACE.contains({"depth": 2, "width": 65, "lr": 0.01, "dropout": 0.1})
    assert not SPACE.contains({"depth": 2, "width": 64, "lr": 0.01})
    assert not SPACE.contains({"depth": True, "width": 64, "lr": 0.01, "dropout": 0.1})
    assert not Int(0, 10, step=5).contains(3)


def test_mutate_changes_something_and_stays_inside() -> None:
    rng = random.Random(3)
    params = SPACE.sample(rng)
    for prob in (0.0, 0.3, 1.0):
        for _ in range(100):
            child = SPACE.mutate(params, rng, prob)
            assert SPACE.contains(child)
            assert child != params
    with pytest.raises(ValueError, match="prob"):
        SPACE.mutate(params, rng, 1.5)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Choice([]), ValueError),
        (lambda: Int(3, 1), ValueError),
        (lambda: Int(0, 3, step=0), ValueError),
        (lambda: Int(0.5, 3), TypeError),  # type: ignore[arg-type]
        (lambda: Float(1, 1), ValueError),
        (lambda: Float(0, 1, log=True), ValueError),
        (lambda: Float(0, math.inf), ValueError),
        (lambda: SearchSpace(), ValueError),
        (lambda: SearchSpace(x=[1, 2]), TypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_domains(make: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        make()  # type: ignore[operator]


def test_a_dict_is_a_space() -> None:
    space = SearchSpace.of({"x": Int(0, 2)})
    assert isinstance(space, SearchSpace)
    assert SearchSpace.of(space) is space
    assert dict(space) == {"x": Int(0, 2)}
