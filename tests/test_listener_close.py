"""FastListener at the edges of a connection: exceptions from the connect and
disconnect hooks never reach picows, and what is queued for a slow consumer when the
connection ends (replies, ``user.*`` notifications) is handed over before
``on_disconnected``."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Any

import pytest
from picows import ws_connect

from drbfast import FastListener

from .test_listener import CLOSE, TR, Hook, RawServer, expected_answer, note, raw_server, server_frame, until

__all__ = ["raw_server"]  # the fixture, imported for the tests below

TIMEOUT = 10.0


def reply(i: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"result":%d,"usIn":1,"usOut":2,"usDiff":1,"testnet":true}' % (i, i)


def user_order(i: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "user.orders.BTC-PERPETUAL.raw", "data": {"order_id": str(i)}}}, separators=(",", ":")).encode()


class Recorder(Hook):
    """on_message, and the order of everything the listener calls."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[Any] = []

    def __call__(self, payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
        super().__call__(payload, binary, lane, channel, rx_ns)
        self.order.append(payload)


async def test_connect_and_disconnect_hook_errors_are_logged_counted_and_survived(
        raw_server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    hook = Hook()
    calls: list[str] = []

    def on_connected(listener: FastListener) -> None:
        calls.append("connected")
        raise RuntimeError("on_connected failure requested by the test")

    def on_disconnected(listener: FastListener) -> None:
        calls.append("disconnected")
        raise RuntimeError("on_disconnected failure requested by the test")

    with caplog.at_level(logging.ERROR, logger="drbfast"):
        transport, listener = await asyncio.wait_for(ws_connect(
            lambda: FastListener(hook, on_connected, on_disconnected), raw_server.url), TIMEOUT)
        assert isinstance(listener, FastListener)
        await raw_server.wait_connected()
        assert calls == ["connected"] and listener.is_connected
        # The connection keeps serving: messages delivered, test_requests answered.
        raw_server.send_text(note(1), TR)
        await until(lambda: len(hook.seen) == 1, "the message")
        await raw_server.barrier()
        assert raw_server.texts() == [expected_answer(1)]
        assert listener.stats.hook_errors == 1
        raw_server.send_frame(CLOSE, struct.pack("!H", 1000) + b"bye")
        await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)  # processed, and no exception
    assert calls == ["connected", "disconnected"]
    assert listener.close_code == 1000 and not listener.is_connected
    assert listener.stats.hook_errors == 2
    records = [r for r in caplog.records if r.name.startswith("drbfast") and r.exc_info]
    assert [str(r.exc_info[1]) for r in records if r.exc_info] == [
        "on_connected failure requested by the test", "on_disconnected failure requested by the test"]
    assert all("on_connected" in r.getMessage() or "on_disconnected" in r.getMessage() for r in records)


@pytest.mark.parametrize("lanes", [True, False])
async def test_queued_replies_and_user_notifications_are_handed_over_before_the_disconnect(
        raw_server: RawServer, lanes: bool) -> None:
    """300 replies, 20 user.orders and 50 trades in one burst behind a consumer that
    takes 4 messages per pass, then the server's close frame."""
    hook = Recorder()
    seen_at_disconnect: list[int] = []

    def on_disconnected(listener: FastListener) -> None:
        hook.order.append("disconnected")
        seen_at_disconnect.append(len(hook.seen))

    transport, listener = await asyncio.wait_for(ws_connect(
        lambda: FastListener(hook, None, on_disconnected, slice_size=4, lanes=lanes), raw_server.url), TIMEOUT)
    assert isinstance(listener, FastListener)
    await raw_server.wait_connected()
    replies = [reply(i) for i in range(300)]
    users = [user_order(i) for i in range(20)]
    public = [note(i) for i in range(50)]
    burst: list[bytes] = []
    for i in range(300):
        burst.append(replies[i])
        if i % 15 == 0:
            burst.append(users[i // 15])
        if i % 6 == 0:
            burst.append(public[i // 6])
    raw_server.send_raw(b"".join(server_frame(1, m) for m in burst) + server_frame(CLOSE, struct.pack("!H", 1000)))
    await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)
    await asyncio.sleep(0.05)  # a drain pass still scheduled finds nothing
    assert "disconnected" in hook.order
    before = hook.order[:hook.order.index("disconnected")]
    assert [m for m in before if m in replies] == replies, "every reply, in order, before on_disconnected"
    assert [m for m in before if m in users] == users, "every user.* notification, in order"
    delivered_public = [m for m in hook.order if m in public]
    s = listener.stats
    assert s.backlog == 0 and s.queued_bytes == 0
    if lanes:
        assert delivered_public == public[:len(delivered_public)]
        assert len(delivered_public) + s.disconnect_dropped == 50
        assert s.disconnect_dropped > 0, "the burst was queued: public data was still waiting"
    else:
        # One FIFO the consumer reads whole (the drop-in): everything, in arrival order.
        assert before == burst and s.disconnect_dropped == 0
    assert hook.order[-1] == "disconnected"
