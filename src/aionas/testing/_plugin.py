"""The pytest side: the ``aionas_engine`` marker and fixtures.

``aionas_engine`` itself is a sync fixture that picks, for the test at hand, the
async fixture of the plugin that runs it: ``_aionas_engine_anyio`` (run by
anyio's plugin, on the test's backend) or ``_aionas_engine_asyncio_<loop scope>``
(run by pytest-asyncio in the test's own loop; see ``_asyncio``). The engine's
options travel to it in the test item's stash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import pytest

from .. import SequentialExecutionEngine
from ._engine import EngineFactory, running_engine

__all__ = ["aionas_engine", "aionas_engine_factory", "pytest_configure"]

MARKER = "aionas_engine"
#: The name under which the pytest-asyncio part is registered, when it is.
ASYNCIO_PLUGIN = "aionas.testing.asyncio"
_OPTIONS = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker; load the pytest-asyncio fixtures if that plugin is active."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options of the aionas_engine and aionas_engine_factory "
        "fixtures: SequentialExecutionEngine's keyword arguments, and exit_timeout",
    )
    plugins = config.pluginmanager
    asyncio_active = any(
        getattr(plugin, "__name__", None) == "pytest_asyncio.plugin"
        for plugin in plugins.get_plugins()
    )
    if asyncio_active and not plugins.has_plugin(ASYNCIO_PLUGIN):
        from . import _asyncio  # imports pytest_asyncio, so only now

        plugins.register(_asyncio, ASYNCIO_PLUGIN)


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The options of every ``aionas_engine`` marker on the test; the closest wins."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"{request.node.nodeid}: @pytest.mark.{MARKER} takes keyword options only "
                f"(the engine's keyword arguments and exit_timeout), got {marker.args!r}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def aionas_engine_factory(request: pytest.FixtureRequest) -> EngineFactory:
    """A callable taking engine options, returning an async context manager that gives
    a running engine: :func:`aionas.testing.running_engine`, with the options of the
    test's ``aionas_engine`` markers as defaults. A plain fixture: it works whatever
    runs the async test (pytest-asyncio, anyio, pytest-trio, ...)."""
    defaults = _marker_options(request)

    def factory(**options: Any) -> Any:
        return running_engine(**{**defaults, **options})

    return cast(EngineFactory, factory)


@pytest.fixture
def aionas_engine(request: pytest.FixtureRequest) -> SequentialExecutionEngine:
    """A running :class:`~aionas.SequentialExecutionEngine`, left after the test.

    Entered before the test in the test's event loop, left after it as
    :func:`aionas.testing.running_engine` leaves it: every submitted model ends and
    every event is delivered (bounded by ``exit_timeout``), and an error the engine
    raises on exit (a failed model under ``continue_on_failure=False``, say) is
    reported as an error in the test's teardown. Options come from
    ``@pytest.mark.aionas_engine(**options)`` markers (closest wins) and from an
    indirect parameter (a dict of options, which wins over the markers).

    Needs an async test run by pytest-asyncio (``@pytest.mark.asyncio``) or by
    anyio's plugin (``@pytest.mark.anyio``); elsewhere use ``aionas_engine_factory``.
    """
    options = _marker_options(request)
    if hasattr(request, "param"):
        param = request.param
        if not isinstance(param, Mapping):
            pytest.fail(
                f"{request.node.nodeid}: an indirect parameter of aionas_engine must be a "
                f"dict of engine options, got {param!r}",
                pytrace=False,
            )
        options.update(param)
    request.node.stash[_OPTIONS] = options
    engine = request.getfixturevalue(_engine_fixture_name(request))
    return cast(SequentialExecutionEngine, engine)


def _engine_fixture_name(request: pytest.FixtureRequest) -> str:
    if "anyio_backend" in request.fixturenames:
        return "_aionas_engine_anyio"
    asyncio_part = request.config.pluginmanager.get_plugin(ASYNCIO_PLUGIN)
    if asyncio_part is not None:
        fixture_for = cast(Callable[[pytest.Item], "str | None"], asyncio_part.fixture_for)
        name = fixture_for(request.node)
        if name is not None:
            return name
    pytest.fail(
        f"{request.node.nodeid}: the aionas_engine fixture needs an async test run by "
        "pytest-asyncio (@pytest.mark.asyncio) or by anyio's plugin (@pytest.mark.anyio); "
        "elsewhere, use `async with aionas_engine_factory() as engine:` in the test",
        pytrace=False,
    )


@pytest.fixture
async def _aionas_engine_anyio(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SequentialExecutionEngine]:
    """``aionas_engine`` for anyio's plugin, which enters and leaves it in one task."""
    async with running_engine(**request.node.stash.get(_OPTIONS, {})) as engine:
        yield engine
