"""Every fault-injection control does what it says (seen from the websockets client)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from picows import WSMsgType

from drbfast.emulator import TEST_REQUEST, Emulator

from .wsclient import TIMEOUT, WsClient


async def _closed(c: WsClient) -> websockets.ConnectionClosed:
    with pytest.raises(websockets.ConnectionClosed) as info:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            await c.next_message()
    return info.value


async def test_drop_now_has_no_close_frame(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await emulator.wait_for_connection(1)
    emulator.faults.drop()
    exc = await _closed(c)
    assert exc.rcvd is None  # no close frame: 1006 for the client


async def test_drop_after_n_messages(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.result("public/subscribe", channels=["ticker.BTC-PERPETUAL.100ms"])
    emulator.faults.drop(after_messages=3)
    got = 0
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await c.next_message()
            got += 1
    assert got == 3


async def test_drop_at_a_time(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await emulator.wait_for_connection(1)
    t0 = time.monotonic()
    emulator.faults.drop(at=0.3)
    await _closed(c)
    assert 0.25 < time.monotonic() - t0 < 3


async def test_close_with_code_and_reason(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await emulator.wait_for_connection(1)
    emulator.faults.close(code=1012, reason="maintenance")
    exc = await _closed(c)
    assert exc.rcvd is not None and (exc.rcvd.code, exc.rcvd.reason) == (1012, "maintenance")


async def test_stop_reading_then_resume(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    conn = await emulator.wait_for_connection(1)
    emulator.faults.stop_reading()
    await c.send("public/test", req_id=1)
    with pytest.raises(asyncio.TimeoutError):
        await c.next_message(timeout=0.3)
    emulator.faults.resume_reading()
    assert (await c.next_message())["id"] == 1
    assert conn.messages_received == 1


async def test_delay_responses(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await emulator.wait_for_connection(1)
    emulator.faults.delay_responses(0.3)
    t0 = time.monotonic()
    await c.result("public/test")
    assert time.monotonic() - t0 >= 0.28
    await c.close()


async def test_malformed_binary_oversized_fragmented_ping(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url, max_size=8 * 1024 * 1024)
    conn = await emulator.wait_for_connection(1)
    emulator.faults.send_malformed()
    raw = await asyncio.wait_for(c.ws.recv(), TIMEOUT)
    with pytest.raises(ValueError):
        json.loads(raw)
    emulator.faults.send_binary(payload=b"\x00bin")
    assert await asyncio.wait_for(c.ws.recv(), TIMEOUT) == b"\x00bin"
    emulator.faults.send_oversized(size=2_000_000)
    big = await asyncio.wait_for(c.ws.recv(), TIMEOUT)
    assert len(big) >= 1_999_000 and json.loads(big)["method"] == "subscription"
    emulator.faults.send_fragmented(TEST_REQUEST, parts=4)
    assert (await asyncio.wait_for(c.ws.recv(), TIMEOUT)).encode() == TEST_REQUEST
    sent = [f for f in conn.frames if f.direction == "out"]
    assert [f.opcode for f in sent[-4:]] == [WSMsgType.TEXT, WSMsgType.CONTINUATION, WSMsgType.CONTINUATION, WSMsgType.CONTINUATION]
    emulator.faults.send_ping(payload=b"are-you-there")
    await asyncio.sleep(0.1)  # websockets answers the ping by itself
    pongs = [f for f in conn.frames if f.direction == "in" and f.opcode == WSMsgType.PONG]
    assert pongs and pongs[-1].payload == b"are-you-there"
    await c.close()


async def test_test_requests_at_a_rate_and_a_pattern_with_deadline(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    c.answer_test_requests = True
    conn = await emulator.wait_for_connection(1)
    task = emulator.faults.send_test_requests(count=5, rate_hz=50)
    deadline = time.monotonic() + TIMEOUT
    while len(conn.test_request_rtts_ns) < 5 and time.monotonic() < deadline:
        await c.next_message()
    await asyncio.wait_for(task, TIMEOUT)
    assert c.heartbeats == ["test_request"] * 5
    assert len(conn.test_request_rtts_ns) == 5
    # A silent client with a pattern and a deadline is closed like production.
    c.answer_test_requests = False
    emulator.faults.send_test_requests(pattern=[0.05], deadline=0.2)
    exc = await _closed(c)
    assert exc.rcvd is not None and exc.rcvd.code == 4000


async def test_recorder_has_both_directions_in_time_order(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.result("public/hello", client_name="rec", client_version="0")
    conn = emulator.connections[-1]
    dirs = [f.direction for f in conn.frames]
    assert dirs == ["in", "out"]
    assert conn.frames[0].json()["method"] == "public/hello"
    assert conn.frames[1].json()["result"] == {"version": "1.2.26"}
    assert conn.frames[0].t_ns <= conn.frames[1].t_ns
    assert conn.received[0]["params"]["client_name"] == "rec"
    await c.close()


async def test_flood_bursts_are_exact_frames_in_order(emulator: Emulator) -> None:
    """A flood writes each burst with one system call: the client still reads each
    message as its own frame, change_ids continuous, the test_requests where they
    were put (after every 100th change)."""
    c = await WsClient.open(emulator.url)
    conn = await emulator.wait_for_connection(1)
    task = asyncio.get_running_loop().create_task(
        emulator.faults.flood(conn, count=1_000, test_request_every=100, channel="book.ETH-PERPETUAL.raw", timeout=TIMEOUT))
    kinds: list[str] = []
    ids: list[tuple[int, int]] = []
    while len(kinds) < 1_010:
        raw = await asyncio.wait_for(c.ws.recv(), TIMEOUT)
        msg = json.loads(raw)
        if msg.get("method") == "heartbeat":
            kinds.append("tr")
            await c.send("public/test", req_id=len(kinds))
        elif msg["params"]["channel"] == "book.ETH-PERPETUAL.raw":
            kinds.append("change")
            ids.append((msg["params"]["data"]["prev_change_id"], msg["params"]["data"]["change_id"]))
    result = await task
    assert result.sent == 1_000 and len(result.rtts_ns) == 10
    assert [i for i, k in enumerate(kinds) if k == "tr"] == [100 + 101 * n for n in range(10)]
    assert all(prev == cur - 1 for prev, cur in ids) and all(a[1] == b[0] for a, b in zip(ids, ids[1:]))
    assert conn.messages_sent >= 1_010


async def test_flood_still_honours_a_drop_after_n_messages(emulator: Emulator) -> None:
    """With a fault hook armed, the flood goes frame by frame so the hook sees each:
    the socket drops after exactly the N-th message."""
    c = await WsClient.open(emulator.url)
    conn = await emulator.wait_for_connection(1)
    emulator.faults.drop(conn, after_messages=250)
    task = asyncio.get_running_loop().create_task(emulator.faults.flood(conn, count=1_000, timeout=TIMEOUT))
    got = 0
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await c.next_message()
            got += 1
    await task
    assert got == 250


async def test_flood_measures_test_request_round_trips(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    c.answer_test_requests = True
    conn = await emulator.wait_for_connection(1)
    reader_done = asyncio.Event()

    async def reader() -> None:
        try:
            while True:
                await c.next_message()
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            pass
        finally:
            reader_done.set()

    task = asyncio.get_running_loop().create_task(reader())
    result = await emulator.faults.flood(conn, count=2_000, test_request_every=100, timeout=TIMEOUT)
    assert result.sent == 2_000 and result.test_requests == 20
    assert len(result.rtts_ns) == 20 and all(r > 0 for r in result.rtts_ns)
    await c.close()
    await asyncio.wait_for(reader_done.wait(), TIMEOUT)
    task.cancel()


async def test_silence_sends_nothing_and_keeps_the_socket(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.result("public/subscribe", channels=["ticker.BTC-PERPETUAL.100ms"])
    await c.result("public/set_heartbeat", interval=0.1)
    await c.collect(2)
    emulator.faults.silence()
    await asyncio.sleep(0.1)
    while True:  # drain what was already in flight
        try:
            await c.next_message(timeout=0.2)
        except asyncio.TimeoutError:
            break
    with pytest.raises(asyncio.TimeoutError):
        await c.next_message(timeout=0.5)
    assert emulator.connections, "no close either"
    await c.close()
