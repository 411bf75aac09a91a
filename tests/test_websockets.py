"""drbfast.websockets as a drop-in for the websockets client, against the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets as upstream

from drbfast import websockets as drop_in
from drbfast.emulator import Emulator

from .conftest import TIMEOUT


async def user_code(connect: Any, url: str) -> list[Any]:
    """Code written for `websockets`: it only has to change the import."""
    out = []
    async with connect(url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/subscribe", "params": {"channels": ["ticker.BTC-PERPETUAL.100ms"]}}))
        async for message in ws:
            msg = json.loads(message)
            out.append(msg.get("id", msg.get("method")))
            if len(out) == 4:
                break
    return out


async def test_same_user_code_runs_on_both(emulator: Emulator) -> None:
    a = await asyncio.wait_for(user_code(upstream.connect, emulator.url), TIMEOUT)
    b = await asyncio.wait_for(user_code(drop_in.connect, emulator.url), TIMEOUT)
    assert a == b == [1, "subscription", "subscription", "subscription"]


async def test_recv_never_returns_heartbeat_traffic(emulator: Emulator) -> None:
    async with drop_in.connect(emulator.url, heartbeat=0.1) as ws:
        conn = emulator.connections[-1]
        assert conn.heartbeat_interval == 0.1
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "public/subscribe", "params": {"channels": ["ticker.BTC-PERPETUAL.100ms"]}}))
        seen = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        assert all(m.get("method") != "heartbeat" for m in seen)
        assert all(not str(m.get("id", "")).startswith("~drbfast~") for m in seen), "set_heartbeat/public/test replies are hidden"
        assert seen[0]["id"] == 7
        stats = ws.heartbeat_stats
        assert stats.test_requests >= 5 and stats.replies_sent == stats.test_requests
        assert len(conn.test_request_rtts_ns) >= 5 and conn.close_code is None


async def test_set_heartbeat_refused_raises(emulator: Emulator) -> None:
    from drbfast import InvalidParams

    with pytest.raises(InvalidParams) as info:
        await drop_in.connect(emulator.url, heartbeat=0.001)
    assert info.value.data["param"] == "interval"


async def test_messages_pass_through_untouched(emulator: Emulator) -> None:
    async with drop_in.connect(emulator.url) as ws:
        conn = emulator.connections[-1]
        raw = '{"jsonrpc":"2.0","id":"x","method":"public/test","params":{}}'
        await ws.send(raw)
        reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert isinstance(reply, str) and json.loads(reply)["id"] == "x"
        assert conn.frames[0].payload == raw.encode()
        emulator.faults.send_binary(payload=b"\x00\xff")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00\xff"
        emulator.faults.send_fragmented(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"a","data":1}}', parts=3)
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["params"]["channel"] == "a"
        await ws.send(b"\x01binary")
        await asyncio.sleep(0.05)
        incoming = [f for f in conn.frames if f.direction == "in"]
        assert incoming[-1].opcode == 2 and incoming[-1].payload == b"\x01binary"


async def test_normal_close_ends_iteration_and_reports_ok(emulator: Emulator) -> None:
    ws = await drop_in.connect(emulator.url)
    emulator.faults.close(code=1000, reason="bye")
    got = [m async for m in ws]
    assert got == []
    assert (ws.close_code, ws.close_reason) == (1000, "bye")
    with pytest.raises(drop_in.ConnectionClosedOK):
        await ws.recv()
    with pytest.raises(upstream.ConnectionClosed):  # old `except websockets...` still catches it
        await ws.send("x")


async def test_dropped_connection_is_an_error(emulator: Emulator) -> None:
    ws = await drop_in.connect(emulator.url)
    emulator.faults.drop()
    with pytest.raises(drop_in.ConnectionClosedError) as info:
        async for _ in ws:
            pass
    assert info.value.rcvd is None and ws.close_code == 1006
    assert isinstance(info.value, upstream.ConnectionClosedError)


async def test_4000_heartbeat_close_is_an_error_with_code(emulator: Emulator) -> None:
    ws = await drop_in.connect(emulator.url)
    emulator.faults.close(code=4000, reason="heartbeat close")
    with pytest.raises(drop_in.ConnectionClosedError) as info:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert info.value.rcvd == drop_in.Close(4000, "heartbeat close")


async def test_connect_errors_match_websockets(emulator: Emulator) -> None:
    with pytest.raises(OSError):
        await drop_in.connect("ws://127.0.0.1:9/ws/api/v2")
    with pytest.raises(drop_in.InvalidStatus) as info:
        await drop_in.connect(emulator.url.replace("/ws/api/v2", "/elsewhere"))
    assert info.value.response.status_code == 404
    with pytest.raises(drop_in.InvalidURI):
        await drop_in.connect("http://127.0.0.1/")


async def test_queue_bound_pauses_reading_without_losing_messages(emulator: Emulator) -> None:
    async with drop_in.connect(emulator.url, max_queue=50) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/subscribe", "params": {"channels": ["book.BTC-PERPETUAL.100ms"]}}))
        conn = await emulator.wait_for_connection(1)
        result = await emulator.faults.flood(conn, count=3_000, timeout=TIMEOUT)
        assert result.sent == 3_000
        await asyncio.sleep(0.2)
        assert len(ws._queue) <= 50 + 2_000  # bounded: one socket read past the mark at most
        n = 0
        while n < 3_000:
            msg = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if b'"book.BTC-PERPETUAL.raw"' in msg.encode():
                n += 1
        assert n == 3_000


async def test_fragmented_send(emulator: Emulator) -> None:
    async with drop_in.connect(emulator.url) as ws:
        await ws.send(['{"jsonrpc":"2.0","id":3,', '"method":"public/test","params":{}}'])
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["id"] == 3
