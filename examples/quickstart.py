"""A small hyperparameter search with aionas, in pure Python (seconds to run).

Each model fits a noisy line ``y = 3x - 1`` by mini-batch gradient descent, with a
learning rate and a batch size taken from its parameters. After every epoch it
reports the validation R² as an intermediate metric; the final R² is its metric.
The engine runs the models one at a time in a worker thread, so the event loop
stays free: here it prints each result the moment a model ends.

    python examples/quickstart.py            # on asyncio
    python examples/quickstart.py --trio     # the same on trio
"""

from __future__ import annotations

import itertools
import random
import sys
from typing import Any

import anyio

import aionas

EPOCHS = 8


def make_data(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    points = []
    for _ in range(n):
        x = rng.uniform(-1, 1)
        points.append((x, 3 * x - 1 + rng.gauss(0, 0.3)))
    return points


TRAIN, VALID = make_data(2_000, seed=1), make_data(500, seed=2)


def r2(w: float, b: float, data: list[tuple[float, float]]) -> float:
    mean = sum(y for _, y in data) / len(data)
    residual = sum((y - (w * x + b)) ** 2 for x, y in data)
    total = sum((y - mean) ** 2 for _, y in data)
    return 1 - residual / total


def train(params: dict[str, Any]) -> float:
    """Train one model; this is ordinary blocking code, run in a worker thread."""
    lr, batch = params["lr"], params["batch_size"]
    rng = random.Random(0)
    w = b = 0.0
    score = r2(w, b, VALID)
    for _epoch in range(EPOCHS):
        data = TRAIN[:]
        rng.shuffle(data)
        for start in range(0, len(data), batch):
            chunk = data[start : start + batch]
            grad_w = sum(2 * (w * x + b - y) * x for x, y in chunk) / len(chunk)
            grad_b = sum(2 * (w * x + b - y) for x, y in chunk) / len(chunk)
            w, b = w - lr * grad_w, b - lr * grad_b
        score = r2(w, b, VALID)
        aionas.report_intermediate_result(score)  # one point of the learning curve
    return score  # a FunctionModel reports this as the final metric


def show(event: aionas.TrainingEndEvent) -> None:
    model = event.model
    curve = " ".join(f"{v:.2f}" for v in model.metrics.intermediates)
    metric = "-" if model.metric is None else f"{model.metric:.4f}"
    print(f"{event.status.value:>8}  {model.params}  R²={metric}  curve: {curve}")


async def main() -> None:
    grid = [
        {"lr": lr, "batch_size": batch}
        for lr, batch in itertools.product([0.001, 0.01, 0.1], [16, 64, 256])
    ]
    models = [aionas.FunctionModel(train, params) for params in grid]
    async with aionas.SequentialExecutionEngine(max_model_count=len(grid)) as engine:
        engine.register_model_event_callback(aionas.ModelEventType.TrainingEnd, show)
        await engine.submit_models(*models)
        await engine.wait_models()
    trained = engine.list_models(aionas.ModelStatus.Trained)
    best = max(trained, key=lambda m: m.metric)
    stats = engine.statistics()
    print(
        f"\n{stats.trained}/{stats.submitted} models trained in {stats.total_duration:.2f}s; "
        f"best: {best.params} with R²={best.metric:.4f}"
    )


if __name__ == "__main__":
    anyio.run(main, backend="trio" if "--trio" in sys.argv[1:] else "asyncio")
