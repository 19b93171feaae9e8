"""The Optuna bridge: a study's samplers and pruners choosing the models an engine runs.

Optuna is imported only when an :class:`OptunaSearch` is made or run, never by
``import aionas.strategy``; it comes with ``pip install 'aionas[optuna]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import (
    BudgetExhaustedError,
    EngineClosedError,
    ExecutionEngine,
    IntermediateMetricEvent,
    ModelEventType,
    ModelStatus,
)
from ..space import Choice, Float, Int, Param, SearchSpace
from ._base import MAX_DRAWS, Mode, ModelFactory, Strategy, point_key

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaSearch"]


def _distribution(param: Param) -> Any:
    import optuna

    if isinstance(param, Choice):
        return optuna.distributions.CategoricalDistribution(list(param.choices))
    if isinstance(param, Int):
        return optuna.distributions.IntDistribution(param.low, param.high, step=param.step)
    if isinstance(param, Float):
        return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log)
    raise TypeError(f"no Optuna distribution for {param!r}")


class OptunaSearch(Strategy):
    """Optuna's samplers and pruners driving the engine (needs ``pip install 'aionas[optuna]'``).

    Each model is one trial (``study.ask``). Its intermediate metrics are reported
    to the trial as they arrive; when ``trial.should_prune()`` says so the model is
    cancelled (it ends ``Interrupted``) and the trial told as pruned. A trained
    model is told with its final metric, anything else as failed. The mode follows
    the study's direction.

    On a resumed engine, an empty study first learns the restored trained models
    (``study.add_trial``), and a suggestion that was already evaluated is told its
    known result instead of being run again. Once ``MAX_DRAWS`` suggestions in a
    row were all known, the space counts as exhausted and ``run`` returns.
    """

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace | Mapping[str, Param],
        model_factory: ModelFactory,
    ) -> None:
        import optuna

        direction = study.direction
        mode: Mode = "max" if direction == optuna.study.StudyDirection.MAXIMIZE else "min"
        super().__init__(space, model_factory, mode=mode)
        self.study = study
        self.distributions = {name: _distribution(p) for name, p in self.space.items()}
        self.pruned = 0

    async def run(self, engine: ExecutionEngine) -> None:
        import optuna
        from optuna.trial import TrialState

        self._learn_history(engine)
        known = {point_key(m.params): m for m in self.models}
        if not self.study.trials:
            for model in self.models:
                if self._score(model) is not None:
                    self.study.add_trial(
                        optuna.trial.create_trial(
                            params=dict(model.params),
                            distributions=self.distributions,
                            value=float(model.metric),
                        )
                    )
        current: dict[str, Any] = {}
        repeats = 0

        def report(event: IntermediateMetricEvent) -> None:
            if event.model is not current.get("model"):
                return
            trial, model = current["trial"], current["model"]
            value = model.metrics.intermediates[current["step"]]
            trial.report(value, current["step"])
            current["step"] += 1
            if trial.should_prune() and not current["pruned"]:
                current["pruned"] = True
                engine.cancel_model(model)

        engine.register_model_event_callback(ModelEventType.IntermediateMetric, report)
        try:
            while engine.budget_available():
                trial = self.study.ask(self.distributions)
                seen = known.get(point_key(trial.params))
                if seen is not None:  # evaluated before: tell, do not run again
                    score = self._score(seen)
                    if score is None:
                        self.study.tell(trial, state=TrialState.FAIL)
                    else:
                        self.study.tell(trial, score)
                    repeats += 1
                    if repeats >= MAX_DRAWS:
                        return
                    continue
                repeats = 0
                model = self.model_factory(dict(trial.params))
                current.update(trial=trial, model=model, step=0, pruned=False)
                try:
                    await engine.submit_models(model)
                except (BudgetExhaustedError, EngineClosedError):
                    self.study.tell(trial, state=TrialState.FAIL)
                    return
                self._seen.add(point_key(trial.params))
                known[point_key(trial.params)] = model
                self.models.append(model)
                await engine.wait_models(model)
                if current["pruned"] and model.status is ModelStatus.Interrupted:
                    self.pruned += 1
                    self.study.tell(trial, state=TrialState.PRUNED)
                elif self._score(model) is not None:  # (it may end before a prune lands)
                    self.study.tell(trial, float(model.metric))
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
        finally:
            engine.unregister_model_event_callback(ModelEventType.IntermediateMetric, report)
