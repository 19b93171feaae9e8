from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aionas stress test (tests/test_stress.py)")
    group.addoption(
        "--stress-models",
        type=int,
        default=None,
        metavar="N",
        help="models per stress test (default: a few seconds' worth); timeouts grow with it",
    )
    group.addoption(
        "--stress-seed",
        default=None,
        metavar="TEXT",
        help="seed of the stress test's random programs (default: a fixed one)",
    )


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every engine test runs once on asyncio and once on trio."""
    return str(request.param)
