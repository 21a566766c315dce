"""Run coroutines from plain (sync) pytest tests: pytest-asyncio is not installed.

Each ``run`` gets a fresh event loop (``asyncio.run``), so create async clients inside the
coroutine you run and close them there: connection pools belong to one loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` to completion on a new loop; fail (TimeoutError) instead of hanging."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def collect(items: AsyncIterable[T]) -> list[T]:
    """All items of an async iterable, in order."""
    return [item async for item in items]
