"""drbfast.websockets as a drop-in for the websockets client.

The server is a few lines of ``websockets.asyncio.server`` on 127.0.0.1 (an independent
WebSocket stack): it sends Deribit heartbeat traffic interleaved with ordinary messages,
answers ``public/test`` and ``public/set_heartbeat``, and records everything the client
sent. Two tests also run against the embedded emulator.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import picows.websockets.exceptions as picows_exc
import pytest
import websockets as upstream
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from drbfast import InvalidParams
from drbfast import websockets as drop_in
from drbfast.frames import ENGINE_ID_PREFIX

from .conftest import TIMEOUT

HEARTBEAT = '{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
TEST_REQUEST = '{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
DONE = '{"jsonrpc":"2.0","method":"done"}'


def is_heartbeat_traffic(message: str | bytes) -> bool:
    """What only the engine should ever see."""
    if isinstance(message, bytes):
        return False
    msg = json.loads(message)
    return msg.get("method") == "heartbeat" or str(msg.get("id", "")).startswith(ENGINE_ID_PREFIX)


async def wait_until(cond: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


class Peer:
    """One server-side connection: what it received, the public/test ids it got."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.received: list[str | bytes] = []
        self.tests: list[Any] = []
        self.set_heartbeat: list[dict[str, Any]] = []
        self.closed = asyncio.Event()


Script = Callable[[Peer], Awaitable[None]]


class FakeDeribit:
    """A tiny Deribit-like server. ``scripts[i]`` runs on the i-th connection (the last
    one on any further connection), concurrently with the reader that answers
    ``public/test`` and ``public/set_heartbeat`` and echoes other requests."""

    def __init__(self, *scripts: Script, heartbeat_error: dict[str, Any] | None = None,
                 answer_set_heartbeat: bool = True) -> None:
        self.scripts = scripts
        self.heartbeat_error = heartbeat_error
        self.answer_set_heartbeat = answer_set_heartbeat
        self.peers: list[Peer] = []
        self.url = ""

    async def __aenter__(self) -> FakeDeribit:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None, ping_interval=None,
                                   max_queue=None, process_request=self._process_request)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws/api/v2"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), TIMEOUT)

    @staticmethod
    def _process_request(ws: ServerConnection, request: Request) -> Response | None:
        if request.path == "/forbidden":
            return Response(403, "Forbidden", Headers(), b"no")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        peer = Peer(ws)
        index = len(self.peers)
        self.peers.append(peer)
        reader = asyncio.create_task(self._read(peer))
        try:
            if self.scripts:
                await self.scripts[min(index, len(self.scripts) - 1)](peer)
            await reader
        except Exception:
            pass
        finally:
            reader.cancel()
            peer.closed.set()

    async def _read(self, peer: Peer) -> None:
        try:
            async for message in peer.ws:
                peer.received.append(message)
                if isinstance(message, bytes):
                    continue
                try:
                    msg = json.loads(message)
                except ValueError:
                    continue
                if not isinstance(msg, dict) or "id" not in msg:
                    continue
                method = msg.get("method")
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"]}
                if method == "public/test":
                    peer.tests.append(msg["id"])
                    reply["result"] = {"version": "1.2.26"}
                elif method == "public/set_heartbeat":
                    peer.set_heartbeat.append(msg)
                    if not self.answer_set_heartbeat:
                        continue
                    if self.heartbeat_error is not None:
                        reply["error"] = self.heartbeat_error
                    else:
                        reply["result"] = "ok"
                else:
                    reply["result"] = {"echo": msg.get("params")}
                await peer.ws.send(json.dumps(reply))
        except upstream.ConnectionClosed:
            pass


async def recv_until_done(ws: Any, limit: int = 100_000) -> list[str | bytes]:
    got: list[str | bytes] = []
    for _ in range(limit):
        message = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if message == DONE:
            return got
        got.append(message)
    raise AssertionError("no DONE")


def interleaved(n: int) -> tuple[list[str | bytes], list[str | bytes]]:
    """(what the server sends, what the user must receive): user messages in text and
    binary with heartbeats and test_requests between them."""
    sent: list[str | bytes] = []
    user: list[str | bytes] = []
    for i in range(n):
        text = json.dumps({"jsonrpc": "2.0", "method": "subscription",
                           "params": {"channel": "ticker.BTC-PERPETUAL.raw", "data": {"i": i, "s": "é✓"}}})
        sent.append(text)
        user.append(text)
        if i % 7 == 0:
            sent.append(HEARTBEAT)
        if i % 10 == 0:
            sent.append(TEST_REQUEST)
        if i % 25 == 0:
            blob = bytes([i % 256, 0, 255]) + b'{"method":"heartbeat"}'  # binary is never classified
            sent.append(blob)
            user.append(blob)
    return sent, user


def send_all(messages: list[str | bytes], then: str | None = DONE) -> Script:
    async def script(peer: Peer) -> None:
        for m in messages:
            await peer.ws.send(m)
        if then is not None:
            await peer.ws.send(then)
    return script


# ------------------------------------------------------------------ heartbeat traffic


async def test_recv_never_returns_heartbeat_traffic() -> None:
    sent, user = interleaved(300)
    n_tests = sent.count(TEST_REQUEST)
    async with FakeDeribit(send_all(sent)) as server, drop_in.connect(server.url) as ws:
        got = await recv_until_done(ws)
        assert got == user  # order, type (str/bytes) and bytes untouched
        peer = server.peers[0]
        await wait_until(lambda: len(peer.tests) == n_tests)
        await asyncio.sleep(0.05)  # the public/test replies come back; none may surface
        assert len(peer.tests) == n_tests, "exactly one public/test per test_request"
        assert len(set(peer.tests)) == n_tests and all(t.startswith(ENGINE_ID_PREFIX) for t in peer.tests)
        assert ws.queue_size == 0
        stats = ws.heartbeat_stats
        assert (stats.test_requests, stats.replies_sent) == (n_tests, n_tests)
        assert stats.heartbeats == sent.count(HEARTBEAT) and stats.test_replies == n_tests


async def test_async_for_never_returns_heartbeat_traffic_and_ends_on_normal_close() -> None:
    sent, user = interleaved(100)

    async def script(peer: Peer) -> None:
        await send_all(sent, then=None)(peer)
        await wait_until(lambda: len(peer.tests) == sent.count(TEST_REQUEST))
        await peer.ws.close(1000, "bye")

    async with FakeDeribit(script) as server:
        ws = await drop_in.connect(server.url)

        async def consume() -> list[str | bytes]:
            return [m async for m in ws]

        assert await asyncio.wait_for(consume(), TIMEOUT) == user
        assert (ws.close_code, ws.close_reason, ws.state) == (1000, "bye", drop_in.State.CLOSED)


async def test_test_request_answered_while_the_user_is_not_reading() -> None:
    async def script(peer: Peer) -> None:
        for i in range(500):
            await peer.ws.send(json.dumps({"i": i}))
        await peer.ws.send(TEST_REQUEST)

    async with FakeDeribit(script) as server, drop_in.connect(server.url) as ws:
        await wait_until(lambda: bool(server.peers) and len(server.peers[0].tests) == 1)
        # the user has read nothing yet; the listener may still be handing on the last
        # of the 500 in slices (the test_request behind them was answered first)
        await wait_until(lambda: ws.queue_size == 500)
        for i in range(500):
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == {"i": i}


async def test_users_own_public_test_and_heartbeat_lookalikes_pass_through() -> None:
    async with FakeDeribit() as server, drop_in.connect(server.url) as ws:
        mine = '{"jsonrpc":"2.0","id":"x","method":"public/test","params":{}}'
        await ws.send(mine)
        reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert json.loads(reply) == {"jsonrpc": "2.0", "id": "x", "result": {"version": "1.2.26"}}
        assert server.peers[0].received == [mine]


# ------------------------------------------------------------------ set_heartbeat


async def test_heartbeat_option_sends_set_heartbeat_first_and_hides_its_reply() -> None:
    async with FakeDeribit(send_all(["first"])) as server, drop_in.connect(server.url, heartbeat=10) as ws:
        peer = server.peers[0]
        assert peer.received[0] == ('{"jsonrpc":"2.0","id":"drbfast-set_heartbeat",'
                                    '"method":"public/set_heartbeat","params":{"interval":10}}')
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "first"
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == DONE


async def test_heartbeat_refused_raises_from_connect() -> None:
    error = {"code": -32602, "message": "Invalid params", "data": {"param": "interval", "reason": "must be >= 10"}}
    async with FakeDeribit(heartbeat_error=error) as server:
        with pytest.raises(InvalidParams) as info:
            await drop_in.connect(server.url, heartbeat=1)
        assert info.value.code == -32602 and info.value.data["param"] == "interval"
        await asyncio.wait_for(server.peers[0].closed.wait(), TIMEOUT)  # and the socket is closed


async def test_heartbeat_without_reply_times_out() -> None:
    async with FakeDeribit(answer_set_heartbeat=False) as server:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await drop_in.connect(server.url, heartbeat=10, open_timeout=0.3)
        assert time.monotonic() - t0 < 2
        await asyncio.wait_for(server.peers[0].closed.wait(), TIMEOUT)


async def test_heartbeat_against_the_emulator(emulator: Any) -> None:
    async with drop_in.connect(emulator.url, heartbeat=0.1) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "public/subscribe",
                                  "params": {"channels": ["ticker.BTC-PERPETUAL.100ms"]}}))
        seen = []
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            seen.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert not any(is_heartbeat_traffic(m) for m in seen)
        assert json.loads(seen[0])["id"] == 7
        stats = ws.heartbeat_stats
        assert stats.test_requests >= 3 and stats.replies_sent == stats.test_requests


async def test_heartbeat_refused_by_the_emulator(emulator: Any) -> None:
    with pytest.raises(InvalidParams):
        await drop_in.connect(emulator.url, heartbeat=0.001)


# ------------------------------------------------------------------ sending


async def test_send_passes_through_untouched() -> None:
    async with FakeDeribit() as server, drop_in.connect(server.url) as ws:
        await ws.send('{"jsonrpc":"2.0","method":"private/buy","params":{"label":"é✓"}}')
        await ws.send(b"\x00\x01\xff")
        await ws.send(bytearray(b"ba"))
        await ws.send(memoryview(b"mv"))
        await ws.send(b"as text", text=True)
        await ws.send("as binary", text=False)
        await ws.send(["frag", "mented"])
        await ws.send([b"bin", b"frags"])

        async def parts() -> AsyncIterator[str]:
            yield "async "
            yield "parts"

        await ws.send(parts())
        with pytest.raises(TypeError):
            await ws.send({"a": 1})
        peer = server.peers[0]
        await wait_until(lambda: len(peer.received) == 9)
        assert peer.received == [
            '{"jsonrpc":"2.0","method":"private/buy","params":{"label":"é✓"}}',
            b"\x00\x01\xff", b"ba", b"mv", "as text", b"as binary", "fragmented", b"binfrags",
            "async parts",
        ]


async def test_recv_decode() -> None:
    async with FakeDeribit(send_all(["text", b"\xc3\xa9", "t2", b"b2"])) as server, drop_in.connect(server.url) as ws:
        assert await asyncio.wait_for(ws.recv(decode=False), TIMEOUT) == b"text"
        assert await asyncio.wait_for(ws.recv(decode=True), TIMEOUT) == "é"
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "t2"
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"b2"


async def test_concurrent_recv_is_refused_and_cancelled_recv_loses_nothing() -> None:
    async def script(peer: Peer) -> None:
        await asyncio.sleep(0.2)
        await peer.ws.send("late")

    async with FakeDeribit(script) as server, drop_in.connect(server.url) as ws:
        first = asyncio.create_task(ws.recv())
        await asyncio.sleep(0.02)
        with pytest.raises(drop_in.ConcurrencyError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "late"


# ------------------------------------------------------------------ closing


async def test_normal_close_by_server_is_ok() -> None:
    async def script(peer: Peer) -> None:
        await peer.ws.send("a")
        await peer.ws.send(HEARTBEAT)
        await peer.ws.send("b")
        await peer.ws.close(1000, "bye")

    async with FakeDeribit(script) as server:
        ws = await drop_in.connect(server.url)
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        assert [m async for m in ws] == ["a", "b"]  # read after the close: still delivered
        assert (ws.close_code, ws.close_reason) == (1000, "bye")
        with pytest.raises(drop_in.ConnectionClosedOK) as info:
            await ws.recv()
        exc = info.value
        assert exc.rcvd == drop_in.Close(1000, "bye") and exc.sent == drop_in.Close(1000, "bye")
        assert exc.rcvd_then_sent is True
        with pytest.raises(upstream.ConnectionClosedOK):  # old `except websockets...` still works
            await ws.send("x")
        with pytest.raises(picows_exc.ConnectionClosed):
            await ws.recv()


async def test_client_close_is_ok_and_idempotent() -> None:
    async with FakeDeribit() as server:
        ws = await drop_in.connect(server.url)
        assert ws.state is upstream.protocol.State.OPEN
        assert ws.local_address[0] == "127.0.0.1" and ws.remote_address == server.peers[0].ws.local_address
        await asyncio.wait_for(ws.close(), TIMEOUT)
        await asyncio.wait_for(ws.close(), TIMEOUT)
        assert ws.state.name == "CLOSED" and ws.close_code == 1000
        with pytest.raises(drop_in.ConnectionClosedOK):
            await ws.recv()
        await asyncio.wait_for(server.peers[0].closed.wait(), TIMEOUT)
        assert server.peers[0].ws.close_code == 1000


async def _ending(connect: Any, url: str) -> tuple[list[Any], str, Any, int | None]:
    """User code for `websockets`: read until the connection ends, report how."""
    got: list[Any] = []
    async with connect(url) as ws:
        try:
            async for message in ws:
                got.append(message)
        except upstream.ConnectionClosed as exc:  # the old code's except clause
            rcvd = None if exc.rcvd is None else (exc.rcvd.code, exc.rcvd.reason)
            return got, type(exc).__name__, rcvd, ws.close_code
    return got, "ended", None, ws.close_code


@pytest.mark.parametrize("how", ["drop", "4000", "1001"])
async def test_ends_match_websockets(how: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.ws.send("a")
        await peer.ws.send(TEST_REQUEST)
        await peer.ws.send("b")
        await asyncio.sleep(0.05)
        if how == "drop":
            assert peer.ws.transport is not None
            peer.ws.transport.abort()
        else:
            await peer.ws.close(int(how), "heartbeat close" if how == "4000" else "going away")

    async with FakeDeribit(script) as server:
        theirs = await asyncio.wait_for(_ending(upstream.connect, server.url), TIMEOUT)
        ours = await asyncio.wait_for(_ending(drop_in.connect, server.url), TIMEOUT)
    assert ours[1:] == theirs[1:]
    assert ours[0] == ["a", "b"] and theirs[0] == ["a", TEST_REQUEST, "b"]
    expected = {"drop": ("ConnectionClosedError", None, 1006),
                "4000": ("ConnectionClosedError", (4000, "heartbeat close"), 4000),
                "1001": ("ended", None, 1001)}[how]
    assert ours[1:] == expected


async def test_connect_errors_match_websockets() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    for connect in (upstream.connect, drop_in.connect):
        with pytest.raises(OSError):
            await asyncio.wait_for(connect(f"ws://127.0.0.1:{port}/"), TIMEOUT)
        with pytest.raises(upstream.InvalidURI):
            await asyncio.wait_for(connect("http://127.0.0.1/"), TIMEOUT)
    async with FakeDeribit() as server:
        forbidden = server.url.replace("/ws/api/v2", "/forbidden")
        with pytest.raises(drop_in.InvalidStatus) as info:
            await asyncio.wait_for(drop_in.connect(forbidden), TIMEOUT)
        assert info.value.response.status_code == 403 and isinstance(info.value, upstream.InvalidStatus)


# ------------------------------------------------------------------ drop-in, side by side


async def user_code(connect: Any, url: str) -> list[Any]:
    """Code written for `websockets`: only the import changes."""
    out: list[Any] = []
    async with connect(url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/subscribe",
                                  "params": {"channels": ["ticker.BTC-PERPETUAL.raw"]}}))
        await ws.send(b"\x01raw")
        async for message in ws:
            if message == DONE:
                break
            out.append(json.loads(message) if isinstance(message, str) else message)
    return out


async def test_same_user_code_runs_on_websockets_and_drop_in() -> None:
    sent, _ = interleaved(60)

    async def script(peer: Peer) -> None:
        await wait_until(lambda: len(peer.received) >= 2)
        await send_all(sent)(peer)

    async with FakeDeribit(script) as server:
        theirs = await asyncio.wait_for(user_code(upstream.connect, server.url), TIMEOUT)
        ours = await asyncio.wait_for(user_code(drop_in.connect, server.url), TIMEOUT)
        their_sent, our_sent = server.peers[0].received, server.peers[1].received
    assert ours == [m for m in theirs if not (isinstance(m, dict) and m.get("method") == "heartbeat")]
    assert ours[0] == {"jsonrpc": "2.0", "id": 1, "result": {"echo": {"channels": ["ticker.BTC-PERPETUAL.raw"]}}}
    assert len(theirs) - len(ours) == sent.count(HEARTBEAT) + sent.count(TEST_REQUEST)
    assert our_sent[:2] == their_sent[:2]  # the user's frames, byte for byte
    assert [json.loads(m)["method"] for m in our_sent[2:]] == ["public/test"] * sent.count(TEST_REQUEST)


# ------------------------------------------------------------------ queue bound


async def test_queue_bound_pauses_reading_and_loses_nothing() -> None:
    pad = "x" * 2000
    count = 1500

    async def script(peer: Peer) -> None:
        for i in range(count):
            await peer.ws.send(json.dumps({"i": i, "pad": pad}))
        await peer.ws.send(DONE)

    async with FakeDeribit(script) as server, drop_in.connect(server.url, max_queue=(50, 10)) as ws:
        await asyncio.sleep(0.3)  # the user does not read
        assert ws.queue_pauses >= 1
        # bounded: the mark plus what one socket read brought (3 MB were sent)
        assert ws.queue_size < count // 2
        got = await recv_until_done(ws, limit=count + 1)
        assert [json.loads(m)["i"] for m in got] == list(range(count))
        assert ws.queue_peak < count // 2 and ws.heartbeat_stats.dropped == 0
        assert server.peers


# ------------------------------------------------------------------ reconnect, ping, types


async def test_async_for_connect_reconnects_after_a_drop() -> None:
    async def first(peer: Peer) -> None:
        await peer.ws.send("first")
        await asyncio.sleep(0.02)
        assert peer.ws.transport is not None
        peer.ws.transport.abort()

    async def second(peer: Peer) -> None:
        await peer.ws.send("second")
        await peer.ws.close(1000)

    def fast() -> Any:
        while True:
            yield 0.01

    async with FakeDeribit(first, second) as server:
        seen: list[Any] = []
        errors = 0

        async def run() -> None:
            nonlocal errors
            async for ws in drop_in.connect(server.url, reconnect_delays=fast):
                try:
                    async for message in ws:
                        seen.append(message)
                except drop_in.ConnectionClosedError:
                    errors += 1
                    continue
                break

        await asyncio.wait_for(run(), TIMEOUT)
        assert seen == ["first", "second"] and errors == 1 and len(server.peers) == 2

        async def fatal() -> None:
            async for _ in drop_in.connect(server.url.replace("/ws/api/v2", "/forbidden"), reconnect_delays=fast):
                raise AssertionError("a 403 is not retried")

        with pytest.raises(drop_in.InvalidStatus):
            await asyncio.wait_for(fatal(), TIMEOUT)


async def test_ping_measures_latency() -> None:
    async with FakeDeribit() as server, drop_in.connect(server.url) as ws:
        pong = await ws.ping()
        latency = await asyncio.wait_for(pong, TIMEOUT)
        assert 0 < latency < TIMEOUT and ws.latency == latency


def test_exception_classes_are_catchable_three_ways() -> None:
    for name in ("WebSocketException", "ConnectionClosed", "ConnectionClosedOK", "ConnectionClosedError",
                 "InvalidURI", "InvalidHandshake", "InvalidMessage", "InvalidStatus", "ConcurrencyError"):
        ours = getattr(drop_in, name)
        assert issubclass(ours, getattr(upstream.exceptions, name)), name
        assert issubclass(ours, getattr(picows_exc, name)), name
        assert getattr(drop_in.exceptions, name) is ours
    assert issubclass(drop_in.ConnectionClosedOK, drop_in.ConnectionClosed)
    assert issubclass(drop_in.InvalidStatus, drop_in.InvalidHandshake)
    exc = drop_in.ConnectionClosedError(None, drop_in.Close(1000, ""))
    assert str(exc) == "sent 1000 (OK); no close frame received" and exc.code == 1006


def test_connect_argument_checks() -> None:
    with pytest.raises(drop_in.InvalidURI):
        drop_in.connect("http://example.com/")
    with pytest.raises(ValueError):
        drop_in.connect("ws://example.com/", ssl=__import__("ssl").create_default_context())
    with pytest.raises(ValueError):
        drop_in.connect("ws://example.com/", heartbeat=0)
