"""Fault injection: make the emulator misbehave on purpose, the way production can.

Every control takes the target connection; ``None`` means the newest live one.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from picows import WSMsgType

if TYPE_CHECKING:
    from .server import Connection, Emulator

__all__ = ["Faults", "FloodResult"]


@dataclass
class FloodResult:
    """What a :meth:`Faults.flood` did: notifications sent, seconds taken, and the
    test_request round trips (ns) measured on the emulator's side."""

    sent: int
    seconds: float
    test_requests: int
    rtts_ns: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class _FloodFrames:
    """~1 KB book changes serialized once; each frame gets the next change_id by
    patching fixed-width digits in place, so ``prev_change_id`` continuity holds."""

    def __init__(self, channel: str, size: int = 1000) -> None:
        levels: list[list[object]] = []
        frame = b""
        marker_prev, marker_cur = 111111111111, 222222222222
        while len(frame) < size:
            levels.append(["change", 86750.0 + len(levels) * 0.5, 1230.0])
            frame = json.dumps({
                "jsonrpc": "2.0", "method": "subscription",
                "params": {"channel": channel, "data": {
                    "timestamp": 1790133840448, "type": "change", "prev_change_id": marker_prev,
                    "change_id": marker_cur, "instrument_name": channel.split(".")[1] if "." in channel else channel,
                    "bids": levels, "asks": levels}}}, separators=(",", ":")).encode()
        self.template = bytearray(frame)
        self.prev_at = frame.index(str(marker_prev).encode())
        self.cur_at = frame.index(str(marker_cur).encode())
        self.change_id = 300_000_000_000

    def next(self) -> bytes:
        t = self.template
        t[self.prev_at:self.prev_at + 12] = b"%012d" % self.change_id
        self.change_id += 1
        t[self.cur_at:self.cur_at + 12] = b"%012d" % self.change_id
        return bytes(t)


class Faults:
    """The fault-injection controls of one :class:`Emulator` (``emu.faults``)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def _conn(self, conn: Connection | None) -> Connection:
        if conn is not None:
            return conn
        if not self.emu.connections:
            raise RuntimeError("no live connection to inject a fault into")
        return self.emu.connections[-1]

    def drop(self, conn: Connection | None = None, *, after_messages: int | None = None, at: float | None = None) -> None:
        """Drop the TCP connection with no close frame: now, after the emulator has sent
        ``after_messages`` more messages, or ``at`` seconds from now."""
        c = self._conn(conn)
        if after_messages is not None:
            c.drop_after_messages = after_messages
        elif at is not None:
            asyncio.get_running_loop().call_later(at, c.drop)
        else:
            c.drop()

    def close(self, conn: Connection | None = None, code: int = 1001, reason: str = "maintenance") -> None:
        """Close cleanly with ``code`` and ``reason`` (e.g. a maintenance restart)."""
        self._conn(conn).close(code, reason)

    def stop_reading(self, conn: Connection | None = None) -> None:
        """Stop reading the client's frames (its requests pile up in TCP buffers)."""
        c = self._conn(conn)
        assert c.transport is not None
        c.transport.underlying_transport.pause_reading()

    def resume_reading(self, conn: Connection | None = None) -> None:
        c = self._conn(conn)
        assert c.transport is not None
        c.transport.underlying_transport.resume_reading()

    def silence(self, conn: Connection | None = None, on: bool = True) -> None:
        """Send nothing more on this connection, heartbeats included, and never close
        it: a link that died without telling anyone (a client watchdog must notice)."""
        c = self._conn(conn)
        c.silenced = on
        if on:
            c.stop_heartbeat()

    def delay_responses(self, seconds: float, conn: Connection | None = None) -> None:
        """Answer every later request ``seconds`` late (0 restores)."""
        self._conn(conn).response_delay = seconds

    def send_malformed(self, conn: Connection | None = None, payload: bytes = b'{"jsonrpc":"2.0","method":"subscription","params":{') -> None:
        """Send a TEXT frame that is not valid JSON."""
        self._conn(conn).send(payload)

    def send_binary(self, conn: Connection | None = None, payload: bytes = b"\x00\x01binary") -> None:
        """Send a BINARY frame (production never does)."""
        self._conn(conn).send(payload, WSMsgType.BINARY)

    def send_oversized(self, conn: Connection | None = None, size: int = 4 * 1024 * 1024) -> None:
        """Send one valid notification of about ``size`` bytes."""
        pad = "x" * max(0, size - 80)
        self._conn(conn).send(json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "announcements", "data": {"body": pad}}}, separators=(",", ":")).encode())

    def send_fragmented(self, payload: bytes, parts: int = 3, conn: Connection | None = None) -> None:
        """Send ``payload`` as one TEXT frame and ``parts - 1`` CONTINUATION frames."""
        c = self._conn(conn)
        parts = max(1, min(parts, len(payload)))
        step = -(-len(payload) // parts)
        chunks = [payload[i:i + step] for i in range(0, len(payload), step)]
        for i, chunk in enumerate(chunks):
            opcode = WSMsgType.TEXT if i == 0 else WSMsgType.CONTINUATION
            c.send(chunk, opcode, fin=(i == len(chunks) - 1))

    def send_ping(self, conn: Connection | None = None, payload: bytes = b"emu") -> None:
        """Send a WebSocket PING (production does not document any)."""
        c = self._conn(conn)
        assert c.transport is not None
        c.transport.send_ping(payload)

    def send_test_requests(self, conn: Connection | None = None, *, count: int = 1, rate_hz: float | None = None, pattern: list[float] | None = None, deadline: float | None = None) -> asyncio.Task[None]:
        """Send ``count`` test_requests whatever the heartbeat interval: at ``rate_hz``,
        or after each delay of ``pattern`` (seconds). With ``deadline``, an unanswered
        one closes the socket with 4000 like production. Returns the sending task."""
        c = self._conn(conn)
        delays = list(pattern) if pattern is not None else [0.0 if rate_hz is None else 1.0 / rate_hz] * count

        async def run() -> None:
            for delay in delays:
                if delay > 0:
                    await asyncio.sleep(delay)
                if c.transport is None or c.transport.is_disconnected:
                    return
                c.send_test_request(deadline=deadline)

        return asyncio.get_running_loop().create_task(run())

    async def flood(self, conn: Connection | None = None, *, count: int = 100_000, test_request_every: int | None = None,
                    channel: str = "book.BTC-PERPETUAL.raw", frame: bytes | None = None, timeout: float = 60.0) -> FloodResult:
        """Push ``count`` ~1 KB book changes on ``channel`` (continuous change_ids; the
        regular stream of that channel pauses meanwhile) as fast as the socket takes
        them, with a test_request after every ``test_request_every``; wait for the
        answers and return what was measured. ``frame`` sends that exact payload instead."""
        c = self._conn(conn)
        frames = _FloodFrames(channel) if frame is None else None
        instrument = self.emu.market.instruments.get(channel.split(".")[1]) if channel.count(".") >= 2 else None
        if frames is not None and instrument is not None:
            frames.change_id = instrument.change_id  # continue the book's change_id chain
        before = len(c.test_request_rtts_ns)
        trs = 0
        deadline = time.monotonic() + timeout
        t0 = time.perf_counter()
        sent = 0
        record = self.emu.config.record
        self.emu.config.record = False  # a flood is not worth recording frame by frame
        c.flooding.add(channel)
        try:
            while sent < count and time.monotonic() < deadline:
                if c.transport is None or c.transport.is_disconnected:
                    break
                burst = min(256, count - sent)
                for _ in range(burst):
                    c.send(frames.next() if frames is not None else frame)  # type: ignore[arg-type]
                    sent += 1
                    if test_request_every and sent % test_request_every == 0:
                        c.send_test_request()
                        trs += 1
                await c.writable()
                await asyncio.sleep(0)
            seconds = time.perf_counter() - t0
            while len(c.test_request_rtts_ns) - before < trs and time.monotonic() < deadline:
                if c.transport is None or c.transport.is_disconnected:
                    break
                await asyncio.sleep(0.005)
        finally:
            self.emu.config.record = record
            c.flooding.discard(channel)
            if frames is not None and instrument is not None:
                self.emu.market.resume_after(instrument.name, frames.change_id)
        return FloodResult(sent, seconds, trs, c.test_request_rtts_ns[before:])
