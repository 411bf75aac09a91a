"""The emulator's WebSocket server: one picows listener per client connection.

It speaks Deribit's JSON-RPC v2 as PROTOCOL.md describes it, enforces heartbeats
(a ``test_request`` not answered within the interval closes the socket with 4000
"heartbeat close") and cancel-on-disconnect, streams a synthetic market, records every
frame and exposes fault injection (:mod:`drbfast.emulator.faults`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

def _int(value: Any) -> int:
    """picows' enums (WSCloseCode, WSMsgType) as plain ints."""
    return int(value)


from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from .config import EmulatorConfig
from .exchange import Exchange, Order, Token
from .market import Market, notification, parse_channel
from .errors import RpcError
from .rpc import HANDLERS, NO_RESPONSE

__all__ = ["Connection", "Emulator", "Frame", "TEST_REQUEST", "HEARTBEAT"]

log = logging.getLogger("drbfast.emulator")

#: The production frames, byte for byte (PROTOCOL.md 1.1: keys in reverse order).
TEST_REQUEST = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
HEARTBEAT = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'


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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400 overflows to inf: refuse, not echo
        raise ValueError("number out of range")
    return value


def normalize_method(method: str) -> str:
    """``/public/auth`` and ``/api/v2/public/auth`` name ``public/auth``: the docs title
    methods with a leading slash and call the heartbeat answer ``/api/v2/public/test``
    (PROTOCOL.md 1.3); production's answer to such names is not documented."""
    if method.startswith("/"):
        method = method[1:]
        if method.startswith("api/v2/"):
            method = method[7:]
    return method


class _Bucket:
    """Deribit's credit model: a leaky bucket refilled continuously up to a cap."""

    def __init__(self, cap: int, refill: float) -> None:
        self.cap = cap
        self.refill = refill
        self.level = float(cap)
        self.t = time.monotonic()

    def take(self, cost: int) -> bool:
        now = time.monotonic()
        self.level = min(self.cap, self.level + (now - self.t) * self.refill)
        self.t = now
        if self.level < cost:
            return False
        self.level -= cost
        return True


class Connection(WSListener):
    """The emulator's side of one client connection. Attributes are for assertions."""

    def __init__(self, emu: Emulator, conn_id: int, path: str) -> None:
        self.emu = emu
        self.id = conn_id
        self.path = path
        self.transport: WSTransport | None = None
        self.client_name: str | None = None
        self.client_id: str | None = None
        self.token: Token | None = None
        self.cod = False
        self.logged_out = False
        self.subscriptions: set[str] = set()
        self.heartbeat_interval: float | None = None
        #: (t_ns, direction, opcode, payload) of every frame, when recording is on
        self.frames: list[Frame] = []
        #: test_request round trips measured here with perf_counter_ns
        self.test_request_rtts_ns: list[int] = []
        self.test_requests_sent = 0
        self.heartbeats_sent = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = asyncio.get_running_loop().create_future()
        #: requests whose handler raised something other than RpcError (a bug: 11094)
        self.handler_errors = 0
        self._pending_tr: deque[tuple[int, int]] = deque()  # (seq, perf_counter_ns)
        self._tr_seq = 0
        self._hb_handle: asyncio.TimerHandle | None = None
        self._last_sent = time.monotonic()
        self._last_received = time.monotonic()
        self._after: list[Callable[[], Any]] = []
        self._credits = _Bucket(emu.config.credit_cap, emu.config.credit_refill)
        self._sub_credits = _Bucket(emu.config.subscribe_cap, emu.config.subscribe_refill)
        self.response_delay = 0.0
        self.silenced = False
        #: channels whose regular stream is paused for a flood on this connection
        self.flooding: set[str] = set()
        self._fragments: list[bytes] | None = None
        self.drop_after_messages: int | None = None
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
        self.emu._connected(self)
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
        self.emu._disconnected(self)
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
            log.exception("connection %d: frame handling failed", self.id)
            self.handler_errors += 1

    def _on_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        self._last_received = time.monotonic()
        if self.emu.config.record:
            self.frames.append(Frame(time.perf_counter_ns(), "in", _int(mt), frame.get_payload_as_bytes()))
        if mt == WSMsgType.TEXT or (mt == WSMsgType.CONTINUATION and self._fragments is not None):
            # Reassemble fragmented client messages (RFC 6455 5.4).
            if mt == WSMsgType.TEXT:
                self._fragments = []
            assert self._fragments is not None
            self._fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            payload, self._fragments = b"".join(self._fragments), None
            self.messages_received += 1
            self._arm_idle()
            self._on_text(payload)
        elif mt == WSMsgType.BINARY:
            self.messages_received += 1
            self.send_json({"jsonrpc": "2.0", "error": RpcError(11050, "bad_request", "binary frames are not accepted").as_error()}, usin=None)
        elif mt == WSMsgType.CLOSE:
            if self.close_code is None:
                self.close_code, self.close_reason = _int(frame.get_close_code()), frame.get_close_reason()
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    # ------------------------------------------------------------ requests

    def _on_text(self, payload: bytes) -> None:
        usin = time.time_ns() // 1000
        cfg = self.emu.config
        if len(payload) > cfg.max_request_size:
            # PROTOCOL.md 3.4: over 32 kB -> -32600 with no id.
            self.send_json({"jsonrpc": "2.0", "error": RpcError(-32600, "request entity too large").as_error()}, usin)
            return
        try:
            # Strict JSON: NaN/Infinity are not JSON (production answers 11050); deep
            # nesting ends in RecursionError, which is bad input too.
            msg = json.loads(payload, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError):
            # PROTOCOL.md 3.2: not JSON -> 11050 bad_request "invalid json", no id.
            self.send_json({"jsonrpc": "2.0", "error": RpcError(11050, "bad_request", "invalid json").as_error()}, usin)
            return
        if not isinstance(msg, dict):
            self.send_json({"jsonrpc": "2.0", "error": RpcError(11050, "bad_request", "invalid json").as_error()}, usin)
            return
        has_id = "id" in msg
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params")
        if params is None:
            # Absent and null both mean "no params" (JSON-RPC 2.0 4: params may be omitted).
            params = {}
        if isinstance(method, str):
            method = normalize_method(method)

        def reply(result: Any = None, error: RpcError | None = None) -> None:
            body: dict[str, Any] = {"jsonrpc": "2.0"}
            if has_id:
                body["id"] = req_id
            if error is not None:
                body["error"] = error.as_error()
            else:
                body["result"] = result
            if self.response_delay > 0:
                asyncio.get_running_loop().call_later(self.response_delay, self.send_json, body, usin)
            else:
                self.send_json(body, usin)

        if not isinstance(method, str):
            reply(error=RpcError(-32601, "Method not found"))
            return
        if method == "public/test":
            self._answer_test_request()
        fault = self.emu.faults.take_method_fault(method, self.id)
        if fault is not None:
            log.info("connection %d: fault %s on %s", self.id, fault.action, method)
            if fault.action == "drop":
                self.drop()
            elif fault.action == "close":
                self.close(fault.code, fault.reason)
            elif fault.action == "error":
                reply(error=RpcError(fault.code, fault.reason))
                if fault.code == 10028:
                    self.close(1008, "too_many_requests")
            return  # "silence": swallowed, never answered
        bucket, cost = (self._sub_credits, cfg.subscribe_cost) if method.endswith("/subscribe") else (self._credits, cfg.credit_cost)
        if not bucket.take(cost):
            # PROTOCOL.md 9: 10028 and the session is terminated.
            reply(error=RpcError(10028, "too_many_requests"))
            self.close(1008, "too_many_requests")
            return
        handler = HANDLERS.get(method)
        if handler is None:
            reply(error=RpcError(-32601, "Method not found"))
            return
        if not isinstance(params, dict):
            reply(error=RpcError(-32602, "Invalid params", {"reason": "must be an object", "param": "params"}))
            return
        if method.startswith("private/") and not self._authorize(params):
            reply(error=RpcError(13009, "unauthorized", {"reason": "invalid_token", "param": "access_token"}))
            return
        try:
            result = handler(self, params)
        except RpcError as exc:
            reply(error=exc)
        except Exception:  # a handler bug must never close the socket with 1011
            log.exception("connection %d: handler of %s failed", self.id, method)
            self.handler_errors += 1
            reply(error=RpcError(11094, "internal_server_error"))
        else:
            if result is not NO_RESPONSE:
                reply(result)
        after, self._after = self._after, []
        for action in after:
            action()

    def _authorize(self, params: dict[str, Any]) -> bool:
        now = time.time()
        token = params.get("access_token")
        if isinstance(token, str):
            found = self.emu.exchange.token(token, now, self.id)
            if found is None:
                return False
            if self.client_id is None:
                self.on_authenticated(found)
            return True
        if self.token is None:
            return False
        if self.token.expires_at <= now or self.token.access_token not in self.emu.exchange.tokens:
            return False
        return True

    def on_authenticated(self, token: Token) -> None:
        first = self.client_id is None
        self.client_id = token.client_id
        self.token = token
        if first:
            # Account-scope cancel-on-disconnect applies to every new connection.
            self.cod = self.cod or self.emu.exchange.cod_account.get(token.client_id, False)

    def after_response(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once the response of the current request has been sent."""
        self._after.append(action)

    # ------------------------------------------------------------ sending

    def send_json(self, body: dict[str, Any], usin: int | None) -> None:
        """Send a response, adding Deribit's usIn/usOut/usDiff/testnet fields."""
        if usin is None:
            usin = time.time_ns() // 1000
        usout = time.time_ns() // 1000
        body["usIn"] = usin
        body["usOut"] = usout
        body["usDiff"] = usout - usin
        body["testnet"] = self.emu.config.testnet
        self.send(json.dumps(body, separators=(",", ":")).encode())

    def send(self, payload: bytes, opcode: WSMsgType = WSMsgType.TEXT, fin: bool = True) -> None:
        """Send one frame (recorded, counted, subject to drop_after_messages)."""
        t = self.transport
        if t is None or t.is_disconnected or t.is_close_frame_sent or self.silenced:
            return
        if self.emu.config.record:
            self.frames.append(Frame(time.perf_counter_ns(), "out", _int(opcode), payload))
        t.send(opcode, payload, fin)
        self.messages_sent += 1
        self._last_sent = time.monotonic()
        if self.drop_after_messages is not None:
            self.drop_after_messages -= 1
            if self.drop_after_messages <= 0:
                self.drop_after_messages = None
                self.drop()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket with ``code`` and ``reason`` (a clean close handshake)."""
        t = self.transport
        if t is None or t.is_disconnected:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        t.send_close(WSCloseCode(code) if code in WSCloseCode._value2member_map_ else code, reason.encode())  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, t.disconnect)

    def drop(self) -> None:
        """Drop the TCP connection with no close frame (the client sees 1006)."""
        t = self.transport
        if t is None or t.is_disconnected:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = 1006, ""
        t.underlying_transport.abort()

    # ------------------------------------------------------------ heartbeats

    def start_heartbeat(self, interval: float) -> None:
        """Begin production's heartbeat cycle at ``interval`` seconds (PROTOCOL.md 1.2)."""
        self.stop_heartbeat()
        self.heartbeat_interval = interval
        cfg = self.emu.config
        self._hb_handle = asyncio.get_running_loop().call_later(interval * cfg.first_factor, self._heartbeat_tick)

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
        cfg = self.emu.config
        # The plain heartbeat only when the server has been quiet (PROBE: none on a busy socket).
        if time.monotonic() - self._last_sent >= interval:
            self.send(HEARTBEAT)
            self.heartbeats_sent += 1
        self.send_test_request(deadline=interval * cfg.deadline_factor)
        self._hb_handle = asyncio.get_running_loop().call_later(interval * cfg.period_factor, self._heartbeat_tick)

    def send_test_request(self, deadline: float | None = None) -> None:
        """Send one test_request now; if ``deadline`` is set and it is not answered by
        a ``public/test`` in time, close with 4000 "heartbeat close"."""
        self._tr_seq += 1
        seq = self._tr_seq
        self._pending_tr.append((seq, time.perf_counter_ns()))
        self.send(TEST_REQUEST)
        self.test_requests_sent += 1
        if deadline is not None:
            asyncio.get_running_loop().call_later(deadline, self._check_deadline, seq)

    def _check_deadline(self, seq: int) -> None:
        if self._pending_tr and self._pending_tr[0][0] <= seq:
            log.info("connection %d missed a test_request: closing with 4000", self.id)
            self.stop_heartbeat()
            self.close(4000, "heartbeat close")

    def _answer_test_request(self) -> None:
        if self._pending_tr:
            _, sent = self._pending_tr.popleft()
            self.test_request_rtts_ns.append(time.perf_counter_ns() - sent)

    def _arm_idle(self) -> None:
        timeout = self.emu.config.idle_timeout
        if timeout is None:
            return
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._idle_handle = asyncio.get_running_loop().call_later(timeout, self.drop)

    async def writable(self) -> None:
        """Wait until the socket takes more data (flow control for floods)."""
        await self._writable.wait()


class _HandshakeCutter(asyncio.Protocol):
    """Reads the client's HTTP upgrade request, then drops the TCP connection with no
    answer: the client meets EOF in the opening handshake."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.transport is not None and b"\r\n\r\n" in data:
            self.transport.abort()

    def eof_received(self) -> bool | None:
        return False


class Emulator:
    """A local Deribit on 127.0.0.1. Use as ``async with Emulator(config) as emu:``.

    ``emu.url`` is the endpoint; ``emu.connections`` the live server-side connections
    (newest last), ``emu.history`` every connection ever accepted; ``emu.exchange`` the
    orders and tokens; ``emu.faults`` the fault-injection controls.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        from .faults import Faults

        cfg = config or EmulatorConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"EmulatorConfig has no field {key!r}")
            setattr(cfg, key, value)
        self.config = cfg
        self.market = Market(seed=cfg.seed)
        self.exchange = Exchange(keys={cfg.client_id: cfg.client_secret}, token_ttl=cfg.token_ttl, signature_window=cfg.signature_window)
        self.connections: list[Connection] = []
        self.history: list[Connection] = []
        self.subscribers: dict[str, set[Connection]] = {}
        self.faults = Faults(self)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pump: asyncio.Task[None] | None = None
        self._next_id = 0
        self._conn_event = asyncio.Event()
        self._tick = 0
        self.ssl_context: ssl.SSLContext | None = None
        self.client_ssl_context: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"Emulator(url={self.url!r}, connections={len(self.connections)})"

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.tls else "ws"
        host = "localhost" if self.config.tls and self.config.host == "127.0.0.1" else self.config.host
        return f"{scheme}://{host}:{self.port}{self.config.path}"

    async def start(self) -> Emulator:
        """Start listening (port 0 picks a free one) and the market streams."""
        cfg = self.config
        if cfg.tls:
            from .tls import server_context

            self.ssl_context, self.client_ssl_context = server_context(cfg.certfile, cfg.keyfile)
        self._server = await ws_create_server(
            self._factory, cfg.host, cfg.port, ssl=self.ssl_context,
            websocket_handshake_timeout=5, max_frame_size=16 * 1024 * 1024,
            start_serving=False,
        )
        # Every accepted socket passes a gate first, so Faults.reject_handshakes can cut
        # one after the HTTP upgrade request and before picows answers 101. picows
        # builds its protocol factory inside ws_create_server; asyncio's and
        # aiofastnet's Server both keep it as ``_protocol_factory``.
        inner = getattr(self._server, "_protocol_factory", None)
        if inner is None:
            raise RuntimeError("this event loop's Server hides its protocol factory; handshake faults need it")
        self._server._protocol_factory = lambda: self._gate(inner)  # type: ignore[attr-defined]
        await self._server.start_serving()
        self.port = self._server.sockets[0].getsockname()[1]
        self._pump = asyncio.get_running_loop().create_task(self._market_pump())
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass
        for conn in list(self.connections):
            if conn.transport is not None and not conn.transport.is_disconnected:
                conn.transport.disconnect(graceful=False)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _gate(self, inner: Callable[[], asyncio.BaseProtocol]) -> asyncio.BaseProtocol:
        if self.faults.take_handshake_rejection():
            return _HandshakeCutter()
        return inner()

    def _factory(self, request: Any) -> Connection | None:
        raw = request.path
        path = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        if path.split("?")[0] != self.config.path:
            return None  # picows answers 404
        self._next_id += 1
        return Connection(self, self._next_id, path)

    def _connected(self, conn: Connection) -> None:
        self.connections.append(conn)
        self.history.append(conn)
        self._conn_event.set()

    def _disconnected(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        for channel in list(conn.subscriptions):
            self.remove_subscription(conn, channel)
        if conn.cod and not conn.logged_out and conn.client_id is not None:
            cancelled = self.exchange.cancel_where(int(time.time() * 1000), connection=conn.id)
            for order in cancelled:
                self.order_event(order)
            if cancelled:
                log.info("connection %d closed: cancel-on-disconnect cancelled %d orders", conn.id, len(cancelled))
        self.exchange.revoke_connection(conn.id)

    async def wait_for_connection(self, n: int = 1, timeout: float = 5.0) -> Connection:
        """Wait until ``n`` connections have been accepted in all; return the n-th."""
        async def wait() -> Connection:
            while len(self.history) < n:
                self._conn_event.clear()
                await self._conn_event.wait()
            return self.history[n - 1]
        return await asyncio.wait_for(wait(), timeout)

    # ------------------------------------------------------------ subscriptions

    def add_subscription(self, conn: Connection, channel: str) -> None:
        if channel in conn.subscriptions:
            return  # held already: acked, but no new snapshot (PROTOCOL.md 4.3)
        conn.subscriptions.add(channel)
        self.subscribers.setdefault(channel, set()).add(conn)
        kind, instrument, _ = parse_channel(channel)
        if kind == "book" and instrument is not None:
            snap = notification(channel, self.market.snapshot(instrument, int(time.time() * 1000)))
            conn.after_response(lambda: conn.send(snap))

    def remove_subscription(self, conn: Connection, channel: str) -> bool:
        if channel not in conn.subscriptions:
            return False
        conn.subscriptions.discard(channel)
        subs = self.subscribers.get(channel)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subscribers[channel]
        return True

    def order_event(self, order: Order) -> None:
        """Tell the owner's connections subscribed to user.orders about ``order``."""
        channel = f"user.orders.{order.instrument_name}.raw"
        subs = self.subscribers.get(channel)
        if not subs:
            return
        frame = notification(channel, order.as_dict())
        for conn in list(subs):
            if conn.client_id == order.client_id:
                conn.send(frame)

    async def _market_pump(self) -> None:
        """Every tick, move the subscribed instruments and send each channel's frame,
        serialized once for all its subscribers."""
        period = self.config.tick_interval
        while True:
            await asyncio.sleep(period)
            self._tick += 1
            if not self.subscribers:
                continue
            now_ms = int(time.time() * 1000)
            wanted: dict[str, set[str]] = {}
            for channel in self.subscribers:
                kind, instrument, _ = parse_channel(channel)
                if instrument is not None and kind in ("book", "ticker", "trades"):
                    wanted.setdefault(instrument, set()).add(kind)
            data: dict[tuple[str, str], Any] = {}
            for instrument, kinds in wanted.items():
                if "book" in kinds:
                    data["book", instrument] = self.market.step_book(instrument, now_ms)
                if "ticker" in kinds:
                    data["ticker", instrument] = self.market.ticker(instrument, now_ms)
                if "trades" in kinds:
                    trades = self.market.trades(instrument, now_ms)
                    if trades:
                        data["trades", instrument] = trades
            for channel, subs in list(self.subscribers.items()):
                kind, instrument, _ = parse_channel(channel)
                if kind == "platform_state":
                    if self._tick % 10:
                        continue
                    payload: Any = {"locked": False, "price_index": "btc_usd"}
                elif instrument is not None and (kind, instrument) in data:
                    payload = data[kind, instrument]
                else:
                    continue
                frame = notification(channel, payload)
                for conn in list(subs):
                    if channel not in conn.flooding:
                        conn.send(frame)
