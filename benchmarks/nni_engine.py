"""NNI 3.0's real ``SequentialExecutionEngine``: its cost per no-op model, a baseline of figure 1.

Runs under an interpreter that has ``nni==3.0`` installed, never aionas's own venv
(NNI's pins would downgrade aionas's dependencies); see ``benchmarks/README.md``::

    .venv-nni/bin/python benchmarks/nni_engine.py --count 20000 --repeat 5

It needs nothing from aionas: ``benchmarks/run.py`` runs it as a subprocess (once
per repetition, between aionas's own measurements) and reads the one JSON object it
prints on its last line of output. NNI runs with ``NNI_FRAMEWORK=none``, as the
engine needs no deep-learning framework.

Each model is frozen and reports one final metric (``nni.report_final_result(0.0)``);
the engine runs it synchronously inside ``submit_models``, applies the metric and
status through its default callback, and calls one no-op ``training_end`` callback
(as in aionas's figure). Four ways are timed, each on fresh models and a fresh engine:

- ``batch``: a subclass of ``ExecutableModelSpace`` whose ``execute()`` reports the
  metric (the same work as aionas's benchmark model), submitted in batches of 1,000,
  then ``wait_models()``; seconds from the first submit to the return of the wait.
- ``evaluator_batch``: the same with NNI's usual shape of a model, a
  ``RawFormatModelSpace`` with a ``FunctionalEvaluator`` whose function reports it.
- ``one_at_a_time``: the first kind, ``submit_models(m)`` then ``wait_models(m)``
  for each model in turn, as a strategy that waits for each result does.
- ``noop_batch``: as ``batch``, with models whose ``execute()`` does nothing at all
  (no metric): the work of aionas's plain no-op model and of the ``inline`` baseline.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("NNI_FRAMEWORK", "none")

import nni  # type: ignore[import-not-found]
from nni.mutable import MutableDict  # type: ignore[import-not-found]
from nni.nas.evaluator import FunctionalEvaluator  # type: ignore[import-not-found]
from nni.nas.execution import SequentialExecutionEngine  # type: ignore[import-not-found]
from nni.nas.execution.event import ModelEventType  # type: ignore[import-not-found]
from nni.nas.space import (  # type: ignore[import-not-found]
    ExecutableModelSpace,
    ModelStatus,
    RawFormatModelSpace,
)

BATCH = 1_000


class FinalModel(ExecutableModelSpace):  # type: ignore[misc]
    """A frozen model whose training reports one final metric and returns."""

    def __init__(self) -> None:
        super().__init__(ModelStatus.Frozen)

    def execute(self) -> None:
        nni.report_final_result(0.0)


class NoopModel(FinalModel):
    """A frozen model whose training does nothing."""

    def execute(self) -> None:
        pass


def _report_final(model: Any) -> None:
    nni.report_final_result(0.0)


_EVALUATOR = FunctionalEvaluator(_report_final)
_SPACE = MutableDict({})


def evaluator_model() -> Any:
    """NNI's usual shape: a raw-format model space plus a functional evaluator, frozen."""
    model = RawFormatModelSpace(_SPACE, _EVALUATOR)
    model.status = ModelStatus.Frozen  # frozen as is, without a sample (as one-shot does)
    return model


def _ignore(event: Any) -> None:
    pass


def _engine() -> Any:
    engine = SequentialExecutionEngine()
    engine.register_model_event_callback(ModelEventType.TrainingEnd, _ignore)
    return engine


def _check(models: list[Any]) -> None:
    for model in models:
        expected = None if isinstance(model, NoopModel) else 0.0
        if model.status is not ModelStatus.Trained or model.metric != expected:
            raise RuntimeError(f"a model did not train as expected: {model!r}")


def batch_per_model(make: Callable[[], Any], count: int) -> float:
    """Seconds per model: submitted in batches of 1,000, then awaited."""
    models = [make() for _ in range(count)]
    engine = _engine()
    gc.collect()
    start = time.perf_counter()
    for index in range(0, count, BATCH):
        engine.submit_models(*models[index : index + BATCH])
    engine.wait_models()
    elapsed = time.perf_counter() - start
    _check(models)
    return elapsed / count


def one_at_a_time_per_model(count: int) -> float:
    """Seconds per model: each submitted, then waited for, before the next."""
    models = [FinalModel() for _ in range(count)]
    engine = _engine()
    gc.collect()
    start = time.perf_counter()
    for model in models:
        engine.submit_models(model)
        engine.wait_models(model)
    elapsed = time.perf_counter() - start
    _check(models)
    return elapsed / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="models per measurement")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions (medians reported)")
    args = parser.parse_args(argv)
    ways = ("batch", "evaluator_batch", "one_at_a_time", "noop_batch")
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(args.repeat):
        seconds["batch"].append(batch_per_model(FinalModel, args.count))
        seconds["evaluator_batch"].append(batch_per_model(evaluator_model, args.count))
        seconds["one_at_a_time"].append(one_at_a_time_per_model(args.count))
        seconds["noop_batch"].append(batch_per_model(NoopModel, args.count))
    from importlib.metadata import version

    result = {
        "nni": version("nni"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "nni_framework": os.environ["NNI_FRAMEWORK"],
        "count": args.count,
        "repeat": args.repeat,
        "batch_size": BATCH,
        "us_per_model": {k: [s * 1e6 for s in v] for k, v in seconds.items()},
        "median_us_per_model": {k: statistics.median(v) * 1e6 for k, v in seconds.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
