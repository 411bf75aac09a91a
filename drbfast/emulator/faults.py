"""Fault injection: make the emulator misbehave on purpose, the way production can.

Every control takes the target connection; ``None`` means the newest live one.
Faults plug into the server through its hook points only: a request hook (the
pipeline's middleware, ``Environment.hooks``) for :meth:`Faults.fail_method`, a
per-connection :class:`ConnectionHook` (:class:`ConnectionFaults`) for silence, delays
and drops after N messages, and the connection's public methods (``drop``, ``close``,
``send``, ``pause_channel``), described here by :class:`Target` so that this layer
names no transport.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Protocol

from picows import WSMsgType

from .dispatch import Environment, Outcome, Verdict, error_outcome
from .errors import RpcError
from .monitor import Monitor

__all__ = ["ConnectionFaults", "ConnectionHook", "Faults", "FloodResult", "MethodFault", "Target"]


class ConnectionHook(Protocol):
    """A per-connection fault plug-in: the connection consults it around every frame."""

    response_delay: float
    snapshot_delay: float

    def before_send(self, conn: Target) -> bool:
        """False: do not send this frame."""

    def after_send(self, conn: Target) -> None: ...


class Target(Protocol):
    """What a fault does to a connection (the WebSocket server's ``Connection`` is one)."""

    id: int
    hook: ConnectionHook | None
    test_request_rtts_ns: list[int]

    @property
    def is_open(self) -> bool: ...

    def drop(self) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...

    def send(self, payload: bytes, opcode: WSMsgType = WSMsgType.TEXT, fin: bool = True) -> None: ...

    def send_many(self, payloads: Sequence[bytes]) -> None: ...

    def send_ping(self, payload: bytes = b"") -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def pause_channel(self, channel: str) -> None: ...

    def resume_channel(self, channel: str) -> None: ...

    def stop_heartbeat(self) -> None: ...

    def send_test_request(self, deadline: float | None = None) -> None: ...

    def test_request_frame(self) -> bytes: ...

    async def writable(self, timeout: float | None = None) -> bool: ...

#: What a :meth:`Faults.fail_method` fault does to the request it catches.
METHOD_FAULT_ACTIONS = ("drop", "close", "error", "silence")

#: Deribit's message for the error codes a fault is most often asked for (PROTOCOL.md 8.1).
_ERROR_MESSAGES = {
    10028: "too_many_requests",
    13009: "unauthorized",
    13004: "invalid_credentials",
    11050: "bad_request",
    10047: "matching_engine_queue_full",
    -32602: "Invalid params",
    -32601: "Method not found",
    11044: "not_open_order",
}


@dataclass
class MethodFault:
    """One armed :meth:`Faults.fail_method` fault; ``fired`` counts the requests it caught."""

    method: str
    action: str
    times: int
    code: int
    reason: str
    fired: int = 0
    #: server-side connection ids of the requests it caught, in order
    connections: list[int] = field(default_factory=list)

    @property
    def exhausted(self) -> bool:
        return self.fired >= self.times


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
    """~1 KB book changes serialized once around their two change_ids; each frame is
    the pieces joined with the next ids, so ``prev_change_id`` continuity holds and
    every frame is valid JSON whatever the ids' width (no zero padding)."""

    def __init__(self, channel: str, size: int = 1000) -> None:
        levels: list[list[object]] = []
        frame = ""
        while len(frame) < size:
            levels.append(["change", 86750.0 + len(levels) * 0.5, 1230.0])
            frame = json.dumps({
                "jsonrpc": "2.0", "method": "subscription",
                "params": {"channel": channel, "data": {
                    "timestamp": 1790133840448, "type": "change", "prev_change_id": "@PREV@",
                    "change_id": "@CUR@", "instrument_name": channel.split(".")[1] if "." in channel else channel,
                    "bids": levels, "asks": levels}}}, separators=(",", ":"))
        head, rest = frame.split('"@PREV@"')
        mid, tail = rest.split('"@CUR@"')
        self.head, self.mid, self.tail = head.encode(), mid.encode(), tail.encode()
        self.change_id = 300_000_000_000

    def next(self) -> bytes:
        prev = self.change_id
        self.change_id += 1
        return b"%s%d%s%d%s" % (self.head, prev, self.mid, self.change_id, self.tail)


class ConnectionFaults:
    """The per-connection fault hook (``conn.hook``): silence, late answers, and a drop
    after the emulator has sent N more messages."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.silenced = False
        self.response_delay = 0.0
        self.snapshot_delay = 0.0
        self.drop_after_messages: int | None = None

    def before_send(self, conn: Target) -> bool:
        return not self.silenced

    def after_send(self, conn: Target) -> None:
        if self.drop_after_messages is not None:
            self.drop_after_messages -= 1
            if self.drop_after_messages <= 0:
                self.drop_after_messages = None
                self.monitor.event("connection %d: fault: dropping after the last of N messages", conn.id)
                conn.drop()


class Faults:
    """The fault-injection controls of one emulator (``emu.faults``).

    ``env`` is the request pipeline's environment (its middleware gets this object's
    request hook; floods continue the exchange's book chains); ``connections`` gives the
    live connections, newest last."""

    def __init__(self, env: Environment, connections: Callable[[], Sequence[Target]]) -> None:
        self.env = env
        self.monitor = env.monitor
        self._connections = connections
        self.method_faults: list[MethodFault] = []
        #: connection attempts still to be cut before the HTTP 101 answer
        self.handshakes_to_reject = 0
        #: connection attempts cut so far
        self.handshakes_rejected = 0
        env.hooks.append(self._on_request)

    def _hook(self, conn: Target) -> ConnectionFaults:
        hook = conn.hook
        if not isinstance(hook, ConnectionFaults):
            hook = ConnectionFaults(self.monitor)
            conn.hook = hook
        return hook

    def _on_request(self, session: object, method: str) -> Verdict | None:
        """Request middleware: an armed :meth:`fail_method` fault answers instead."""
        conn_id = getattr(session, "id", 0)
        fault = self.take_method_fault(method, conn_id)
        if fault is None:
            return None
        self.monitor.event("connection %d: fault %s on %s", conn_id, fault.action, method)
        if fault.action == "drop":
            return lambda msg: Outcome(None, drop=True)
        if fault.action == "close":
            return lambda msg: Outcome(None, close=(fault.code, fault.reason))
        if fault.action == "error":
            # 10028 is followed by the close production does (PROTOCOL.md 9).
            close = (self.env.config.rate_limit_close_code, "too_many_requests") if fault.code == 10028 else None
            return lambda msg: error_outcome(msg, RpcError(fault.code, fault.reason), close=close)
        return lambda msg: Outcome(None)  # "silence": swallowed, never answered

    # ------------------------------------------------------------ set-up faults

    def fail_method(self, method: str, action: str, *, times: int = 1, code: int | None = None,
                    reason: str | None = None) -> MethodFault:
        """Make the next ``times`` requests of ``method`` (on any connection) fail.

        ``action``: ``"drop"`` drops the TCP connection instead of answering;
        ``"close"`` closes the WebSocket with ``code`` (default 4000) and ``reason``;
        ``"error"`` answers with error ``code`` (default 10028, which, as in production,
        is followed by a close); ``"silence"`` swallows the request and never answers
        (the connection stays up, heartbeats go on). A client's set-up calls each
        happen once per connection, so this fails that set-up step on the next
        ``times`` connections. Returns the armed fault (``fired`` counts its hits)."""
        if action not in METHOD_FAULT_ACTIONS:
            raise ValueError(f"action must be one of {METHOD_FAULT_ACTIONS}, not {action!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if code is None:
            code = 4000 if action == "close" else 10028
        if reason is None:
            reason = "heartbeat close" if action == "close" and code == 4000 else _ERROR_MESSAGES.get(code, "fault")
        fault = MethodFault(method, action, times, code, reason)
        self.method_faults.append(fault)
        return fault

    def clear_method_faults(self) -> None:
        """Disarm every :meth:`fail_method` fault."""
        self.method_faults.clear()

    def take_method_fault(self, method: str, conn_id: int) -> MethodFault | None:
        """The armed fault that catches this request, if any (the server calls this)."""
        for fault in self.method_faults:
            if fault.method == method and not fault.exhausted:
                fault.fired += 1
                fault.connections.append(conn_id)
                return fault
        return None

    def reject_handshakes(self, times: int = 1) -> None:
        """Cut the next ``times`` connection attempts after the client's HTTP upgrade
        request and before the 101 answer (the client reads EOF in the handshake)."""
        if times < 0:
            raise ValueError("times must be >= 0")
        self.handshakes_to_reject = times

    def take_handshake_rejection(self) -> bool:
        """True if this connection attempt is to be cut (the server calls this)."""
        if self.handshakes_to_reject <= 0:
            return False
        self.handshakes_to_reject -= 1
        self.handshakes_rejected += 1
        return True

    def _conn(self, conn: Target | None) -> Target:
        if conn is not None:
            return conn
        live = self._connections()
        if not live:
            raise RuntimeError("no live connection to inject a fault into")
        return live[-1]

    def drop(self, conn: Target | None = None, *, after_messages: int | None = None, at: float | None = None) -> None:
        """Drop the TCP connection with no close frame: now, after the emulator has sent
        ``after_messages`` more messages, or ``at`` seconds from now."""
        c = self._conn(conn)
        if after_messages is not None:
            self._hook(c).drop_after_messages = after_messages
        elif at is not None:
            asyncio.get_running_loop().call_later(at, c.drop)
        else:
            c.drop()

    def close(self, conn: Target | None = None, code: int = 1001, reason: str = "maintenance") -> None:
        """Close cleanly with ``code`` and ``reason`` (e.g. a maintenance restart)."""
        self._conn(conn).close(code, reason)

    def stop_reading(self, conn: Target | None = None) -> None:
        """Stop reading the client's frames (its requests pile up in TCP buffers)."""
        c = self._conn(conn)
        c.pause_reading()

    def resume_reading(self, conn: Target | None = None) -> None:
        c = self._conn(conn)
        c.resume_reading()

    def silence(self, conn: Target | None = None, on: bool = True) -> None:
        """Send nothing more on this connection, heartbeats included, and never close
        it: a link that died without telling anyone (a client watchdog must notice)."""
        c = self._conn(conn)
        self._hook(c).silenced = on
        if on:
            self.monitor.event("connection %d: fault: silenced (nothing sent, no close)", c.id)
            c.stop_heartbeat()

    def delay_responses(self, seconds: float, conn: Target | None = None) -> None:
        """Answer every later request ``seconds`` late (0 restores)."""
        self._hook(self._conn(conn)).response_delay = seconds

    def delay_snapshots(self, seconds: float, conn: Target | None = None) -> None:
        """Send the snapshot that follows a book subscribe ``seconds`` after its reply
        instead of right after it (0 restores)."""
        self._hook(self._conn(conn)).snapshot_delay = seconds

    def send_malformed(self, conn: Target | None = None, payload: bytes = b'{"jsonrpc":"2.0","method":"subscription","params":{') -> None:
        """Send a TEXT frame that is not valid JSON."""
        self._conn(conn).send(payload)

    def send_binary(self, conn: Target | None = None, payload: bytes = b"\x00\x01binary") -> None:
        """Send a BINARY frame (production never does)."""
        self._conn(conn).send(payload, WSMsgType.BINARY)

    def send_oversized(self, conn: Target | None = None, size: int = 4 * 1024 * 1024) -> None:
        """Send one valid notification of about ``size`` bytes."""
        pad = "x" * max(0, size - 80)
        self._conn(conn).send(json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "announcements", "data": {"body": pad}}}, separators=(",", ":")).encode())

    def send_fragmented(self, payload: bytes, parts: int = 3, conn: Target | None = None) -> None:
        """Send ``payload`` as one TEXT frame and ``parts - 1`` CONTINUATION frames."""
        c = self._conn(conn)
        parts = max(1, min(parts, len(payload)))
        step = -(-len(payload) // parts)
        chunks = [payload[i:i + step] for i in range(0, len(payload), step)]
        for i, chunk in enumerate(chunks):
            opcode = WSMsgType.TEXT if i == 0 else WSMsgType.CONTINUATION
            c.send(chunk, opcode, fin=(i == len(chunks) - 1))

    def send_ping(self, conn: Target | None = None, payload: bytes = b"emu") -> None:
        """Send a WebSocket PING (production does not document any)."""
        c = self._conn(conn)
        c.send_ping(payload)

    def send_test_requests(self, conn: Target | None = None, *, count: int = 1, rate_hz: float | None = None, pattern: list[float] | None = None, deadline: float | None = None) -> asyncio.Task[None]:
        """Send ``count`` test_requests whatever the heartbeat interval: at ``rate_hz``,
        or after each delay of ``pattern`` (seconds). With ``deadline``, an unanswered
        one closes the socket with 4000 like production. Returns the sending task."""
        c = self._conn(conn)
        delays = list(pattern) if pattern is not None else [0.0 if rate_hz is None else 1.0 / rate_hz] * count

        async def run() -> None:
            for delay in delays:
                if delay > 0:
                    await asyncio.sleep(delay)
                if not c.is_open:
                    return
                c.send_test_request(deadline=deadline)

        return asyncio.get_running_loop().create_task(run())

    async def flood(self, conn: Target | None = None, *, count: int = 100_000, test_request_every: int | None = None,
                    channel: str = "book.BTC-PERPETUAL.raw", frame: bytes | None = None, timeout: float = 60.0) -> FloodResult:
        """Push ``count`` ~1 KB book changes on ``channel`` (continuous change_ids; the
        regular stream of that channel pauses meanwhile) as fast as the socket takes
        them, with a test_request after every ``test_request_every``; wait for the
        answers and return what was measured. ``frame`` sends that exact payload instead."""
        c = self._conn(conn)
        frames = _FloodFrames(channel) if frame is None else None
        parts = channel.split(".")
        name = parts[1] if len(parts) == 3 and parts[0] == "book" else None
        stream = "raw" if parts[-1] == "raw" else "agg"
        book_chain = name is not None and name in self.env.exchange.change_ids and frames is not None
        if book_chain and frames is not None and name is not None:
            # Continue the channel's change_id chain from its last frame.
            frames.change_id = self.env.exchange.stream_ids[name, stream]
        before = len(c.test_request_rtts_ns)
        trs = 0
        deadline = time.monotonic() + timeout
        t0 = time.perf_counter()
        sent = 0
        record = self.env.config.record
        self.env.config.record = False  # a flood is not worth recording frame by frame
        c.pause_channel(channel)
        self.monitor.event("connection %d: flood of %d frames on %s", c.id, count, channel)
        try:
            while sent < count and time.monotonic() < deadline:
                if not c.is_open:
                    break
                burst = min(256, count - sent)
                out: list[bytes] = []
                for _ in range(burst):
                    out.append(frames.next() if frames is not None else frame)  # type: ignore[arg-type]
                    sent += 1
                    if test_request_every and sent % test_request_every == 0:
                        out.append(c.test_request_frame())
                        trs += 1
                c.send_many(out)
                # Flow control, bounded by the timeout: a socket that is gone or never
                # drains again ends the flood.
                if not await c.writable(max(0.0, deadline - time.monotonic())):
                    break
                await asyncio.sleep(0)
            seconds = time.perf_counter() - t0
            while len(c.test_request_rtts_ns) - before < trs and time.monotonic() < deadline:
                if not c.is_open:
                    break
                await asyncio.sleep(0.005)
        finally:
            self.env.config.record = record
            c.resume_channel(channel)
            if book_chain and frames is not None and name is not None:
                self.env.exchange.resume_after(name, frames.change_id, stream)
        self.monitor.event("connection %d: flood sent %d frames in %.3f s, %d test_requests answered", c.id, sent,
                           seconds, len(c.test_request_rtts_ns) - before)
        return FloodResult(sent, seconds, trs, c.test_request_rtts_ns[before:])
