"""Closing a connection: the closing handshake (issue 18) and a clean exit on Ctrl-C
(issue 25), for ``drbfast.connect``, the websockets drop-in and the split client.

* A slow-reading server on a raw socket (a thread, so it can stop reading while the
  client writes): the client's close reaches it after every frame sent before it,
  the TCP connection ends with EOF, never a reset; a server that never answers the
  close frame gets the socket closed after the bound.
* Real programs in a subprocess against the emulator, stopped with SIGINT once data
  flows, under ``run_until_complete``, ``asyncio.run`` and a loop closed under a live
  connection: stderr holds the KeyboardInterrupt traceback and nothing else, and the
  emulator sees the socket close. ``websockets`` runs through the same check as the
  control.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import drbfast
import drbfast.client
from drbfast import websockets as dropin
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator
from drbfast.errors import ConnectionLost
from drbfast.gateway import connect_split

from .conftest import wait_until

TIMEOUT = 10.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 1, 8, 9, 10


# ------------------------------------------------------------------ a slow server


def _unmask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)
    return head + payload


class SlowServer(threading.Thread):
    """One WebSocket connection served on a raw socket. Every request is answered
    (as Deribit would); at the first large one the server stops reading for
    ``pause`` seconds, so what the client sends after it waits in the client's
    buffers. After the client's close frame: answered (``answer_close``) or not,
    then the socket is read to its end, recorded in ``ending``: ``"eof"`` (a clean
    close), ``"reset"`` or ``"timeout"``."""

    def __init__(self, pause: float = 1.0, answer_close: bool = True) -> None:
        super().__init__(daemon=True)
        self.pause = pause
        self.answer_close = answer_close
        self.sock = socket.socket()
        # A small receive window: the client's 960 KB cannot all sit in the kernel.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(TIMEOUT)
        self.url = f"ws://127.0.0.1:{self.sock.getsockname()[1]}/ws/api/v2"
        self.large = 0                       # large requests received
        self.close_payload: bytes | None = None
        self.after_close: list[int] = []     # opcodes of frames after the close frame
        self.ending: str | None = None
        self.close_seen_at = 0.0
        self.ended_at = 0.0
        self.error: BaseException | None = None

    def _exact(self, conn: socket.socket, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def _read_frame(self, conn: socket.socket) -> tuple[int, bytes]:
        b0, b1 = self._exact(conn, 2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._exact(conn, 2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._exact(conn, 8))
        key = self._exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
        return b0 & 0x0F, _unmask(self._exact(conn, n), key)

    def run(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError as exc:
            self.error = exc
            return
        conn.settimeout(TIMEOUT)
        try:
            self._serve(conn)
        except ConnectionResetError:
            self.ending = "reset"
        except (EOFError, OSError) as exc:
            self.ending = "timeout" if isinstance(exc, socket.timeout) else f"ended early: {exc!r}"
        finally:
            self.ended_at = time.monotonic()
            conn.close()
            self.sock.close()

    def _serve(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError
            request += chunk
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while True:
            opcode, payload = self._read_frame(conn)
            if opcode == CLOSE:
                self.close_payload = payload
                self.close_seen_at = time.monotonic()
                break
            if opcode == PING:
                conn.sendall(_frame(PONG, payload))
            if opcode != TEXT:
                continue
            msg = json.loads(payload)
            if len(payload) > 10_000:
                self.large += 1
                if self.large == 1:
                    time.sleep(self.pause)
                result: Any = "ok"
            else:
                result = {"version": "1.2.26"}
            if "id" in msg:
                conn.sendall(_frame(TEXT, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()))
        if self.answer_close:
            conn.sendall(_frame(CLOSE, self.close_payload))
        while True:
            data = conn.recv(65536)
            if not data:
                self.ending = "eof"
                return
            self.after_close.append(data[0] & 0x0F)


LARGE = "x" * 24_000


async def test_client_close_sends_everything_then_the_close_frame_and_never_resets() -> None:
    srv = SlowServer(pause=1.0)
    srv.start()
    client = await drbfast.connect(srv.url, heartbeat=None, credits=None, reconnect=False)
    calls = [asyncio.ensure_future(client.call("public/test", pad=LARGE)) for _ in range(40)]
    await asyncio.sleep(0)  # every call writes its request
    await asyncio.wait_for(client.close(), TIMEOUT)
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), TIMEOUT)
    assert all(isinstance(r, ConnectionLost) for r in results), results  # closing fails what is in flight
    srv.join(TIMEOUT)
    assert srv.large == 40, "every frame sent before close() reached the server"
    assert srv.close_payload is not None and srv.close_payload[:2] == struct.pack("!H", 1000)
    assert srv.after_close == []
    assert srv.ending == "eof", f"the TCP connection ended with {srv.ending}, not a clean close"


async def test_client_close_gives_up_on_a_silent_server_after_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drbfast.client, "DEFAULT_CLOSE_TIMEOUT", 0.5)
    srv = SlowServer(pause=0.0, answer_close=False)
    srv.start()
    client = await drbfast.connect(srv.url, heartbeat=None, credits=None, reconnect=False)
    transport = client._transport
    assert transport is not None
    t0 = time.monotonic()
    await asyncio.wait_for(client.close(), TIMEOUT)
    took = time.monotonic() - t0
    assert 0.4 < took < 3.0, took
    assert transport.is_disconnected, "the socket is closed when close() returns"
    srv.join(TIMEOUT)
    assert srv.close_payload is not None and srv.ending in ("eof", "reset")


async def test_dropin_close_sends_everything_then_the_close_frame_and_never_resets() -> None:
    srv = SlowServer(pause=1.0)
    srv.start()
    ws = await dropin.connect(srv.url, ping_interval=None)
    for i in range(40):
        await asyncio.wait_for(ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "public/test",
                                                   "params": {"pad": LARGE}})), TIMEOUT)
    await asyncio.wait_for(ws.close(), TIMEOUT)
    srv.join(TIMEOUT)
    assert srv.large == 40
    assert srv.close_payload is not None and srv.close_payload[:2] == struct.pack("!H", 1000)
    assert srv.ending == "eof", srv.ending
    assert ws.close_code == 1000
    replies = []
    async for message in ws:  # replies read while waiting for the close frame are kept
        replies.append(json.loads(message)["id"])
    assert replies == list(range(40))


async def test_dropin_close_gives_up_on_a_silent_server_after_close_timeout() -> None:
    srv = SlowServer(pause=0.0, answer_close=False)
    srv.start()
    ws = await dropin.connect(srv.url, ping_interval=None, close_timeout=0.5)
    t0 = time.monotonic()
    await asyncio.wait_for(ws.close(), TIMEOUT)
    assert 0.4 < time.monotonic() - t0 < 3.0
    assert ws.ws_transport is not None and ws.ws_transport.is_disconnected
    srv.join(TIMEOUT)
    assert srv.ending in ("eof", "reset")


# ------------------------------------------------------------------ replies at a disconnect


async def test_replies_received_before_a_disconnect_reach_their_callers() -> None:
    """300 replies in one burst behind a slow consumer (the listener hands over 8
    messages per pass), then the server's close: every caller gets its reply."""
    from .test_listener import RawServer, server_frame, until

    srv = RawServer()
    await srv.start()
    try:
        connecting = asyncio.ensure_future(drbfast.connect(srv.url, heartbeat=None, credits=None, reconnect=False,
                                                           listener_options={"slice_size": 8}))
        await srv.wait_connected()
        await until(lambda: len(srv.texts()) == 1, "hello")
        hello = json.loads(srv.texts()[0])
        srv.send_frame(TEXT, json.dumps({"jsonrpc": "2.0", "id": hello["id"], "result": {"version": "1"}}).encode())
        client = await asyncio.wait_for(connecting, TIMEOUT)
        calls = [asyncio.ensure_future(client.call("public/get_time")) for _ in range(300)]
        await until(lambda: len(srv.texts()) == 301, "300 requests")
        burst = b"".join(server_frame(TEXT, json.dumps({"jsonrpc": "2.0", "id": json.loads(t)["id"],
                                                         "result": 1000 + k}).encode())
                         for k, t in enumerate(srv.texts()[1:]))
        srv.send_raw(burst + server_frame(CLOSE, struct.pack("!H", 1000) + b"bye"))
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), TIMEOUT)
        assert results == [1000 + k for k in range(300)]
        await client.close()
    finally:
        await srv.stop()


# ------------------------------------------------------------------ cancellation, tasks


def _our_tasks() -> list[asyncio.Task[Any]]:
    """Pending tasks of the client side of drbfast (the emulator runs in this loop too)."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = code.co_filename.replace(os.sep, "/") if code is not None else ""
        if not task.done() and "/drbfast/" in where and "/emulator/" not in where:
            found.append(task)
    return found


async def test_cancelled_task_closes_with_1000_and_leaves_no_task(emulator: Emulator) -> None:
    async def session() -> None:
        async with drbfast.connect(emulator.url, heartbeat=None) as client:
            await client.subscribe("ticker.BTC-PERPETUAL.100ms")
            await asyncio.sleep(100)

    async def websockets_session() -> None:
        async with dropin.connect(emulator.url) as ws:
            async for _ in ws:
                pass

    for body in (session, websockets_session):
        n = len(emulator.history)
        task = asyncio.ensure_future(body())
        await wait_until(lambda: len(emulator.history) > n)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, TIMEOUT)
        conn = emulator.history[n]
        await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
        assert conn.close_code == 1000 if body is session else conn.close_code in (1000, 1011)
        await wait_until(lambda: not _our_tasks(), timeout=2.0)


async def test_split_client_close_ends_both_sessions_and_their_tasks(emulator: Emulator) -> None:
    n = len(emulator.history)
    split = await connect_split(emulator.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET,
                                        heartbeat=None)
    async with split:
        await split.subscribe("ticker.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw")
    conns = emulator.history[n:]
    assert len(conns) == 2
    for conn in conns:
        await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
        assert conn.close_code == 1000
    await wait_until(lambda: not _our_tasks(), timeout=2.0)


# ------------------------------------------------------------------ programs stopped with Ctrl-C

PROGRAM = textwrap.dedent('''
    import asyncio, json, sys
    lib, driver, url = sys.argv[1:4]
    if lib == "websockets":
        import websockets
    elif lib == "dropin":
        from drbfast import websockets
    elif lib == "split":
        from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
        from drbfast.gateway import connect_split
    else:
        import drbfast

    async def main():
        if lib in ("websockets", "dropin"):
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/subscribe",
                                          "params": {"channels": ["ticker.BTC-PERPETUAL.100ms"]}}))
                async for message in ws:
                    if "subscription" in message:
                        print("data", flush=True)
        elif lib == "split":
            async with await connect_split(url, client_id=DEMO_CLIENT_ID,
                                                   client_secret=DEMO_CLIENT_SECRET) as client:
                async for channel, data in await client.subscribe("ticker.BTC-PERPETUAL.100ms"):
                    print("data", flush=True)
        else:
            async with drbfast.connect(url) as client:
                async for channel, data in await client.subscribe("ticker.BTC-PERPETUAL.100ms"):
                    print("data", flush=True)

    if driver == "asyncio.run":
        asyncio.run(main())
    elif driver == "run_until_complete":
        # The Deribit docs' sample's style (asyncio.get_event_loop() there, which warns
        # on 3.12+ when it has to make the loop: the same loop, made explicitly, left open).
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
    else:  # the loop closed under a live connection
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
''')


def only_a_keyboard_interrupt(err: str) -> bool:
    """stderr is one traceback (chained through a CancelledError under asyncio.run)
    ending in KeyboardInterrupt, and nothing else."""
    blocks = err.strip("\n").split("\n\nDuring handling of the above exception, another exception occurred:\n\n")
    for k, block in enumerate(blocks):
        lines = block.split("\n")
        if lines[0] != "Traceback (most recent call last):" or len(lines) < 3:
            return False
        if any(not line.startswith("  ") for line in lines[1:-1]):
            return False  # something other than traceback lines: a second report
        last = lines[-1]
        if k == len(blocks) - 1:
            if last != "KeyboardInterrupt":
                return False
        elif last not in ("asyncio.exceptions.CancelledError", "KeyboardInterrupt"):
            return False
    return True


def _sigint_default() -> None:
    """In the child, before exec: SIGINT back to its default disposition. A shell's
    background job (CI runs one nox lane as one) starts with SIGINT ignored, which its
    children inherit, and Python installs no KeyboardInterrupt handler then: the
    program under test would never see the Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def run_and_interrupt(tmp_path: Any, emulator: Emulator, lib: str, driver: str,
                            *flags: str) -> tuple[str, list[Any]]:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    n = len(emulator.history)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *flags, str(script), lib, driver, emulator.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE", "PYTHONASYNCIODEBUG")},
        preexec_fn=_sigint_default)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert line == b"data\n", (line, await proc.stderr.read())
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    conns = emulator.history[n:]
    assert conns, "the program connected"
    for conn in conns:
        await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)  # the emulator saw it close
    return err.decode(), conns


DRIVERS = ["run_until_complete", "asyncio.run", "loop closed"]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("lib", ["dropin", "connect", "split"])
async def test_ctrl_c_prints_the_keyboard_interrupt_alone(tmp_path: Any, emulator: Emulator, lib: str,
                                                          driver: str) -> None:
    err, conns = await run_and_interrupt(tmp_path, emulator, lib, driver)
    assert only_a_keyboard_interrupt(err), err
    codes = [c.close_code for c in conns]
    if driver == "asyncio.run":
        # The loop still ran the close: the closing handshake, as on any exit.
        assert all(code in (1000, 1011) for code in codes), codes
    elif driver == "run_until_complete":
        # The loop stopped, still open: closed at interpreter exit with 1001 going away
        # (1000 when the interrupt landed inside the program's coroutine: its async with
        # exit then ran on the still running loop).
        assert all(code in (1000, 1001) for code in codes), codes


@pytest.mark.parametrize("driver", ["asyncio.run", "loop closed"])
async def test_websockets_control(tmp_path: Any, emulator: Emulator, driver: str) -> None:
    """The same check on ``websockets`` itself: clean under asyncio.run; with the loop
    closed under a live connection it prints "Exception ignored in", which the check
    catches in most runs (and the drop-in never prints)."""
    pytest.importorskip("websockets")
    err, _ = await run_and_interrupt(tmp_path, emulator, "websockets", driver)
    if driver == "asyncio.run":
        assert only_a_keyboard_interrupt(err), err
    # With the loop closed, websockets 17 prints "Exception ignored in: <coroutine ...>"
    # in most runs (it depends on the order the garbage collector takes things in);
    # the same program on the drop-in prints nothing (the test above).


NEVER_CLOSED = textwrap.dedent('''
    import asyncio, gc, sys
    lib, url = sys.argv[1:3]
    import drbfast
    from drbfast import websockets

    async def open_it():
        if lib == "dropin":
            return await websockets.connect(url)
        return await drbfast.connect(url)

    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(open_it())
    loop.close()
    del conn
    gc.collect()
    print("collected", flush=True)
''')


@pytest.mark.parametrize("lib", ["dropin", "connect"])
async def test_a_connection_never_closed_warns_under_dev_mode_only(tmp_path: Any, emulator: Emulator, lib: str) -> None:
    script = tmp_path / "never_closed.py"
    script.write_text(NEVER_CLOSED)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")}
    for flags, warned in (((), False), (("-W", "default"), True)):
        n = len(emulator.history)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *flags, str(script), lib, emulator.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert out == b"collected\n" and proc.returncode == 0, err
        text = err.decode()
        if warned:
            assert "ResourceWarning: unclosed" in text and ("Client(" in text or "ClientConnection" in text), text
        else:
            assert text == "", text
        conn = emulator.history[n]
        await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
        # A 1001 close frame if the connection is collected before its transport (the
        # collector's order); else the transport's own finalizer closes the socket.
        assert conn.close_code in (1001, None), conn.close_code


# ------------------------------------------------------------------ drbfast stream


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_stream_stops_cleanly_on_a_signal(emulator: Emulator, sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "stream", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert json.loads(first)["channel"] == "ticker.BTC-PERPETUAL.100ms"
        n = len(emulator.history)
        proc.send_signal(sig)
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("drbfast stream: ") and "notifications" in lines[0], lines
    conn = emulator.history[n - 1]
    await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
    assert conn.close_code == 1000
