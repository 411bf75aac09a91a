"""FastListener under a flood: test_requests are answered ahead of the consumer's
backlog, and the backlog's overflow policies (pause, drop) bound memory and count.

A picows server on 127.0.0.1 sends numbered notifications with a test_request every
100, as fast as its socket takes them; the client's hook is deliberately slow.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_connect, ws_create_server

from drbfast import FastListener

TIMEOUT = 20.0
TEST_REQUEST = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'


def notification(i: int) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "book.X.raw", "data": {"n": i, "pad": "x" * 200}}},
        separators=(",", ":"),
    ).encode()


class FloodServer(WSListener):  # type: ignore[misc]
    """Sends ``count`` notifications, a test_request after every ``every``; records the
    order in which public/test answers arrive relative to what it sent."""

    def __init__(self, count: int, every: int) -> None:
        self.count = count
        self.every = every
        self.answers: list[tuple[int, bytes]] = []  # (notifications sent so far, payload)
        self.sent = 0
        self.test_requests = 0
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        for i in range(self.count):
            transport.send(WSMsgType.TEXT, notification(i))
            self.sent += 1
            if (i + 1) % self.every == 0:
                transport.send(WSMsgType.TEXT, TEST_REQUEST)
                self.test_requests += 1

    def on_ws_frame(self, transport: WSTransport, frame) -> None:  # type: ignore[no-untyped-def]
        if frame.msg_type == WSMsgType.TEXT:
            self.answers.append((self.sent, frame.get_payload_as_bytes()))
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()


async def run_flood(listener_kwargs: dict, count: int, every: int, hook_cost_s: float):
    servers: list[FloodServer] = []

    def factory(request):  # type: ignore[no-untyped-def]
        srv = FloodServer(count, every)
        servers.append(srv)
        return srv

    server = await ws_create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    delivered: list[int] = []
    answered_at_delivery: list[int] = []
    made: list[FastListener] = []

    def hook(payload: bytes, binary: bool) -> None:
        delivered.append(json.loads(payload)["params"]["data"]["n"])
        answered_at_delivery.append(made[0].stats.replies_sent)
        if hook_cost_s:
            end = time.perf_counter() + hook_cost_s
            while time.perf_counter() < end:
                pass

    def make() -> FastListener:
        made.append(FastListener(hook, **listener_kwargs))
        return made[0]

    transport, listener = await asyncio.wait_for(
        ws_connect(make, f"ws://127.0.0.1:{port}/"), TIMEOUT
    )
    deadline = time.monotonic() + TIMEOUT
    expected_tr = count // every
    while time.monotonic() < deadline:
        s = listener.stats
        if s.test_requests == expected_tr and len(delivered) + s.dropped == count:
            break
        await asyncio.sleep(0.01)
    stats = listener.stats
    listener.close()
    await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)
    server.close()
    return servers[0], listener, stats, delivered, answered_at_delivery


async def test_test_requests_are_answered_ahead_of_the_backlog() -> None:
    count, every = 3000, 100
    srv, listener, stats, delivered, answered = await run_flood({"slice_size": 16}, count, every, 50e-6)
    assert stats.test_requests == count // every
    assert stats.replies_sent == count // every
    assert delivered == list(range(count)), "every notification reaches the hook once, in order"
    # The consumer was slower than the socket, so a backlog formed...
    assert stats.backlog_peak > 0
    # ...and test_requests did not wait for it: when the hook saw notification k, more
    # test_requests had already been answered than the k // every that precede it.
    ahead = [a - (n // every) for n, a in zip(delivered, answered)]
    assert max(ahead) > 0
    # Every answer is a distinct public/test.
    ids = {json.loads(p)["id"] for _, p in srv.answers}
    assert len(ids) == len(srv.answers) == count // every
    assert stats.backlog == 0


async def test_pause_policy_bounds_the_backlog_without_loss() -> None:
    count, every, limit = 4000, 100, 200
    srv, listener, stats, delivered, _ = await run_flood(
        {"slice_size": 16, "backlog_limit": limit, "overflow": "pause"}, count, every, 20e-6
    )
    assert delivered == list(range(count)), "pause loses nothing"
    assert stats.dropped == 0
    assert stats.backlog_pauses >= 1
    # Frames already in picows' read buffer when the limit is hit are still queued, so
    # the bound is the limit plus one socket read; reading stopped well short of it all.
    assert stats.backlog_peak < count // 2
    assert stats.replies_sent == count // every


async def test_drop_policy_counts_what_it_drops_and_keeps_answering() -> None:
    count, every, limit = 4000, 100, 100
    srv, listener, stats, delivered, _ = await run_flood(
        {"slice_size": 8, "backlog_limit": limit, "overflow": "drop"}, count, every, 100e-6
    )
    assert stats.dropped > 0
    assert len(delivered) + stats.dropped == count
    assert delivered == sorted(delivered), "what is delivered stays in order"
    assert stats.backlog_peak <= limit
    assert stats.replies_sent == count // every == stats.test_requests


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="overflow"):
        FastListener(overflow="grow")
    with pytest.raises(ValueError):
        FastListener(backlog_limit=0)
