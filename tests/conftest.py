"""Shared fixtures: the embedded emulator on 127.0.0.1, and a guard that fails a test
if the event loop's exception handler fired (an exception nobody awaited)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drbfast.emulator import Emulator, EmulatorConfig

#: One bound for every await in the suite.
TIMEOUT = 10.0


async def wait_until(predicate: Any, timeout: float = TIMEOUT, poll: float = 0.005) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(poll)


def book_gap_frame(channel: str) -> bytes:
    """A book ``change`` whose prev_change_id follows nothing the emulator sent: a gap."""
    instrument = channel.split(".")[1]
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": {
        "type": "change", "timestamp": 1, "prev_change_id": 1, "change_id": 2, "instrument_name": instrument,
        "bids": [], "asks": []}}}).encode()


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
