"""Shared fixtures: the embedded emulator on 127.0.0.1, and a guard that fails a test
if the event loop's exception handler fired (an exception nobody awaited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drbfast.emulator import Emulator, EmulatorConfig

#: One bound for every await in the suite.
TIMEOUT = 10.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """An emulator on a free port that accepts heartbeats down to 0.1 s."""
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.05)) as emu:
        yield emu


@pytest.fixture(autouse=True)
async def loop_exceptions() -> AsyncIterator[list[dict[str, Any]]]:
    """Fail the test if asyncio's exception handler was called during it."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen
    loop.set_exception_handler(previous)
    assert not seen, f"the event loop's exception handler fired: {seen}"
