"""FastListener over a real loopback socket: a raw-socket WebSocket server sends
test_requests interleaved with other messages and reads the client's frames as bytes,
so the masking of every answer is checked on the wire."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import struct
from typing import Any

import pytest
from picows import WSMsgType, ws_connect

from drbfast import FastListener, Kind, classify
from drbfast.frames import TEST_TEMPLATE

TIMEOUT = 10.0
TR = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
HB = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server frame (RFC 6455 5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class RawServer:
    """A minimal WebSocket server on a raw socket that records the client's frames
    exactly as they came off the wire (mask bit, key, unmasked payload)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bool, bytes]] = []  # (opcode, masked, payload)
        self.writer: asyncio.StreamWriter | None = None
        self.got_frame = asyncio.Event()
        self.connected = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.writer = writer
        self.connected.set()
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await reader.readexactly(8))[0]
                masked = bool(b1 & 0x80)
                mask = await reader.readexactly(4) if masked else b"\0\0\0\0"
                data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(n)))
                self.frames.append((b0 & 0x0F, masked, data))
                self.got_frame.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def texts(self) -> list[bytes]:
        return [p for op, _, p in self.frames if op == WSMsgType.TEXT]

    async def wait_frames(self, n: int) -> None:
        async def wait() -> None:
            while len(self.frames) < n:
                self.got_frame.clear()
                await self.got_frame.wait()
        await asyncio.wait_for(wait(), TIMEOUT)


@pytest.fixture
async def raw_server() -> Any:
    srv = RawServer()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws/api/v2"  # type: ignore[attr-defined]
    yield srv
    server.close()
    await server.wait_closed()


async def connect(srv: Any, **kwargs: Any) -> tuple[Any, FastListener, list[tuple[bytes, bool]]]:
    seen: list[tuple[bytes, bool]] = []
    transport, listener = await asyncio.wait_for(
        ws_connect(lambda: FastListener(lambda p, b: seen.append((p, b)), **kwargs), srv.url), TIMEOUT)
    await asyncio.wait_for(srv.connected.wait(), TIMEOUT)
    return transport, listener, seen


def note(i: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "c", "data": {"i": i, "text": "heartbeat test_request"}}}).encode()


async def test_interleaved_stream(raw_server: RawServer) -> None:
    transport, listener, seen = await connect(raw_server)
    others = []
    out = b""
    for i in range(30):
        out += frame(1, TR)
        if i % 3 == 0:
            out += frame(1, HB)
        msg = note(i)
        others.append(msg)
        out += frame(1, msg)
    reply = json.dumps({"jsonrpc": "2.0", "id": 5, "result": {"method": "heartbeat"}}).encode()
    others.append(reply)
    out += frame(1, reply)
    raw_server.send(out)
    await raw_server.wait_frames(30)
    await asyncio.sleep(0.05)
    assert [p for p, _ in seen] == others, "the hook saw exactly the other messages, in order"
    answers = raw_server.texts()
    assert len(answers) == 30, "exactly one answer per test_request, nothing else"
    assert all(masked for _, masked, _ in raw_server.frames), "client frames are masked"
    ids = [json.loads(a)["id"] for a in answers]
    for a in answers:
        msg = json.loads(a)
        assert msg["method"] == "public/test" and msg["params"] == {} and msg["jsonrpc"] == "2.0"
    assert ids == sorted(ids) and len(set(ids)) == 30
    s = listener.stats
    assert (s.test_requests, s.replies_sent, s.heartbeats, s.messages) == (30, 30, 10, 31)
    assert s.last_test_request_ns >= s.last_heartbeat_ns > 0 and s.last_rx_ns >= s.last_test_request_ns
    listener.close()


async def test_fragmented_binary_ping_and_engine_reply(raw_server: RawServer) -> None:
    transport, listener, seen = await connect(raw_server)
    raw_server.send(frame(1, TR[:7], fin=False) + frame(0, TR[7:30], fin=False) + frame(0, TR[30:]))
    raw_server.send(frame(2, b"\x00\x01"))
    raw_server.send(frame(9, b"ping!"))
    await raw_server.wait_frames(2)
    assert raw_server.frames[0][0] == WSMsgType.TEXT and json.loads(raw_server.frames[0][2])["method"] == "public/test"
    assert (raw_server.frames[1][0], raw_server.frames[1][2]) == (WSMsgType.PONG, b"ping!")
    engine_id = json.loads(raw_server.frames[0][2])["id"]
    raw_server.send(frame(1, json.dumps({"jsonrpc": "2.0", "id": engine_id, "result": {"version": "1"}}).encode()))
    await asyncio.sleep(0.1)
    assert seen == [(b"\x00\x01", True)], "the engine's reply never reaches the hook"
    s = listener.stats
    assert (s.fragmented, s.binary_messages, s.test_replies) == (1, 1, 1)
    assert s.last_rtt_ns > 0
    listener.close()


async def test_template_survives_many_replies(raw_server: RawServer) -> None:
    before = bytes(TEST_TEMPLATE)
    transport, listener, seen = await connect(raw_server)
    raw_server.send(frame(1, TR) * 10_000)
    await raw_server.wait_frames(10_000)
    assert TEST_TEMPLATE == before
    ids = [json.loads(p)["id"] for p in raw_server.texts()]
    assert len(set(ids)) == 10_000 and ids[-1] == "~drbfast~000000010000"
    listener.close()


async def test_hook_exception_is_counted_and_connection_serves(raw_server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    def bad(payload: bytes, binary: bool) -> None:
        raise ValueError("user bug")

    transport, listener = await asyncio.wait_for(ws_connect(lambda: FastListener(bad), raw_server.url), TIMEOUT)
    await asyncio.wait_for(raw_server.connected.wait(), TIMEOUT)
    raw_server.send(frame(1, note(1)) + frame(1, TR))
    await raw_server.wait_frames(1)
    assert listener.stats.hook_errors == 1 and listener.is_connected
    assert "on_message hook raised" in caplog.text
    listener.close()


async def test_server_close_gives_code_and_reason(raw_server: RawServer) -> None:
    transport, listener, seen = await connect(raw_server)
    raw_server.send(frame(8, struct.pack("!H", 4000) + b"heartbeat close"))
    await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)
    assert (listener.close_code, listener.close_reason) == (4000, "heartbeat close")
    assert raw_server.frames[-1][0] == WSMsgType.CLOSE and raw_server.frames[-1][2][:2] == struct.pack("!H", 4000)


async def test_continuation_without_start_is_a_protocol_error(raw_server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    transport, listener, seen = await connect(raw_server)
    raw_server.send(frame(0, b"orphan"))
    await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)
    assert raw_server.frames and raw_server.frames[-1][0] == WSMsgType.CLOSE
    assert struct.unpack("!H", raw_server.frames[-1][2][:2])[0] == 1002


def test_unknown_goes_to_the_slow_path_before_anything_is_answered() -> None:
    deep = b'{"method":"heartbeat","params":{"type":"heartbeat"},"x":' + b"[" * 300 + b"]" * 300 + b"}"
    assert classify(deep) == Kind.UNKNOWN
    listener = FastListener(lambda p, b: None)
    listener.feed(deep)
    s = listener.stats
    assert (s.slow_path, s.heartbeats, s.messages) == (1, 1, 0)
