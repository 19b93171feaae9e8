"""Search the architecture of a small neural network on handwritten digits.

The data is scikit-learn's bundled 8x8 digits (1,797 images, no download). Each
model is a multi-layer perceptron whose depth, widths, activation, learning rate
and weight decay come from the search space; it trains for ``EPOCHS`` epochs and
reports the validation accuracy after each one, so the curves show up live and a
pruning strategy can stop a bad one early. Training is deterministic: on a given
machine the same params give the same curve every time, so a seed gives the same
search and the same leaderboard on every fresh run.

Each model trains with one BLAS thread: these networks are too small for more to
pay off. On a 2-core machine a second thread doubled the CPU time and saved no
time at all, and it competes for the cores with everything else running there.

    aionas demo                                         # 100 models, by regularized evolution
    aionas run examples/digits_mlp.py --max-models 24   # 24 models, by random search
    python examples/digits_mlp.py                       # 12 models by random search, in code

Needs ``pip install 'aionas[all]'`` (scikit-learn). A PyTorch version of the same
model is in ``digits_mlp_torch.py``.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import aionas
from aionas.space import Choice, Float, Int, SearchSpace

EPOCHS = 15

space = SearchSpace(
    depth=Int(1, 3),
    width=Choice([32, 64, 128]),
    activation=Choice(["relu", "tanh"]),
    lr=Float(3e-4, 3e-2, log=True),
    weight_decay=Float(1e-6, 1e-2, log=True),
)


@cache
def data() -> tuple[Any, Any, Any, Any]:
    """Train and validation splits, scaled to [0, 1]; the same for every model."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data / 16.0
    return tuple(train_test_split(x, digits.target, test_size=0.25, random_state=0))  # type: ignore[return-value]


def evaluate(params: dict[str, Any]) -> float:
    """Train one network and return its best validation accuracy."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    x_train, x_valid, y_train, y_valid = data()
    model = MLPClassifier(
        hidden_layer_sizes=(params["width"],) * params["depth"],
        activation=params["activation"],
        learning_rate_init=params["lr"],
        alpha=params["weight_decay"],
        batch_size=128,
        random_state=0,  # the same initial weights and batch order on every run
    )
    classes = sorted(set(y_train))
    best = 0.0
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(EPOCHS):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.partial_fit(x_train, y_train, classes=classes)  # one epoch
            accuracy = float(model.score(x_valid, y_valid))
            aionas.report_intermediate_result(accuracy)  # also raises if the model is cancelled
            best = max(best, accuracy)
    return best


async def main() -> None:
    from aionas.strategy import RandomSearch

    search = RandomSearch(space, lambda params: aionas.FunctionModel(evaluate, params), seed=0)
    async with aionas.SequentialExecutionEngine(max_model_count=12) as engine:
        await search.run(engine)
    best = search.best()
    assert best is not None
    print(f"best validation accuracy {best.metric:.3f} with {best.params}")


if __name__ == "__main__":
    import anyio

    anyio.run(main)
