from __future__ import annotations

from aionas import ModelStatus

VALUES = {
    "Initialized": "initialized",
    "Mutating": "mutating",
    "Frozen": "frozen",
    "Training": "training",
    "Trained": "trained",
    "Failed": "failed",
    "Interrupted": "interrupted",
    "Invalid": "invalid",
    "Retrying": "retrying",
}


def test_members_and_values_are_nnis() -> None:
    assert {m.name: m.value for m in ModelStatus} == VALUES
    assert ModelStatus("trained") is ModelStatus.Trained
    assert ModelStatus.Trained == "trained"


def test_frozen() -> None:
    not_frozen = {ModelStatus.Initialized, ModelStatus.Mutating}
    for status in ModelStatus:
        assert status.frozen() is (status not in not_frozen)


def test_completed() -> None:
    done = {ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Interrupted, ModelStatus.Invalid}
    for status in ModelStatus:
        assert status.completed() is (status in done)
