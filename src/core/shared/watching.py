"""Watching a record by polling: each look is its own short read, so nothing is held open between looks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

Record = TypeVar("Record")


async def watch(read: Callable[[], Awaitable[Record]], finished: Callable[[Record], bool], *, interval: float,
                timeout: float) -> AsyncIterator[Record]:
    """Yields the record now and on every change until `finished(record)` or `timeout` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Record | None = None
    while True:
        record = await read()
        if record != last:
            yield record
            last = record
        if finished(record) or loop.time() >= deadline:
            return
        await asyncio.sleep(interval)
