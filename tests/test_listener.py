"""FastListener end to end over 127.0.0.1.

Two tiny servers play Deribit:

* ``PicowsServer``: ``picows.ws_create_server`` with a plain Python listener that records
  every frame the client sends (picows unmasks them);
* ``RawServer``: asyncio streams and a hand-written RFC 6455 framer, which sees the
  client's frames exactly as they are on the wire (MASK bit, masking key), so it proves
  the answers are masked, and lets a test write any byte sequence in one TCP write.

Every wait is bounded by TIMEOUT. "Nothing else was answered" is checked with a barrier:
the server sends a PING and waits for its PONG. The client handles frames in order and
answers test_requests inline, so any answer to an earlier frame is on the wire before
that PONG.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect, ws_create_server

import drbfast.frames
from drbfast import FastListener, HeartbeatStats, monotonic_ns
from drbfast.frames import SEQ_DIGITS, SEQ_OFFSET, TEST_TEMPLATE, engine_id

TIMEOUT = 10.0

TR = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
HB = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
TR_SPACED = b'{ "jsonrpc" : "2.0", "method" : "heart\\u0062eat", "params" : { "type" : "test_request" } }'
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded by TIMEOUT) until ``predicate()`` holds."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.001)
    try:
        await asyncio.wait_for(poll(), TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for: {what}") from None


def note(i: int) -> bytes:
    """A subscription notification whose data mentions heartbeats (it is still OTHER).
    On an ordered channel (trades): every one is delivered, in order, even when queued
    (a ticker channel would be conflated behind a slow consumer)."""
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "trades.BTC-PERPETUAL.raw",
        "data": {"i": i, "method": "heartbeat", "params": {"type": "test_request"}}}},
        separators=(",", ":")).encode()


def user_reply(i: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"result":{"method":"heartbeat"},"usIn":1,"usOut":2,"usDiff":1,"testnet":true}' % i


def engine_reply(seq: int, error: bool = False) -> bytes:
    body = '"error":{"code":10028,"message":"too_many_requests"}' if error else '"result":{"version":"1.2.26"}'
    return ('{"jsonrpc":"2.0","id":"%s",%s,"usIn":1,"usOut":2,"usDiff":1,"testnet":true}' % (engine_id(seq), body)).encode()


def expected_answer(seq: int) -> bytes:
    """The exact bytes of the engine's ``public/test`` number ``seq``."""
    out = bytearray(TEST_TEMPLATE)
    out[SEQ_OFFSET:SEQ_OFFSET + SEQ_DIGITS] = b"%012d" % seq
    return bytes(out)


def check_answers(answers: list[bytes], first_seq: int) -> None:
    """Each answer is a valid public/test with an engine id; ids distinct and increasing."""
    ids = []
    for k, a in enumerate(answers):
        msg = json.loads(a)
        assert msg == {"jsonrpc": "2.0", "id": msg["id"], "method": "public/test", "params": {}}, a
        assert a == expected_answer(first_seq + k), a
        ids.append(msg["id"])
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


# ------------------------------------------------------------------ the servers


class ServerBase:
    """Frames the client sent, as ``(opcode, payload, fin, masked)``; masked is None
    where the server cannot see the wire (picows unmasks)."""

    url: str

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes, bool, bool | None]] = []
        self.disconnected = False

    def texts(self) -> list[bytes]:
        return [p for op, p, _, _ in self.frames if op == TEXT]

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        raise NotImplementedError

    def send_text(self, *payloads: bytes) -> None:
        for p in payloads:
            self.send_frame(TEXT, p)

    async def barrier(self, tag: bytes = b"barrier") -> None:
        """Send PING(tag) and wait for its PONG: everything the client sent in answer to
        earlier frames has arrived by then."""
        n = len(self.frames)
        self.send_frame(PING, tag)
        await until(lambda: any(op == PONG and p == tag for op, p, _, _ in self.frames[n:]), f"PONG {tag!r}")

    async def wait_connected(self) -> None:
        raise NotImplementedError


class _Recorder(WSListener):
    def __init__(self, server: PicowsServer) -> None:
        self.server = server

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.server.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # A WSFrame is only valid inside the callback: copy the payload out.
        self.server.frames.append((frame.msg_type.value, frame.get_payload_as_bytes(), bool(frame.fin), None))
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server.disconnected = True


class PicowsServer(ServerBase):
    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None

    async def start(self) -> None:
        self.server = await ws_create_server(lambda request: _Recorder(self), "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws/api/v2"

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.disconnect()
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), TIMEOUT)

    async def wait_connected(self) -> None:
        await until(lambda: self.transport is not None, "server side connected")

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        assert self.transport is not None
        if opcode == PING:
            self.transport.send_ping(payload)
        else:
            self.transport.send(WSMsgType(opcode), payload, fin=fin)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server-to-client frame (RFC 6455 5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def unmask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


class RawServer(ServerBase):
    """A WebSocket server written against the RFC on raw asyncio streams."""

    def __init__(self) -> None:
        super().__init__()
        self.writer: asyncio.StreamWriter | None = None
        self.mask_keys: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws/api/v2"

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), TIMEOUT)

    async def wait_connected(self) -> None:
        await until(lambda: self.writer is not None, "server side connected")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.task = asyncio.current_task()
        request = await reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.writer = writer
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await reader.readexactly(8))
                masked = bool(b1 & 0x80)
                key = await reader.readexactly(4) if masked else b"\0\0\0\0"
                payload = unmask(await reader.readexactly(n), key)
                assert b0 & 0x70 == 0, "no RSV bits without an extension"
                self.mask_keys.append(key)
                self.frames.append((b0 & 0x0F, payload, bool(b0 & 0x80), masked))
                if b0 & 0x0F == CLOSE:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.disconnected = True

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.send_raw(server_frame(opcode, payload, fin))

    def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)


class Hook:
    """The user's on_message: records (payload, binary); can raise on request."""

    def __init__(self, raise_on: bytes | None = None) -> None:
        self.seen: list[tuple[bytes, bool]] = []
        self.raise_on = raise_on

    def __call__(self, payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
        assert type(payload) is bytes and type(binary) is bool
        assert type(lane) is int and type(channel) is str and type(rx_ns) is int and rx_ns > 0
        self.seen.append((payload, binary))
        if self.raise_on is not None and self.raise_on in payload:
            raise RuntimeError("hook failure requested by the test")

    def payloads(self) -> list[bytes]:
        return [p for p, _ in self.seen]


class Client:
    def __init__(self, transport: WSTransport, listener: FastListener, hook: Hook, events: list[str]) -> None:
        self.transport, self.listener, self.hook, self.events = transport, listener, hook, events

    async def close(self) -> None:
        self.transport.disconnect()
        await asyncio.wait_for(self.transport.wait_disconnected(), TIMEOUT)


async def connect(server: ServerBase, hook: Hook | None = None, **kwargs: Any) -> Client:
    hook = hook if hook is not None else Hook()
    events: list[str] = []
    transport, listener = await asyncio.wait_for(ws_connect(
        lambda: FastListener(hook, lambda lst: events.append("connected"), lambda lst: events.append("disconnected"), **kwargs),
        server.url), TIMEOUT)
    assert isinstance(listener, FastListener)
    await server.wait_connected()
    assert events == ["connected"] and listener.is_connected and listener.transport is transport
    return Client(transport, listener, hook, events)


@pytest.fixture(params=["picows", "raw"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[ServerBase]:
    srv: ServerBase = PicowsServer() if request.param == "picows" else RawServer()
    await srv.start()  # type: ignore[attr-defined]
    yield srv
    await srv.stop()  # type: ignore[attr-defined]


@pytest.fixture
async def picows_server() -> AsyncIterator[PicowsServer]:
    srv = PicowsServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    srv = RawServer()
    await srv.start()
    yield srv
    await srv.stop()


STAT_COUNTERS = ("heartbeats", "test_requests", "replies_sent", "probes_sent", "test_replies", "test_reply_errors",
                 "messages", "binary_messages", "fragmented", "slow_path", "hook_errors", "frame_errors")
STAT_TIMES = ("last_rx_ns", "last_heartbeat_ns", "last_test_request_ns", "last_reply_sent_ns", "last_test_reply_ns")


def assert_progress(before: HeartbeatStats, after: HeartbeatStats) -> None:
    """No counter or timestamp ever goes back."""
    for name in STAT_COUNTERS + STAT_TIMES:
        assert getattr(after, name) >= getattr(before, name), name


# ------------------------------------------------------------------ the scenario


def interleaved_stream(n: int) -> tuple[list[bytes], list[bytes], dict[str, int]]:
    """n test_requests between heartbeats, notifications, user responses and engine
    replies; returns (stream, the OTHER messages in order, counts)."""
    stream: list[bytes] = []
    others: list[bytes] = []
    counts = {"tr": 0, "hb": 0, "reply": 0}
    for i in range(n):
        stream.append(TR if i % 4 else TR_SPACED)
        counts["tr"] += 1
        if i % 3 == 0:
            stream.append(HB)
            counts["hb"] += 1
        for msg in (note(i), user_reply(i)) if i % 2 else (note(i),):
            stream.append(msg)
            others.append(msg)
        if i % 5 == 0:
            # the echo of an engine public/test the server never saw: counted, not delivered
            stream.append(engine_reply(10**6 + i))
            counts["reply"] += 1
    return stream, others, counts


@pytest.mark.parametrize("burst", [True, False], ids=["one_write", "frame_by_frame"])
async def test_interleaved(server: ServerBase, burst: bool) -> None:
    client = await connect(server)
    stream, others, counts = interleaved_stream(40)
    end = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"end","data":null}}'
    t0 = monotonic_ns()
    if burst and isinstance(server, RawServer):
        server.send_raw(b"".join(server_frame(TEXT, m) for m in stream + [end]))
    else:
        for m in stream:
            server.send_text(m)
            if not burst:
                await asyncio.sleep(0)
        server.send_text(end)
    await until(lambda: len(client.hook.seen) == len(others) + 1, "the hook saw every other message")
    await server.barrier()

    # The hook saw exactly the OTHER messages, as text, each class in order: a reply
    # may overtake queued market data (the priority lane), never another reply.
    seen = client.hook.payloads()
    assert sorted(seen) == sorted(others + [end])
    assert [m for m in seen if b'"id"' in m] == [m for m in others if b'"id"' in m]
    assert [m for m in seen if b'"id"' not in m] == [m for m in others if b'"id"' not in m] + [end]
    assert not any(binary for _, binary in client.hook.seen)
    # Exactly one answer per test_request, nothing else (the PONG is the barrier's).
    assert [op for op, *_ in server.frames] == [TEXT] * counts["tr"] + [PONG]
    answers = server.texts()
    check_answers(answers, 1)
    assert all(fin for _, _, fin, _ in server.frames)
    if isinstance(server, RawServer):
        assert all(masked for *_, masked in server.frames), "every client frame is masked"
        assert all(k != b"\0\0\0\0" for k in server.mask_keys)
        assert len(set(server.mask_keys)) > 1, "a fresh masking key per frame"
    s = client.listener.stats
    assert (s.test_requests, s.replies_sent, s.heartbeats, s.test_replies, s.messages) == (
        counts["tr"], counts["tr"], counts["hb"], counts["reply"], len(others) + 1)
    assert (s.hook_errors, s.frame_errors, s.binary_messages, s.fragmented, s.probes_sent) == (0, 0, 0, 0, 0)
    assert s.slow_path == 0, "no test_request layout here needs the slow path"
    assert client.listener.sequence == counts["tr"]
    now = monotonic_ns()
    for name in ("last_rx_ns", "last_heartbeat_ns", "last_test_request_ns", "last_reply_sent_ns", "last_test_reply_ns"):
        assert t0 <= getattr(s, name) <= now, name
    assert s.last_rx_ns >= max(s.last_heartbeat_ns, s.last_test_request_ns, s.last_test_reply_ns)
    assert s.last_reply_sent_ns >= s.last_test_request_ns
    await client.close()
    assert client.events == ["connected", "disconnected"]


async def test_masked_on_the_wire(raw_server: RawServer) -> None:
    """The raw bytes of an answer: FIN+TEXT, MASK bit, 4-byte key, masked payload."""
    client = await connect(raw_server)
    raw_server.send_text(TR)
    await raw_server.barrier()
    (op, payload, fin, masked), pong = raw_server.frames
    assert (op, fin, masked) == (TEXT, True, True)
    assert payload == expected_answer(1)
    assert pong[0] == PONG and pong[3] is True
    await client.close()


# ------------------------------------------------------------------ fragments, binary, ping


async def test_fragmented_test_request(server: ServerBase) -> None:
    client = await connect(server)
    parts = [TR[:10], TR[10:40], TR[40:]]
    server.send_frame(TEXT, parts[0], fin=False)
    server.send_frame(CONT, parts[1], fin=False)
    await server.barrier(b"mid-message")  # a control frame inside a fragmented message
    assert server.texts() == [], "nothing answered before the message is complete"
    server.send_frame(CONT, parts[2], fin=True)
    await server.barrier()
    assert server.texts() == [expected_answer(1)]
    # A fragmented OTHER message reaches the hook whole; then a plain test_request still works.
    big = note(7) * 1  # same content, split in many pieces, one of them empty
    pieces = [big[i:i + 13] for i in range(0, len(big), 13)]
    server.send_frame(TEXT, pieces[0], fin=False)
    server.send_frame(CONT, b"", fin=False)
    for piece in pieces[1:-1]:
        server.send_frame(CONT, piece, fin=False)
    server.send_frame(CONT, pieces[-1], fin=True)
    server.send_text(TR)
    await until(lambda: len(client.hook.seen) == 1, "the reassembled message")
    await server.barrier(b"end")
    assert client.hook.seen == [(big, False)]
    assert server.texts() == [expected_answer(1), expected_answer(2)]
    s = client.listener.stats
    assert (s.fragmented, s.test_requests, s.replies_sent, s.messages, s.frame_errors) == (2, 2, 2, 1, 0)
    await client.close()


async def test_binary_goes_to_the_hook(server: ServerBase) -> None:
    client = await connect(server)
    blob = bytes(range(256)) * 3
    server.send_frame(BINARY, blob)
    server.send_frame(BINARY, TR)  # a test_request's bytes in a BINARY frame: not heartbeat traffic
    server.send_frame(BINARY, TR[:20], fin=False)
    server.send_frame(CONT, TR[20:], fin=True)
    server.send_text(HB)
    await until(lambda: len(client.hook.seen) == 3, "three binary messages")
    await server.barrier()
    assert client.hook.seen == [(blob, True), (TR, True), (TR, True)]
    assert server.texts() == [], "a binary message is never answered"
    s = client.listener.stats
    assert (s.binary_messages, s.messages, s.heartbeats, s.test_requests, s.fragmented) == (3, 3, 1, 0, 1)
    await client.close()


async def test_ping_is_answered_with_pong(server: ServerBase) -> None:
    client = await connect(server)
    for tag in (b"", b"x", b"\x00\xff" * 20):
        n = len(server.frames)
        server.send_frame(PING, tag)
        await until(lambda: len(server.frames) > n, "a PONG")
        assert server.frames[n][:3] == (PONG, tag, True)
    assert client.hook.seen == [] and client.listener.stats.messages == 0
    await client.close()


# ------------------------------------------------------------------ engine replies, probes


async def test_engine_replies_are_counted_not_delivered(picows_server: PicowsServer) -> None:
    client = await connect(picows_server)
    seq = client.listener.send_probe()
    assert seq == 1 and client.listener.sequence == 1
    await until(lambda: len(picows_server.texts()) == 1, "the probe")
    probe = json.loads(picows_server.texts()[0])
    assert probe["method"] == "public/test" and probe["id"] == engine_id(1)
    picows_server.send_text(engine_reply(1))
    picows_server.send_text(user_reply(1))
    await until(lambda: len(client.hook.seen) == 1, "the user reply")
    assert client.hook.payloads() == [user_reply(1)]
    s = client.listener.stats
    assert (s.probes_sent, s.test_replies, s.test_reply_errors, s.replies_sent) == (1, 1, 0, 0)
    assert 0 < s.last_rtt_ns < TIMEOUT * 1e9
    assert s.last_test_reply_ns > 0

    # An error answer to an engine request: counted, logged, kept, still not delivered.
    seq = client.listener.send_probe()
    picows_server.send_text(engine_reply(seq, error=True))
    picows_server.send_text(user_reply(2))
    await until(lambda: len(client.hook.seen) == 2, "the second user reply")
    assert client.hook.payloads() == [user_reply(1), user_reply(2)]
    s = client.listener.stats
    assert (s.probes_sent, s.test_replies, s.test_reply_errors) == (2, 2, 1)
    assert client.listener.last_error_reply == engine_reply(seq, error=True)
    await client.close()


# ------------------------------------------------------------------ template and ids


async def test_template_intact_after_10000_replies(picows_server: PicowsServer) -> None:
    template_obj = drbfast.frames.TEST_TEMPLATE
    template_copy = bytes(bytearray(template_obj))
    client = await connect(picows_server)
    total = 10_000
    stats = [client.listener.stats]
    for burst in range(10):
        for _ in range(total // 10):
            picows_server.send_text(TR)
        await until(lambda: len(picows_server.texts()) == (burst + 1) * total // 10, f"burst {burst} answered")
        stats.append(client.listener.stats)
    await picows_server.barrier()
    answers = picows_server.texts()
    assert len(answers) == total
    check_answers(answers, 1)  # byte-exact, ids 1..10000: distinct and increasing
    assert drbfast.frames.TEST_TEMPLATE is template_obj
    assert template_obj == template_copy, "the shared template was modified (masked in place?)"
    assert TEST_TEMPLATE == template_copy
    for before, after in zip(stats, stats[1:]):
        assert_progress(before, after)
        assert after.replies_sent == before.replies_sent + total // 10
        assert after.last_reply_sent_ns > before.last_reply_sent_ns
    assert client.listener.sequence == total
    await client.close()


async def test_answers_interleave_with_probes(picows_server: PicowsServer) -> None:
    """Probes and answers share one sequence: ids stay distinct and increasing."""
    client = await connect(picows_server)
    for _ in range(5):
        picows_server.send_text(TR)
        await until(lambda: client.listener.stats.replies_sent == client.listener.stats.test_requests, "answer")
        client.listener.send_probe()
    await picows_server.barrier()
    check_answers(picows_server.texts(), 1)
    assert len(picows_server.texts()) == 10
    await client.close()


# ------------------------------------------------------------------ stats


async def test_stats_are_monotonic(server: ServerBase) -> None:
    client = await connect(server)
    previous = client.listener.stats
    assert all(getattr(previous, n) == 0 for n in STAT_COUNTERS + STAT_TIMES + ("last_rtt_ns",))
    assert set(previous.as_dict()) >= set(STAT_COUNTERS + STAT_TIMES)
    steps: list[tuple[bytes, str, str | None]] = [
        (HB, "heartbeats", "last_heartbeat_ns"),
        (TR, "test_requests", "last_test_request_ns"),
        (note(1), "messages", None),
        (engine_reply(99), "test_replies", "last_test_reply_ns"),
        (TR_SPACED, "replies_sent", "last_reply_sent_ns"),
        (HB, "heartbeats", "last_heartbeat_ns"),
    ]
    for payload, counter, stamp in steps:
        time.sleep(0.001)  # let CLOCK_MONOTONIC move between steps
        t0 = monotonic_ns()
        server.send_text(payload)
        await until(lambda: getattr(client.listener.stats, counter) == getattr(previous, counter) + 1, counter)
        s = client.listener.stats
        assert_progress(previous, s)
        assert t0 <= s.last_rx_ns <= monotonic_ns()
        assert s.last_rx_ns > previous.last_rx_ns
        if stamp is not None:
            assert t0 <= getattr(s, stamp) <= monotonic_ns()
            assert getattr(s, stamp) > getattr(previous, stamp)
        assert s.as_dict() == {name: getattr(s, name) for name in s.as_dict()}
        previous = s
    # The listener's clock is CLOCK_MONOTONIC, the clock of time.monotonic_ns() on Linux.
    assert abs(monotonic_ns() - time.monotonic_ns()) < 10_000_000
    await client.close()


# ------------------------------------------------------------------ failures


async def test_hook_exception_is_logged_counted_and_survived(server: ServerBase, caplog: pytest.LogCaptureFixture) -> None:
    hook = Hook(raise_on=b'"boom"')
    client = await connect(server, hook)
    boom = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"boom","data":"boom"}}'
    with caplog.at_level(logging.ERROR, logger="drbfast"):
        server.send_text(note(1), boom, TR, note(2), boom, boom, note(3))
        await until(lambda: len(hook.seen) == 6, "every other message, failing ones included")
        server.send_text(TR)
        await server.barrier()
    assert hook.payloads() == [note(1), boom, note(2), boom, boom, note(3)]
    assert server.texts() == [expected_answer(1), expected_answer(2)], "still answering"
    s = client.listener.stats
    assert (s.hook_errors, s.frame_errors, s.messages, s.test_requests) == (3, 0, 6, 2)
    records = [r for r in caplog.records if r.name.startswith("drbfast") and r.exc_info]
    assert len(records) == 3
    assert all(isinstance(r.exc_info[1], RuntimeError) for r in records if r.exc_info)
    assert client.listener.is_connected
    await client.close()


async def test_close_from_server_gives_code_and_reason(raw_server: RawServer) -> None:
    """What Deribit does when a test_request goes unanswered (PROTOCOL.md 1.3)."""
    client = await connect(raw_server)
    raw_server.send_text(HB)
    raw_server.send_frame(CLOSE, struct.pack("!H", 4000) + b"heartbeat close")
    await asyncio.wait_for(client.transport.wait_disconnected(), TIMEOUT)
    assert client.listener.close_code == 4000
    assert client.listener.close_reason == "heartbeat close"
    assert client.events == ["connected", "disconnected"]
    assert not client.listener.is_connected
    await until(lambda: raw_server.disconnected, "the server saw the client go")
    # The client echoed the close (RFC 6455 5.5.1), masked.
    closes = [(p, masked) for op, p, _, masked in raw_server.frames if op == CLOSE]
    assert closes and closes[0][0][:2] == struct.pack("!H", 4000) and closes[0][1] is True
    assert client.listener.stats.heartbeats == 1


async def test_normal_close_from_picows_server(picows_server: PicowsServer) -> None:
    client = await connect(picows_server)
    assert picows_server.transport is not None
    from picows import WSCloseCode
    picows_server.transport.send_close(WSCloseCode.GOING_AWAY, b"maintenance")
    await asyncio.wait_for(client.transport.wait_disconnected(), TIMEOUT)
    assert client.listener.close_code == 1001
    assert client.listener.close_reason == "maintenance"
    assert client.events == ["connected", "disconnected"]


async def test_client_close(picows_server: PicowsServer) -> None:
    client = await connect(picows_server)
    client.listener.close(1000, "bye")
    await asyncio.wait_for(client.transport.wait_disconnected(), TIMEOUT)
    await until(lambda: any(op == CLOSE for op, *_ in picows_server.frames), "the CLOSE frame")
    (payload,) = [p for op, p, _, _ in picows_server.frames if op == CLOSE]
    assert payload == struct.pack("!H", 1000) + b"bye"
    client.listener.close()  # a no-op once down
    assert not client.listener.is_connected


def test_not_connected_listener_refuses_to_send() -> None:
    listener = FastListener(Hook())
    assert not listener.is_connected and listener.transport is None
    with pytest.raises(RuntimeError):
        listener.send(b"x")
    with pytest.raises(RuntimeError):
        listener.send_probe()
    with pytest.raises(RuntimeError):
        listener.feed(TR)  # a test_request with nowhere to answer it is an error, not a silent drop
    listener.close()  # no-op


async def test_close_without_status_reads_1005_and_is_answered_1000(raw_server: RawServer) -> None:
    """RFC 6455 7.1.5 / 7.4.1: no status code is reported as 1005, which is never sent."""
    client = await connect(raw_server)
    raw_server.send_frame(CLOSE, b"")
    await asyncio.wait_for(client.transport.wait_disconnected(), TIMEOUT)
    assert client.listener.close_code == 1005 and client.listener.close_reason == ""
    await until(lambda: raw_server.disconnected, "the server saw the client go")
    closes = [p for op, p, _, _ in raw_server.frames if op == CLOSE]
    assert closes and closes[0][:2] == struct.pack("!H", 1000), "never code 0 on the wire"


RSV1 = 0x40


@pytest.mark.parametrize("frames", [
    [(CONT, TR, True)],                                  # nothing to continue
    [(TEXT, TR[:10], False), (TEXT, TR, True)],          # a data frame inside a fragmented message
    [(TEXT | RSV1, TR, True), (TEXT, TR, True)],         # RSV1 with no extension; nothing after it counts
], ids=["orphan_continuation", "data_inside_fragmented", "rsv1_without_extension"])
async def test_protocol_errors_close_with_1002(raw_server: RawServer, frames: list[tuple[int, bytes, bool]],
                                               caplog: pytest.LogCaptureFixture) -> None:
    client = await connect(raw_server)
    with caplog.at_level(logging.ERROR, logger="drbfast"):
        raw_server.send_raw(b"".join(server_frame(op, payload, fin) for op, payload, fin in frames))
        await asyncio.wait_for(client.transport.wait_disconnected(), TIMEOUT)
    await until(lambda: raw_server.disconnected, "the server saw the client go")
    closes = [p for op, p, _, _ in raw_server.frames if op == CLOSE]
    assert closes and closes[0][:2] == struct.pack("!H", 1002)
    assert raw_server.texts() == [], "nothing answered"
    assert client.hook.seen == []
    assert any(r.name.startswith("drbfast") for r in caplog.records)


# ------------------------------------------------------------------ slow path, limits


DEEP = b"[" * 300 + b"]" * 300  # deeper than the fast matcher's stack: it defers (UNKNOWN)


async def test_slow_path_decides_deferred_messages(server: ServerBase) -> None:
    """Messages the fast matcher defers on go to the oracle before anything is answered
    or delivered: a deep test_request is answered, a deep notification delivered."""
    client = await connect(server)
    deep_tr = b'{"x":' + DEEP + b',"method":"heartbeat","params":{"type":"test_request"}}'
    deep_hb = b'{"params":{"type":"heartbeat","x":' + DEEP + b'},"method":"heartbeat"}'
    deep_note = b'{"jsonrpc":"2.0","params":{"data":' + DEEP + b'},"method":"subscription"}'
    huge_int = b'{"params":{"type":"test_request"},"method":"heartbeat","x":' + b"9" * 5000 + b"}"  # invalid for Python
    server.send_text(deep_tr, deep_hb, deep_note, huge_int, TR)
    await until(lambda: len(client.hook.seen) == 2, "the deferred OTHER messages")
    await server.barrier()
    assert client.hook.payloads() == [deep_note, huge_int]
    assert server.texts() == [expected_answer(1), expected_answer(2)]
    s = client.listener.stats
    assert (s.slow_path, s.test_requests, s.heartbeats, s.messages, s.frame_errors) == (4, 2, 1, 2, 0)
    await client.close()


async def test_slow_path_engine_error_reply_is_counted_as_error(picows_server: PicowsServer) -> None:
    """An engine reply that carries an error is counted in test_reply_errors, also when
    the fast matcher deferred it (here: a deeply nested error.data)."""
    client = await connect(picows_server)
    seq = client.listener.send_probe()
    deep_error = ('{"jsonrpc":"2.0","id":"%s","error":{"code":10028,"message":"too_many_requests","data":' % engine_id(seq)).encode() + DEEP + b"}}"
    picows_server.send_text(deep_error)
    await until(lambda: client.listener.stats.test_replies == 1, "the reply")
    s = client.listener.stats
    assert s.slow_path == 1 and client.hook.seen == []
    assert s.test_reply_errors == 1, "an error reply taken by the slow path was not counted as an error"
    await client.close()


async def test_fragmented_message_over_the_limit_closes_with_1009(raw_server: RawServer) -> None:
    client = await connect(raw_server, max_message_size=100)
    raw_server.send_frame(TEXT, b"x" * 60, fin=False)
    raw_server.send_frame(CONT, b"x" * 60, fin=True)
    await asyncio.wait_for(client.transport.wait_disconnected(), TIMEOUT)
    await until(lambda: raw_server.disconnected, "the server saw the client go")
    closes = [p for op, p, _, _ in raw_server.frames if op == CLOSE]
    assert closes and closes[0][:2] == struct.pack("!H", 1009)
    assert client.hook.seen == []
