"""aionas: an async execution runtime for neural-architecture and hyperparameter search.

Models run one at a time off the event loop (where is an executor's business: a
worker thread by default), behind an async queue, and what they report is
published to async subscribers; the event loop stays free throughout.
Built on anyio, so it runs under asyncio and trio.
"""

from __future__ import annotations

from ._dispatch import EventCallback, Subscription
from ._scheduler import CancelResult
from .engine import EngineStatistics, ExecutionEngine
from .events import (
    EndReason,
    FinalMetricEvent,
    IntermediateMetricEvent,
    ModelEvent,
    ModelEventType,
    TrainingEndEvent,
    TrainingStartEvent,
)
from .exceptions import (
    AionasError,
    BudgetExhaustedError,
    EngineClosedError,
    JournalError,
    ModelInterrupted,
    ModelStateError,
    SlowSubscriberError,
    WorkerDiedError,
)
from .executors import Executor, LoopExecutor, ProcessExecutor, RunHandle, ThreadExecutor
from .journal import (
    History,
    HistorySummary,
    Journal,
    ModelRecord,
    RestoredError,
    SqliteJournal,
    list_experiments,
    load_history,
)
from .metrics import Metrics, canonical_metric
from .model import FunctionModel, Model
from .sequential import SequentialExecutionEngine
from .status import ModelStatus
from .trial import (
    check_cancelled,
    current_model,
    get_next_parameter,
    report_final_result,
    report_intermediate_result,
)

__version__ = "0.1.0"

__all__ = [
    "AionasError",
    "BudgetExhaustedError",
    "CancelResult",
    "EndReason",
    "EngineClosedError",
    "EngineStatistics",
    "EventCallback",
    "ExecutionEngine",
    "Executor",
    "FinalMetricEvent",
    "FunctionModel",
    "History",
    "HistorySummary",
    "IntermediateMetricEvent",
    "Journal",
    "JournalError",
    "LoopExecutor",
    "Metrics",
    "Model",
    "ModelEvent",
    "ModelEventType",
    "ModelInterrupted",
    "ModelRecord",
    "ModelStateError",
    "ModelStatus",
    "ProcessExecutor",
    "RestoredError",
    "RunHandle",
    "SequentialExecutionEngine",
    "SlowSubscriberError",
    "SqliteJournal",
    "Subscription",
    "ThreadExecutor",
    "TrainingEndEvent",
    "TrainingStartEvent",
    "WorkerDiedError",
    "canonical_metric",
    "check_cancelled",
    "current_model",
    "get_next_parameter",
    "list_experiments",
    "load_history",
    "report_final_result",
    "report_intermediate_result",
]
