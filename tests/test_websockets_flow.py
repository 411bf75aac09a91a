"""drbfast.websockets write flow control: ``send()`` against a server that stops
reading waits without polling (woken by the transport's pause/resume_writing through
drbfast.transport.WriteFlow) and resumes when the server reads again; ``ping()``
leaves nothing behind per call. Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from drbfast import websockets as drop_in
from drbfast.emulator import Emulator

from .conftest import TIMEOUT

MESSAGE = b"x" * (1 << 20)


class _Sink(WSListener):  # type: ignore[misc]
    """Server side: counts what arrives; can stop and restart reading its socket."""

    def __init__(self, server: SlowServer) -> None:
        self.server = server

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.server.transport = transport
        if self.server.paused:
            transport.underlying_transport.pause_reading()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        self.server.received += frame.payload_size


class SlowServer:
    def __init__(self) -> None:
        self.paused = True
        self.received = 0
        self.transport: WSTransport | None = None

    def resume(self) -> None:
        self.paused = False
        assert self.transport is not None
        self.transport.underlying_transport.resume_reading()


@pytest.fixture
async def slow_server() -> AsyncIterator[tuple[SlowServer, str]]:
    srv = SlowServer()
    server = await ws_create_server(lambda request: _Sink(srv), "127.0.0.1", 0, max_frame_size=1 << 24)
    try:
        yield srv, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


class _SelectCounter:
    """Counts the event loop's iterations (calls to its selector) while installed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.selector = getattr(loop, "_selector", None)
        if self.selector is None:
            pytest.skip("the event loop exposes no selector to count iterations with")
        self.count = 0
        self._select = self.selector.select

    def __enter__(self) -> _SelectCounter:
        def select(timeout: Any = None) -> Any:
            self.count += 1
            return self._select(timeout)

        self.selector.select = select
        return self

    def __exit__(self, *exc: object) -> None:
        del self.selector.select  # back to the class's method


async def test_send_waits_for_a_server_that_stops_reading_without_spinning(
        slow_server: tuple[SlowServer, str]) -> None:
    srv, url = slow_server
    async with drop_in.connect(url, ping_interval=None, max_size=None) as ws:
        # Fill the kernel's buffers and the transport's: a send finally has to wait.
        blocked: asyncio.Task[None] | None = None
        sent = 0
        for _ in range(256):  # at most 256 MB; loopback buffers take a few MB
            task = asyncio.ensure_future(ws.send(MESSAGE))
            await asyncio.sleep(0.05)
            if not task.done():
                blocked = task
                break
            task.result()
            sent += 1
        assert blocked is not None, "the writes never filled the buffers"
        # Waiting costs nothing: the loop sleeps (no 1 ms poll), the CPU stays idle.
        loop = asyncio.get_running_loop()
        cpu = time.process_time()
        with _SelectCounter(loop) as iterations:
            await asyncio.sleep(0.5)
        cpu = time.process_time() - cpu
        assert not blocked.done()
        assert iterations.count < 50, f"{iterations.count} loop iterations in 0.5 s while waiting to write"
        assert cpu < 0.1, f"{cpu:.3f} s of CPU in 0.5 s while waiting to write"
        flow = ws._flow
        assert flow is not None and flow.paused and flow.pauses >= 1 and flow.wakeups == 0
        # The server reads again: the send completes and the rest gets through.
        srv.resume()
        await asyncio.wait_for(blocked, TIMEOUT)
        assert flow.wakeups == 1 and not flow.paused
        await asyncio.wait_for(ws.send(MESSAGE), TIMEOUT)
        total = (sent + 2) * len(MESSAGE)
        deadline = time.monotonic() + TIMEOUT
        while srv.received < total and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert srv.received == total


async def test_a_send_waiting_on_a_full_buffer_raises_when_the_connection_drops(
        slow_server: tuple[SlowServer, str]) -> None:
    srv, url = slow_server
    ws = await asyncio.wait_for(drop_in.connect(url, ping_interval=None, max_size=None, close_timeout=0.5), TIMEOUT)
    blocked: asyncio.Task[None] | None = None
    for _ in range(256):
        task = asyncio.ensure_future(ws.send(MESSAGE))
        await asyncio.sleep(0.05)
        if not task.done():
            blocked = task
            break
        task.result()
    assert blocked is not None
    assert srv.transport is not None
    srv.transport.disconnect(graceful=False)
    with pytest.raises(drop_in.ConnectionClosed):
        await asyncio.wait_for(blocked, TIMEOUT)
    await asyncio.wait_for(ws.close(), TIMEOUT)


async def test_ten_thousand_pings_leave_no_callbacks_behind(emulator: Emulator) -> None:
    async with drop_in.connect(emulator.url, ping_interval=None) as ws:
        closed = ws._closed
        before = len(closed._callbacks or [])  # type: ignore[attr-defined]
        gc.collect()
        objects = len(gc.get_objects())
        for _ in range(10_000):
            pong = await ws.ping()
            await asyncio.wait_for(pong, TIMEOUT)
        after = len(closed._callbacks or [])  # type: ignore[attr-defined]
        assert after - before <= 1, f"{after - before} callbacks left on the close future by 10,000 pings"
        gc.collect()
        grown = len(gc.get_objects()) - objects
        assert grown < 2_000, f"{grown} objects more after 10,000 pings"
        assert ws.latency > 0
