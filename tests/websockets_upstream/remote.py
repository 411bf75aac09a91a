"""The far end for the connection tests: a TCP server on 127.0.0.1 driven by
websockets' own sans-I/O ``ServerProtocol`` (an independent WebSocket stack). It
records every frame the client sends, sends what a test asks (frames, or raw bytes
for hostile input), and can stop reading.

Plays the part of ``InterceptingConnection``/``RecordingProtocol`` in websockets'
tests (see LICENSE.websockets).
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from ..conftest import TIMEOUT


class _ServerProtocol(ServerProtocol):
    """websockets' server protocol that can leave PINGs unanswered (``drop_frames_rcvd``
    around a ping in websockets' tests)."""

    answer_pings = True

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PING and not self.answer_pings:
            self.events.append(frame)  # recorded, not answered
            return
        super().recv_frame(frame)


class Remote:
    def __init__(self, response_headers: dict[str, str] | None = None) -> None:
        self.response_headers = response_headers or {}
        self.answer_pings = True
        self.frames: list[Frame] = []
        self.messages: list[str | bytes] = []
        self.connected = asyncio.Event()
        self.eof = asyncio.Event()
        self.protocol: ServerProtocol | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._fragments: list[Frame] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Remote:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.wait_for(self.server.wait_closed(), TIMEOUT)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.protocol, self.writer = _ServerProtocol(), writer
        self.protocol.answer_pings = self.answer_pings
        self._writers.append(writer)
        self._tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                data = await reader.read(65536)
                if data:
                    self.protocol.receive_data(data)
                else:
                    self.protocol.receive_eof()
                for event in self.protocol.events_received():
                    if isinstance(event, Request):  # the opening handshake
                        response = self.protocol.accept(event)
                        for name, value in self.response_headers.items():
                            response.headers[name] = value
                        self.protocol.send_response(response)
                        self.connected.set()
                    elif isinstance(event, Frame):
                        self._record(event)
                self.flush()
                if not data:
                    self.eof.set()
                    return
        except (ConnectionError, asyncio.CancelledError):
            self.eof.set()

    def _record(self, frame: Frame) -> None:
        self.frames.append(frame)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self._fragments.append(frame)
            if frame.fin:
                data = b"".join(f.data for f in self._fragments)
                text = self._fragments[0].opcode is Opcode.TEXT
                self.messages.append(data.decode() if text else data)
                self._fragments = []

    def flush(self) -> None:
        assert self.protocol is not None and self.writer is not None
        for chunk in self.protocol.data_to_send():
            try:
                if chunk:
                    self.writer.write(chunk)
                elif self.writer.can_write_eof() and not self.writer.is_closing():
                    self.writer.write_eof()
            except OSError:  # the client is gone already
                return

    def send(self, method: str, *args: Any, **kwargs: Any) -> None:
        """``send("send_text", b"...")`` etc. on the sans-I/O protocol, then flush."""
        assert self.protocol is not None
        getattr(self.protocol, method)(*args, **kwargs)
        self.flush()

    def set_answer_pings(self, on: bool) -> None:
        self.answer_pings = on
        if self.protocol is not None:
            self.protocol.answer_pings = on  # type: ignore[attr-defined]

    def stop_reading(self) -> None:
        """Read nothing more (no pong, no close frame goes back) until resumed."""
        assert self.writer is not None
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_reading(self) -> None:
        assert self.writer is not None
        self.writer.transport.resume_reading()  # type: ignore[attr-defined]

    def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def drop(self) -> None:
        """Drop the TCP connection without a close frame."""
        assert self.writer is not None
        self.writer.transport.abort()

    async def wait_frames(self, count: int, timeout: float = TIMEOUT) -> list[Frame]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.frames) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(self.frames)} frames, wanted {count}"
            await asyncio.sleep(0.002)
        return self.frames


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked server frame, byte by byte (RFC 6455 5.2), for hostile input."""
    head = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        return bytes([head, size]) + payload
    if size < 65536:
        return bytes([head, 126]) + size.to_bytes(2, "big") + payload
    return bytes([head, 127]) + size.to_bytes(8, "big") + payload
