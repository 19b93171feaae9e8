"""``aionas_engine`` under pytest-asyncio. Imported only when that plugin is active.

pytest-asyncio runs an async generator fixture's setup and teardown as two
different tasks, but an engine must be left in the task that entered it (it
holds a task group). So the fixture starts one *host* task that enters the
engine, waits until the teardown tells it to leave, and leaves; setup and
teardown only talk to it. The host lives in the test's own loop: there is one
fixture per loop scope, and :func:`fixture_for` picks the one matching the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
import pytest_asyncio

from .. import SequentialExecutionEngine
from ._engine import running_engine
from ._plugin import _OPTIONS

__all__ = ["fixture_for"]

LoopScope = Literal["function", "class", "module", "package", "session"]
_LOOP_SCOPES: tuple[LoopScope, ...] = ("function", "class", "module", "package", "session")


def fixture_for(item: pytest.Item) -> str | None:
    """The engine fixture for a pytest-asyncio test (None for any other test)."""
    if not pytest_asyncio.is_async_test(item):
        return None
    marker = item.get_closest_marker("asyncio")
    scope = None if marker is None else marker.kwargs.get("loop_scope", marker.kwargs.get("scope"))
    scope = scope or item.config.getini("asyncio_default_test_loop_scope") or "function"
    return f"_aionas_engine_asyncio_{scope}"


@asynccontextmanager
async def _hosted_engine(options: dict[str, Any]) -> AsyncIterator[SequentialExecutionEngine]:
    """:func:`running_engine`, entered and left by a host task instead of the caller."""
    started: asyncio.Future[SequentialExecutionEngine] = asyncio.get_running_loop().create_future()
    leave = asyncio.Event()

    async def host() -> None:
        async with running_engine(**options) as engine:
            started.set_result(engine)
            await leave.wait()

    task = asyncio.create_task(host(), name="aionas_engine fixture")
    try:
        await asyncio.wait((started, task), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the setup was cancelled: take the engine down with it
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    if not started.done():
        task.result()  # raises why the engine did not start
        raise RuntimeError("the aionas_engine host task ended before the engine started")
    try:
        yield started.result()
    finally:
        leave.set()
        await task  # the engine's exit: raises what it raised


def _engine_fixture(scope: LoopScope) -> Callable[..., Any]:
    @pytest_asyncio.fixture(loop_scope=scope, name=f"_aionas_engine_asyncio_{scope}")
    async def engine_fixture(
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[SequentialExecutionEngine]:
        async with _hosted_engine(request.node.stash.get(_OPTIONS, {})) as engine:
            yield engine

    return engine_fixture


for _scope in _LOOP_SCOPES:
    globals()[f"_aionas_engine_asyncio_{_scope}"] = _engine_fixture(_scope)
