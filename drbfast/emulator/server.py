"""The WebSocket side of the emulator: one picows listener per connection, and the
listening socket that accepts them (the HTTP front of :mod:`.http` first).

A connection moves bytes and keeps time (heartbeats, idle cuts); what a request means is
:func:`~.dispatch.dispatch`'s business, over the :class:`~.dispatch.Environment` the
connection is given, and what it is subscribed to is the hub's (it is told through
callbacks). Fault injection (:mod:`.faults`) plugs in through the environment's
middleware and a per-connection :class:`~.faults.ConnectionHook`, never by editing a
connection's fields.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from picows import (WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeResponse,
                    WSUpgradeResponseWithListener, ws_create_server)

from .deflate import PerMessageDeflate, negotiate
from .dispatch import INVALID_JSON, Environment, Outcome, dispatch, parse_request
from .errors import RpcError
from .exchange import Token
from .faults import ConnectionHook
from .http import FrontProtocol, Sockets
from .tls import server_context

__all__ = ["Connection", "ConnectionHook", "Frame", "HEARTBEAT", "Server", "TEST_REQUEST"]

#: The production frames, byte for byte (PROTOCOL.md 1.1: keys in reverse order).
TEST_REQUEST = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
HEARTBEAT = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'


def _text_header(n: int) -> bytes:
    """A server's (unmasked) FIN + TEXT frame header for ``n`` payload bytes (RFC 6455 5.2)."""
    if n < 126:
        return struct.pack("!BB", 0x81, n)
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def _int(value: Any) -> int:
    """picows' enums (WSCloseCode, WSMsgType) as plain ints."""
    return int(value)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Frame:
    """One recorded frame: ``direction`` is "in" (client to emulator) or "out"."""

    t_ns: int
    direction: str
    opcode: int
    payload: bytes

    def json(self) -> Any:
        """The payload parsed as JSON (raises on malformed or binary frames)."""
        return json.loads(self.payload)


class Connection(WSListener):
    """The emulator's side of one client connection. Attributes are for assertions.

    ``env`` is what its requests run against; ``opened`` and ``closed`` are called when
    the WebSocket is up and when it is gone (the server keeps its registry with them)."""

    def __init__(self, env: Environment, conn_id: int, path: str, *,
                 opened: Callable[[Connection], None], closed: Callable[[Connection], None]) -> None:
        self.env = env
        self._opened = opened
        self._closed = closed
        self.id = conn_id
        self.path = path
        #: which host of Coinbase's gateway this is ("trading" or "streams"); always
        #: "trading" outside gateway mode
        self.role = "trading"
        self.ip = "?"
        self.transport: WSTransport | None = None
        self.client_name: str | None = None
        self.client_id: str | None = None
        self.token: Token | None = None
        self.cod = False
        self.logged_out = False
        self.subscriptions: set[str] = set()
        #: private/subscribe labels by channel (added to those notifications)
        self.labels: dict[str, str] = {}
        self.heartbeat_interval: float | None = None
        #: every frame, when recording is on
        self.frames: list[Frame] = []
        #: test_request round trips measured here with perf_counter_ns
        self.test_request_rtts_ns: list[int] = []
        self.test_requests_sent = 0
        self.heartbeats_sent = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.close_code: int | None = None
        #: requests received on this connection, by method as sent (for tests)
        self.requests: Counter[str] = Counter()
        #: dropped by a fault: nothing more is written, even before the transport says
        #: it is gone (picows may write straight to the socket until connection_lost)
        self.dropped = False
        self.close_reason: str | None = None
        self.closed = asyncio.get_running_loop().create_future()
        #: frames whose handling raised (a bug; the connection keeps serving)
        self.handler_errors = 0
        #: a fault plug-in attached by :mod:`.faults`, or None
        self.hook: ConnectionHook | None = None
        #: channels whose regular stream is paused (a flood is using them)
        self.paused: set[str] = set()
        #: permessage-deflate contexts, when the client offered it
        self.deflate: PerMessageDeflate | None = None
        self._compressed = False
        self._binary = False
        self._pending_tr: deque[tuple[int, int]] = deque()  # (seq, perf_counter_ns)
        self._tr_seq = 0
        self._hb_handle: asyncio.TimerHandle | None = None
        self._last_sent = time.monotonic()
        self._last_received = time.monotonic()
        self._fragments: list[bytes] | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()

    def __repr__(self) -> str:
        return (f"Connection(id={self.id}, client_id={self.client_id!r}, "
                f"subscriptions={len(self.subscriptions)}, cod={self.cod})")

    @property
    def authenticated(self) -> bool:
        return self.client_id is not None

    @property
    def received(self) -> list[Any]:
        """Every TEXT frame the client sent, parsed (malformed ones as raw bytes)."""
        out: list[Any] = []
        for f in self.frames:
            if f.direction == "in" and f.opcode == _int(WSMsgType.TEXT):
                try:
                    out.append(json.loads(f.payload))
                except ValueError:
                    out.append(f.payload)
        return out

    # ------------------------------------------------------------ picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        peer = transport.underlying_transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else "?"
        self._opened(self)
        self._arm_idle()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.stop_heartbeat()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        hs = transport.close_handshake
        if self.close_code is None and hs is not None:
            info = hs.sent or hs.recv
            if info is not None:
                self.close_code, self.close_reason = _int(info.code), info.reason
        self._writable.set()  # nobody may wait for a socket that is gone
        self._closed(self)
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        try:
            self._on_frame(transport, frame)
        except Exception:  # picows would close with 1011; production keeps serving
            self.handler_errors += 1
            self.env.monitor.bug("connection %d: frame handling failed", self.id)

    def _on_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        deflate = self.deflate
        record = self.env.config.record
        if record and (deflate is None or mt not in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)):
            self.frames.append(Frame(time.perf_counter_ns(), "in", _int(mt), frame.get_payload_as_bytes()))
        if mt in (WSMsgType.TEXT, WSMsgType.BINARY) or (mt == WSMsgType.CONTINUATION and self._fragments is not None):
            # Reassemble fragmented client messages (RFC 6455 5.4).
            if mt != WSMsgType.CONTINUATION:
                self._fragments = []
                self._binary = mt == WSMsgType.BINARY
                self._compressed = deflate is not None and frame.rsv1  # RFC 7692: RSV1 on the first frame
            assert self._fragments is not None
            self._fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            payload, self._fragments = b"".join(self._fragments), None
            self.messages_received += 1
            self._last_received = time.monotonic()
            if self._compressed and deflate is not None:
                # Binary messages are inflated too: they share the client's context.
                inflated = deflate.decompress(payload, self.env.config.max_request_size)
                if inflated is None:  # inflates past 32 kB (or is not deflate): -32600, no id
                    self.send_json({"jsonrpc": "2.0", "error": RpcError(-32600, "request entity too large").as_error()},
                                   None)
                    return
                payload = inflated
            if record and deflate is not None:  # recorded as the client meant it: inflated
                opcode = WSMsgType.BINARY if self._binary else WSMsgType.TEXT
                self.frames.append(Frame(time.perf_counter_ns(), "in", _int(opcode), payload))
            if self._binary:
                self.send_json({"jsonrpc": "2.0", "error": RpcError(11050, "bad_request", "binary frames are not accepted").as_error()}, usin=None)
                return
            self._on_text(payload)
        elif mt == WSMsgType.CLOSE:
            if self.close_code is None:
                self.close_code, self.close_reason = _int(frame.get_close_code()), frame.get_close_reason()
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    # ------------------------------------------------------------ requests

    def _on_text(self, payload: bytes) -> None:
        usin = time.time_ns() // 1000
        if len(payload) > self.env.config.max_request_size:
            # PROTOCOL.md 3.4: over 32 kB -> -32600 with no id.
            self.send_json({"jsonrpc": "2.0", "error": RpcError(-32600, "request entity too large").as_error()}, usin)
            return
        try:
            msg = parse_request(payload)
        except ValueError:
            self.send_json({"jsonrpc": "2.0", "error": INVALID_JSON.as_error()}, usin)
            return
        if isinstance(msg, dict) and isinstance(msg.get("method"), str):
            self.requests[msg["method"]] += 1
            if msg["method"].endswith("public/test"):
                self._answer_test_request()
        outcome = dispatch(self.env, self, msg, http=False, ip=self.ip)
        self._deliver(outcome, usin)
        self.env.hub.publish_events()

    def _deliver(self, outcome: Outcome, usin: int) -> None:
        if outcome.body is not None:
            delay = self.hook.response_delay if self.hook is not None else 0.0
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self.send_json, outcome.body, usin)
            else:
                self.send_json(outcome.body, usin)
        for action in outcome.after:
            action()
        if outcome.drop:
            self.drop()
        elif outcome.close is not None:
            self.close(*outcome.close)

    def on_authenticated(self, token: Token) -> None:
        first = self.client_id is None
        self.client_id = token.client_id
        self.token = token
        if first:
            # Account-scope cancel-on-disconnect applies to every new connection.
            self.cod = self.cod or self.env.exchange.account(token.client_id).cod

    # ------------------------------------------------------------ sending

    def send_json(self, body: dict[str, Any], usin: int | None) -> None:
        """Send a response, adding Deribit's usIn/usOut/usDiff/testnet fields."""
        if usin is None:
            usin = time.time_ns() // 1000
        usout = time.time_ns() // 1000
        body["usIn"] = usin
        body["usOut"] = usout
        body["usDiff"] = usout - usin
        body["testnet"] = self.env.config.testnet
        self.send(_dumps(body))

    def send(self, payload: bytes, opcode: WSMsgType = WSMsgType.TEXT, fin: bool = True) -> None:
        """Send one frame (recorded, counted, subject to the fault hook)."""
        t = self.transport
        if t is None or t.is_disconnected or t.is_close_frame_sent or self.dropped:
            return
        hook = self.hook
        if hook is not None and not hook.before_send(self):
            return
        if self.env.config.record:
            self.frames.append(Frame(time.perf_counter_ns(), "out", _int(opcode), payload))
        if self.deflate is not None and fin and opcode in (WSMsgType.TEXT, WSMsgType.BINARY):
            t.send(opcode, self.deflate.compress(payload), True, True)  # RSV1: compressed message
        else:
            t.send(opcode, payload, fin)
        self.messages_sent += 1
        self._last_sent = time.monotonic()
        if hook is not None:
            hook.after_send(self)

    def send_many(self, payloads: Sequence[bytes]) -> None:
        """Send several TEXT messages with one write to the socket (a flood's burst:
        one system call instead of one per frame). When something must see each
        frame (a fault hook, the recorder, permessage-deflate) they go through
        :meth:`send` one by one instead."""
        t = self.transport
        if t is None or t.is_disconnected or t.is_close_frame_sent or self.dropped:
            return
        if self.hook is not None or self.env.config.record or self.deflate is not None:
            for payload in payloads:
                self.send(payload)
            return
        parts: list[bytes] = []
        for payload in payloads:
            parts.append(_text_header(len(payload)))
            parts.append(payload)
        t.underlying_transport.write(b"".join(parts))
        self.messages_sent += len(payloads)
        self._last_sent = time.monotonic()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket with ``code`` and ``reason`` (a clean close handshake)."""
        t = self.transport
        if t is None or t.is_disconnected:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.env.monitor.event("connection %d: closing with %d %r", self.id, code, reason)
        t.send_close(WSCloseCode(code) if code in WSCloseCode._value2member_map_ else code, reason.encode())  # type: ignore[arg-type]
        asyncio.get_running_loop().call_later(1.0, t.disconnect)

    def drop(self) -> None:
        """Drop the TCP connection with no close frame (the client sees 1006)."""
        t = self.transport
        if t is None or t.is_disconnected:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = 1006, ""
        self.env.monitor.event("connection %d: dropped (no close frame, the client sees 1006)", self.id)
        self.dropped = True
        t.underlying_transport.abort()

    @property
    def is_open(self) -> bool:
        t = self.transport
        return t is not None and not t.is_disconnected and not self.dropped

    def pause_reading(self) -> None:
        """Stop reading the client's frames (they pile up in the TCP buffers)."""
        if self.transport is not None:
            self.transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.underlying_transport.resume_reading()

    def send_ping(self, payload: bytes = b"") -> None:
        """Send a WebSocket PING frame."""
        if self.is_open:
            assert self.transport is not None
            self.transport.send_ping(payload)

    def pause_channel(self, channel: str) -> None:
        """Hold this connection's regular frames of ``channel`` (a flood uses it)."""
        self.paused.add(channel)

    def resume_channel(self, channel: str) -> None:
        self.paused.discard(channel)

    # ------------------------------------------------------------ heartbeats

    def start_heartbeat(self, interval: float) -> None:
        """Begin production's heartbeat cycle at ``interval`` seconds (PROTOCOL.md 1.2)."""
        self.stop_heartbeat()
        self.heartbeat_interval = interval
        self._hb_handle = asyncio.get_running_loop().call_later(interval * self.env.config.first_factor, self._heartbeat_tick)

    def stop_heartbeat(self) -> None:
        if self._hb_handle is not None:
            self._hb_handle.cancel()
            self._hb_handle = None
        self.heartbeat_interval = None
        self._pending_tr.clear()

    def _heartbeat_tick(self) -> None:
        interval = self.heartbeat_interval
        if interval is None:
            return
        cfg = self.env.config
        # The plain heartbeat only when the server has been quiet (PROBE: none on a busy socket).
        if time.monotonic() - self._last_sent >= interval:
            self.send(HEARTBEAT)
            self.heartbeats_sent += 1
        self.send_test_request(deadline=interval * cfg.deadline_factor)
        self._hb_handle = asyncio.get_running_loop().call_later(interval * cfg.period_factor, self._heartbeat_tick)

    def send_test_request(self, deadline: float | None = None) -> None:
        """Send one test_request now; if ``deadline`` is set and it is not answered by
        a ``public/test`` in time, close with 4000 "heartbeat close"."""
        seq = self._test_request_due()
        self.send(TEST_REQUEST)
        if deadline is not None:
            asyncio.get_running_loop().call_later(deadline, self._check_deadline, seq, deadline)

    def test_request_frame(self) -> bytes:
        """A test_request for :meth:`send_many`: timed and counted as sent now."""
        self._test_request_due()
        return TEST_REQUEST

    def _test_request_due(self) -> int:
        self._tr_seq += 1
        self._pending_tr.append((self._tr_seq, time.perf_counter_ns()))
        self.test_requests_sent += 1
        return self._tr_seq

    def _check_deadline(self, seq: int, deadline: float) -> None:
        if self._pending_tr and self._pending_tr[0][0] <= seq:
            self.env.monitor.event("connection %d: test_request #%d not answered within %.3f s", self.id, seq, deadline)
            self.stop_heartbeat()
            self.close(4000, "heartbeat close")

    def _answer_test_request(self) -> None:
        if self._pending_tr:
            seq, sent = self._pending_tr.popleft()
            rtt = time.perf_counter_ns() - sent
            self.test_request_rtts_ns.append(rtt)
            self.env.monitor.event("connection %d: test_request #%d answered in %.3f ms", self.id, seq, rtt / 1e6)

    def _arm_idle(self) -> None:
        """Start the idle watch (one timer per connection, re-armed only when it fires:
        receiving a message just stamps ``_last_received``)."""
        cfg = self.env.config
        limits = [t for t in (cfg.idle_timeout, cfg.inactivity_timeout) if t is not None]
        if limits:
            self._idle_handle = asyncio.get_running_loop().call_later(min(limits), self._idle_check)

    def _idle_check(self) -> None:
        """Production cuts a socket that sent nothing for ~60 s when it holds no
        subscription and no heartbeat, and any socket after 10 minutes (PROTOCOL.md 1.6)."""
        cfg = self.env.config
        quiet = time.monotonic() - self._last_received
        if cfg.idle_timeout is not None and quiet >= cfg.idle_timeout - 1e-3 and not self.subscriptions \
                and self.heartbeat_interval is None:
            self.env.monitor.event("connection %d: idle for %.1f s with no subscription or heartbeat: dropped", self.id, quiet)
            self.drop()
            return
        if cfg.inactivity_timeout is not None and quiet >= cfg.inactivity_timeout - 1e-3:
            self.env.monitor.event("connection %d: inactive for %.1f s: dropped", self.id, quiet)
            self.drop()
            return
        # Not yet: look again when the nearest limit could be reached (a limit already
        # passed but held off by a subscription or heartbeat is looked at once per period).
        limits = [t for t in (cfg.idle_timeout, cfg.inactivity_timeout) if t is not None]
        nxt = min(t - quiet if t - quiet > 1e-3 else t for t in limits)
        self._idle_handle = asyncio.get_running_loop().call_later(nxt, self._idle_check)

    async def writable(self, timeout: float | None = None) -> bool:
        """Wait until the socket takes more data (flow control for floods); False if
        ``timeout`` passed first or the connection is gone."""
        try:
            await asyncio.wait_for(self._writable.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return self.transport is not None and not self.transport.is_disconnected


class Server:
    """The listening socket: the HTTP front (:mod:`.http`) on every accepted socket,
    WebSocket upgrades handed to picows as :class:`Connection` objects, and the registry
    of them. ``reject_handshake()`` True cuts an attempt before the 101 (a fault);
    ``on_close(conn)`` runs once a connection is gone and out of the registry."""

    def __init__(self, env: Environment, *, reject_handshake: Callable[[], bool],
                 on_close: Callable[[Connection], None]) -> None:
        self.env = env
        self.config = env.config
        self.reject_handshake = reject_handshake
        self.on_close = on_close
        #: the live connections, newest last
        self.connections: list[Connection] = []
        #: every connection ever accepted
        self.history: list[Connection] = []
        #: every accepted socket (WebSocket or HTTP) and its peer IP, for the per-IP limit
        self.sockets = Sockets()
        self.port = 0
        self.ca_path: str | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.client_ssl_context: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._next_id = 0
        self._conn_event = asyncio.Event()

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.tls else "ws"
        return f"{scheme}://{self._host}:{self.port}{self.config.path}"

    @property
    def streams_url(self) -> str:
        """Gateway mode: the market-data host (``url`` is the trading host)."""
        if not self.config.gateway:
            raise RuntimeError("streams_url exists in gateway mode only (EmulatorConfig(gateway=True))")
        scheme = "wss" if self.config.tls else "ws"
        return f"{scheme}://{self._host}:{self.port}{self.config.streams_path}"

    @property
    def http_url(self) -> str:
        """Base of the HTTP API, e.g. ``http://127.0.0.1:PORT/api/v2``."""
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self._host}:{self.port}/api/v2"

    @property
    def _host(self) -> str:
        return "localhost" if self.config.tls and self.config.host == "127.0.0.1" else self.config.host

    async def start(self) -> None:
        """Start listening (port 0 picks a free one)."""
        cfg = self.config
        if cfg.tls:
            self.ssl_context, self.client_ssl_context, self.ca_path = server_context(cfg.certfile, cfg.keyfile)
        self._server = await ws_create_server(
            self._factory, cfg.host, cfg.port, ssl=self.ssl_context,
            websocket_handshake_timeout=5, max_frame_size=16 * 1024 * 1024,
            start_serving=False,
        )
        # Every accepted socket passes a front first: it counts connections per IP
        # (HTTP 429 past the limit), lets Faults.reject_handshakes cut one before the
        # 101, serves plain HTTP requests, and hands WebSocket upgrades to picows.
        # picows builds its protocol factory inside ws_create_server; asyncio's and
        # aiofastnet's Server both keep it as ``_protocol_factory``.
        inner = getattr(self._server, "_protocol_factory", None)
        if inner is None:
            raise RuntimeError("this event loop's Server hides its protocol factory; the HTTP front needs it")
        env, sockets, gate = self.env, self.sockets, self.reject_handshake
        self._server._protocol_factory = lambda: FrontProtocol(env, inner, sockets, gate)  # type: ignore[attr-defined]
        await self._server.start_serving()
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and socket, and stop listening."""
        for conn in list(self.connections):
            if conn.transport is not None and not conn.transport.is_disconnected:
                conn.transport.disconnect(graceful=False)
        self.sockets.close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def connections_from(self, ip: str) -> int:
        """Open sockets from ``ip`` (closed ones are forgotten on the way)."""
        return self.sockets.count(ip)

    def _factory(self, request: Any) -> Connection | WSUpgradeResponseWithListener | None:
        raw = request.path
        path = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        where = path.split("?")[0]
        streams = self.config.gateway and where == self.config.streams_path
        if where != self.config.path and not streams:
            return None  # picows answers 404
        self._next_id += 1
        conn = Connection(self.env, self._next_id, path, opened=self._opened, closed=self._closed)
        if streams:
            conn.role = "streams"
        offer = request.headers.get("sec-websocket-extensions") if self.config.permessage_deflate else None
        agreed = negotiate(offer) if offer else None
        if agreed is None:
            return conn
        header, conn.deflate = agreed
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response({"Sec-WebSocket-Extensions": header}), conn)

    def _opened(self, conn: Connection) -> None:
        self.connections.append(conn)
        self.history.append(conn)
        self._conn_event.set()

    def _closed(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        self.env.monitor.event("connection %d: closed (code %s, reason %r)", conn.id, conn.close_code,
                               conn.close_reason)
        self.on_close(conn)

    async def wait_for_connection(self, n: int = 1, timeout: float = 5.0) -> Connection:
        """Wait until ``n`` connections have been accepted in all; return the n-th."""
        async def wait() -> Connection:
            while len(self.history) < n:
                self._conn_event.clear()
                await self._conn_event.wait()
            return self.history[n - 1]
        return await asyncio.wait_for(wait(), timeout)
