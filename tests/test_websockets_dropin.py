"""drbfast.websockets where it used to differ from websockets in ways real programs hit:
missing names, a handshake cut short, keepalive settings, hostile frames, logging, the
byte-bounded queue and its overflow policies, liveness, and long reconnect backoffs.

Servers: the embedded emulator (Deribit's protocol) and a far end driven by
websockets' sans-I/O ServerProtocol (tests/websockets_upstream/remote.py) for frames
a Deribit server would never send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import time
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
import websockets as upstream
import websockets.exceptions as upstream_exc

from drbfast import websockets as drop_in
from drbfast.emulator import Emulator, EmulatorConfig
from drbfast.websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidMessage,
    InvalidStatusCode,
    NegotiationError,
)

from .conftest import TIMEOUT
from .websockets_upstream.remote import Remote, frame

LEGACY_NAMES = ("AbortHandshake", "InvalidStatusCode", "RedirectHandshake", "WebSocketProtocolError")


async def wait_until(cond: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


# ------------------------------------------------------------------ names

def test_every_websockets_exception_name_is_here_and_catchable_as_theirs() -> None:
    for name in [*upstream_exc.__all__, *LEGACY_NAMES]:
        ours = getattr(drop_in.exceptions, name)
        assert getattr(drop_in, name) is ours, name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            theirs = getattr(upstream_exc, name)
        assert issubclass(ours, theirs), name
    # legacy code catches a refused upgrade as InvalidStatusCode, new code as InvalidStatus
    assert issubclass(drop_in.InvalidStatus, drop_in.InvalidStatusCode)
    assert drop_in.WebSocketClientProtocol is drop_in.ClientConnection


def test_submodules_import_as_in_websockets() -> None:
    code = textwrap.dedent("""
        from drbfast.websockets.asyncio.client import ClientConnection, connect, unix_connect, process_exception
        from drbfast.websockets.asyncio.connection import Connection
        from drbfast.websockets.client import ClientProtocol, backoff
        from drbfast.websockets.protocol import State
        from drbfast.websockets.frames import Close, CloseCode
        from drbfast.websockets.typing import Data, Subprotocol
        from drbfast.websockets.uri import parse_uri
        from drbfast.websockets.legacy.client import WebSocketClientProtocol, connect as legacy_connect
        from drbfast.websockets.legacy.exceptions import InvalidStatusCode
        from drbfast.websockets.legacy.protocol import WebSocketCommonProtocol
        from drbfast.websockets.exceptions import PayloadTooBig, ProtocolError, SecurityError
        assert WebSocketClientProtocol is ClientConnection is Connection is WebSocketCommonProtocol
        assert legacy_connect is connect and str(Close(1000, "")) == "1000 (OK)"
        assert State.OPEN.name == "OPEN" and CloseCode.INVALID_DATA == 1007
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_reconnect_loop_with_legacy_except_clause() -> None:
    """``except (ConnectionClosed, InvalidStatusCode)`` used to raise AttributeError
    the moment the connection closed."""
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        ends: list[int | None] = []
        for _ in range(2):
            try:
                async with drop_in.connect(emu.url) as ws:
                    assert ws.open and not ws.closed
                    await wait_until(lambda: len(emu.connections) > 0)
                    emu.faults.close(code=1001, reason="maintenance")
                    while ws.open:
                        await asyncio.wait_for(ws.recv(), TIMEOUT)
            except (drop_in.exceptions.ConnectionClosed, drop_in.exceptions.InvalidStatusCode) as exc:
                assert ws.closed and not ws.open
                ends.append(exc.rcvd.code if isinstance(exc, ConnectionClosed) and exc.rcvd else None)
        assert ends == [1001, 1001]


async def test_refused_upgrade_is_invalid_status_code_too() -> None:
    from websockets.asyncio.server import serve
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0,
                     process_request=lambda c, r: Response(403, "Forbidden", Headers(), b"no")) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(InvalidStatusCode) as raised:
            await drop_in.connect(f"ws://127.0.0.1:{port}/")
    assert raised.value.status_code == 403 and raised.value.response.status_code == 403
    assert str(raised.value) == "server rejected WebSocket connection: HTTP 403"


# ------------------------------------------------------------------ handshake cut short

async def test_handshake_eof_is_invalid_message_and_async_for_retries() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        emu.faults.reject_handshakes(1)
        with pytest.raises(InvalidMessage) as raised:
            await drop_in.connect(emu.url)
        assert isinstance(raised.value.__cause__, EOFError)
        assert drop_in.process_exception(raised.value) is None  # retryable

        emu.faults.reject_handshakes(2)
        attempts = 0
        async for ws in drop_in.connect(emu.url, reconnect_delays=lambda: iter([0.01] * 10)):
            attempts += 1
            assert ws.open
            break
        assert emu.faults.handshakes_rejected == 3 and attempts == 1


def test_handshake_eof_under_python_O() -> None:
    """Assertions are gone under -O: the failure must still be InvalidMessage, not a
    connection that says OPEN and whose recv() never returns."""
    code = textwrap.dedent("""
        import asyncio
        from drbfast import websockets
        from drbfast.emulator import Emulator

        async def main():
            async with Emulator() as emu:
                emu.faults.reject_handshakes(1)
                try:
                    await websockets.connect(emu.url, open_timeout=5)
                except websockets.InvalidMessage as exc:
                    print("InvalidMessage", type(exc.__cause__).__name__)

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "InvalidMessage EOFError", out.stderr[-2000:]


@pytest.mark.parametrize("how", ["open_timeout", "cancelled"])
async def test_a_handshake_given_up_leaves_no_socket_behind(how: str) -> None:
    """A server that never answers the upgrade: when connect() gives up (its own
    open_timeout, or the caller's wait_for) the server sees the socket close."""
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        # (the caller's wait_for raises asyncio.TimeoutError, not yet the builtin before 3.11)
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            if how == "open_timeout":
                await drop_in.connect(url, open_timeout=0.1)
            else:
                await asyncio.wait_for(drop_in.connect(url, open_timeout=None), 0.1)
        await asyncio.wait_for(closed.wait(), TIMEOUT)


# ------------------------------------------------------------------ proxies

class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that records the targets it was asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> ConnectProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), TIMEOUT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.writers += [writer, up_writer]
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_proxy_from_the_environment_is_used_unless_proxy_none(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ConnectProxy() as proxy, Remote() as remote:
        monkeypatch.setenv("https_proxy", proxy.url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        async with drop_in.connect(remote.url) as ws:  # proxy=True: the environment's
            await ws.send("through")
            await remote.wait_frames(1)
        assert proxy.targets == [remote.url.split("/")[2]]
        async with drop_in.connect(remote.url, proxy=None) as ws:
            await ws.send("direct")
        assert len(proxy.targets) == 1


# ------------------------------------------------------------------ URIs

@given(st.text(max_size=40))
def test_parse_uri_refuses_anything_else_with_invalid_uri(text: str) -> None:
    try:
        parsed = drop_in.uri.parse_uri(text)
    except drop_in.InvalidURI:
        return
    assert text.startswith(("ws://", "wss://")) and parsed.host


@given(st.sampled_from(["ws", "wss"]), st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,5})?", fullmatch=True),
       st.one_of(st.none(), st.integers(1, 65535)), st.from_regex(r"(/[a-zA-Z0-9_.~-]{0,8}){0,3}", fullmatch=True),
       st.from_regex(r"([a-z]=[0-9]{1,3})?", fullmatch=True))
def test_parse_uri_reads_host_port_and_resource(scheme: str, host: str, port: int | None, path: str,
                                                query: str) -> None:
    text = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}{'?' + query if query else ''}"
    parsed = drop_in.uri.parse_uri(text)
    assert parsed.secure == (scheme == "wss") and parsed.host == host
    assert parsed.port == (port if port is not None else (443 if scheme == "wss" else 80))
    assert parsed.resource_name == (path or "/") + (f"?{query}" if query else "")


# ------------------------------------------------------------------ keepalive settings

@pytest.mark.parametrize("interval, timeout", [(10, 20), (10, 60), (180, 600), (0.05, 60), (0.05, None)])
async def test_any_ping_interval_and_timeout_pair_connects(interval: float, timeout: float | None) -> None:
    async with Remote() as remote:
        async with drop_in.connect(remote.url, ping_interval=interval, ping_timeout=timeout) as ws:
            await asyncio.sleep(0.15)
            assert ws.open
            assert (ws.latency > 0) == (interval < 0.15)  # keepalive measures latency


# ------------------------------------------------------------------ hostile input

async def test_invalid_utf8_closes_1007_after_delivering_what_came_before() -> None:
    async with Remote() as remote:
        async with drop_in.connect(remote.url) as ws:
            await remote.connected.wait()
            remote.send_raw(frame(1, b"fine") + frame(1, b"\xff\xfe bad") + frame(1, b"never"))
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "fine"
            with pytest.raises(ConnectionClosedError) as raised:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert raised.value.sent is not None and raised.value.sent.code == 1007
        assert raised.value.sent.reason == "invalid start byte at position 0"
        await asyncio.wait_for(remote.eof.wait(), TIMEOUT)  # the far end has read all we sent
    closes = [f for f in remote.frames if f.opcode.name == "CLOSE"]
    assert closes and closes[0].data[:2] == (1007).to_bytes(2, "big")


async def test_empty_close_frame_is_1005_and_ok() -> None:
    async with Remote() as remote:
        async with drop_in.connect(remote.url) as ws:
            await remote.connected.wait()
            remote.send_raw(frame(8, b""))
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert ws.close_code == 1005 and ws.close_reason == ""


@pytest.mark.parametrize("fragmented", [False, True])
async def test_message_over_max_size_is_never_delivered(fragmented: bool) -> None:
    async with Remote() as remote:
        async with drop_in.connect(remote.url, max_size=100) as ws:
            await remote.connected.wait()
            big = (frame(1, b"x" * 60, fin=False) + frame(0, b"x" * 60)) if fragmented else frame(1, b"x" * 200)
            remote.send_raw(frame(1, b"small") + big + frame(1, b"after"))
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "small"
            with pytest.raises(ConnectionClosedError) as raised:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert raised.value.sent is not None and raised.value.sent.code == 1009


async def test_server_forcing_an_extension_fails_the_handshake() -> None:
    async with Remote(response_headers={"Sec-WebSocket-Extensions": "permessage-deflate"}) as remote:
        with pytest.raises(NegotiationError) as raised:
            await drop_in.connect(remote.url)
        assert str(raised.value) == "no extensions supported"
        await asyncio.wait_for(remote.eof.wait(), TIMEOUT)  # and the socket is closed


async def test_server_choosing_a_subprotocol_nobody_offered_fails() -> None:
    async with Remote(response_headers={"Sec-WebSocket-Protocol": "chat"}) as remote:
        with pytest.raises(NegotiationError):
            await drop_in.connect(remote.url)
        async with drop_in.connect(remote.url, subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"


def test_unix_sockets_refused_with_value_error() -> None:
    import socket

    async def main() -> None:
        with pytest.raises(ValueError, match="Unix socket"):
            await drop_in.unix_connect("/tmp/nothing-listens-here")
        left, right = socket.socketpair()
        with left, right, pytest.raises(ValueError, match="Unix socket"):
            await drop_in.connect("ws://localhost/", sock=left)
    asyncio.run(main())


# ------------------------------------------------------------------ logging

async def test_logs_as_websockets_client_without_info_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with Remote() as remote:
        async with drop_in.connect(remote.url) as ws:
            assert ws.logger.name == "websockets.client"
            await ws.send("x")
    ours = [r for r in caplog.records if r.levelno >= logging.INFO and not r.name.startswith("websockets.server")]
    assert ours == []


# ------------------------------------------------------------------ queue bounds

async def test_byte_bound_pauses_reading_and_loses_nothing() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url, max_queue=None, max_queue_bytes=(50_000, 10_000)) as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            result = await emu.faults.flood(count=2_000, timeout=3)
            await wait_until(lambda: ws.queue_pauses > 0)
            # bounded: the bound plus what was already read when reading paused
            assert ws.queue_bytes < 50_000 + 600_000
            ids = []
            for _ in range(result.sent):
                msg = await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert isinstance(msg, str)
                ids.append(msg.count("change_id"))
            assert len(ids) == result.sent and ws.dropped == 0


async def test_drop_mode_keeps_reading_and_answering_test_requests() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url, max_queue_bytes=(100_000, None), overflow="drop") as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            result = await emu.faults.flood(count=20_000, test_request_every=200, timeout=20)
            # nobody read anything: every test_request was answered all the same
            assert result.test_requests == 100 and len(result.rtts_ns) == 100
            assert ws.queue_pauses == 0 and ws.dropped > 0 and ws.queue_bytes <= 100_000
            # the listener hands on what it read in slices: wait for the last of them
            await wait_until(lambda: ws.dropped + ws.queue_size == result.sent)
            assert ws.heartbeat_stats.test_requests == 100
            # what is left is the newest, in order, and no heartbeat traffic among it
            left = [await ws.recv() for _ in range(ws.queue_size)]
            assert all('"test_request"' not in m for m in left)


async def test_slow_reader_in_drop_mode_sees_the_newest() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url, max_queue=50, overflow="drop") as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            flood = asyncio.create_task(emu.faults.flood(count=5_000, test_request_every=100, timeout=20))
            read = 0
            while not flood.done():
                await asyncio.wait_for(ws.recv(), TIMEOUT)
                read += 1
                await asyncio.sleep(0.001)  # the reader is slower than the feed
            result = await flood
            assert len(result.rtts_ns) == result.test_requests == 50
            assert ws.queue_size <= 50 and ws.dropped > 0 and read > 0


async def test_pause_mode_answers_test_requests_once_reading_resumes() -> None:
    """With ``overflow="pause"`` a test_request waits in the kernel while reading is
    paused, and is answered as soon as the reader has caught up enough to resume."""
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url, max_queue=(200, 50), max_queue_bytes=None) as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            flood = asyncio.create_task(emu.faults.flood(count=5_000, test_request_every=100, timeout=20))
            await wait_until(lambda: ws.queue_pauses > 0)
            answered_while_paused = ws.heartbeat_stats.replies_sent
            for _ in range(5_000):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            result = await flood
            assert len(result.rtts_ns) == result.test_requests == 50
            assert ws.heartbeat_stats.replies_sent == 50 > answered_while_paused
            assert ws.dropped == 0 and ws.queue_peak < 5_000


def test_queue_bound_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        drop_in.connect("ws://localhost/", max_queue_bytes=0)
    with pytest.raises(ValueError):
        drop_in.connect("ws://localhost/", max_queue_bytes=(10, 20))
    with pytest.raises(ValueError):
        drop_in.connect("ws://localhost/", overflow="block")  # type: ignore[arg-type]


# ------------------------------------------------------------------ liveness

async def test_last_heartbeat_tells_a_quiet_connection_is_alive() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url) as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            assert ws.last_heartbeat is None
            before = time.monotonic()
            emu.faults.send_test_requests(count=1)
            await wait_until(lambda: ws.last_heartbeat is not None)
            assert before <= ws.last_heartbeat <= time.monotonic()  # type: ignore[operator]
            assert ws.heartbeat_stats.test_requests == 1 and ws.queue_size == 0


async def test_opt_in_copies_of_heartbeats_reach_recv() -> None:
    """For code like ``await wait_for(ws.recv(), 2 * interval)`` that reconnects a
    quiet connection: with ``deliver_heartbeats=True`` it sees a copy of each
    test_request the listener has already answered."""
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url, deliver_heartbeats=True) as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            emu.faults.send_test_requests(count=3, rate_hz=50)
            copies = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(3)]
            assert copies == [{"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}] * 3
            assert ws.heartbeat_stats.replies_sent == 3  # answered by the listener, not by us
            await wait_until(lambda: len(emu.connections[0].test_request_rtts_ns) == 3)


async def test_heartbeat_copies_keep_their_place_among_messages() -> None:
    """The copy is the frame Deribit sent, handed over where it arrived: between the
    message before it and the one after it, however many are queued."""
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url, deliver_heartbeats=True) as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            conn = emu.connections[0]
            for i in range(50):
                emu.faults.send_fragmented(json.dumps({"jsonrpc": "2.0", "method": "subscription",
                                                       "params": {"channel": "x", "data": i}}).encode(), parts=1, conn=conn)
            await emu.faults.send_test_requests(conn, count=1)  # sent once the task has run
            emu.faults.send_fragmented(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"x","data":50}}',
                                       parts=1, conn=conn)
            got = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(52)]
            assert [m["params"].get("data") for m in got] == list(range(50)) + [None, 50]
            assert got[50]["params"] == {"type": "test_request"}
            await wait_until(lambda: len(conn.test_request_rtts_ns) == 1)


async def test_without_the_option_heartbeats_never_reach_recv() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1)) as emu:
        async with drop_in.connect(emu.url) as ws:
            await wait_until(lambda: len(emu.connections) > 0)
            emu.faults.send_test_requests(count=3, rate_hz=50)
            await wait_until(lambda: ws.heartbeat_stats.replies_sent == 3)
            emu.faults.send_fragmented(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"x","data":1}}', parts=1)
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["params"]["data"] == 1


# ------------------------------------------------------------------ backoff

def test_reconnect_delays_never_overflow() -> None:
    delays = drop_in.backoff(initial_delay=0.5, min_delay=0.25, max_delay=30.0, factor=2.0)
    first = next(delays)
    assert 0 <= first <= 0.5
    rest = [next(delays) for _ in range(10_000)]
    assert all(0 < d <= 30.0 for d in rest) and min(rest[-100:]) >= 15.0


def test_upstream_sanity() -> None:
    """The installed websockets is the one these tests compare against."""
    assert int(upstream.version.version.split(".")[0]) >= 13
