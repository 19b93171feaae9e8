"""The lifecycle of a model, with NNI's vocabulary."""

from __future__ import annotations

from enum import Enum

__all__ = ["ModelStatus"]


class ModelStatus(str, Enum):
    """Where a model is in its life.

    The values are NNI's, so code and stored records written for NNI read the same.
    A model handed to an engine is ``Frozen``; it is ``Training`` while its ``execute()``
    runs, and ends ``Trained``, ``Failed`` or ``Interrupted``. A model that is set to
    ``Retrying`` may be submitted again.
    """

    #: Created, parameters not fixed yet.
    Initialized = "initialized"
    #: Being changed by a search strategy; not ready to run.
    Mutating = "mutating"
    #: Parameters fixed: ready to be submitted (and how a queued model stays until it starts).
    Frozen = "frozen"
    #: Its ``execute()`` is running.
    Training = "training"
    #: ``execute()`` returned normally (with or without a final metric).
    Trained = "trained"
    #: ``execute()`` raised; the exception is in ``model.error``.
    Failed = "failed"
    #: Cancelled, timed out, out of budget, or ended by a shutdown.
    Interrupted = "interrupted"
    #: The model cannot be run at all (set by strategies, never by the engine).
    Invalid = "invalid"
    #: A completed model marked to run again; it may be submitted once more.
    Retrying = "retrying"

    def frozen(self) -> bool:
        """True for every status whose parameters are fixed (all but Initialized and Mutating)."""
        return self not in (ModelStatus.Initialized, ModelStatus.Mutating)

    def completed(self) -> bool:
        """True once the model has ended: Trained, Failed, Interrupted or Invalid."""
        return self in _COMPLETED

    def __str__(self) -> str:
        return self.value


_COMPLETED = frozenset(
    {ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Interrupted, ModelStatus.Invalid}
)
