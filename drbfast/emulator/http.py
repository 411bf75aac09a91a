"""The front of every accepted socket: per-IP connection limit (HTTP 429), the handshake
fault gate, Deribit's HTTP API, and the hand-over of WebSocket upgrades to picows.

picows' server answers only WebSocket upgrades, so this small asyncio protocol reads
the request head first. An upgrade is replayed into picows' protocol (the transport is
switched to it); anything else is served here as HTTP/1.1 with keep-alive:

- ``GET /api/v2/public/get_instruments?currency=BTC``: query values are typed the way
  Deribit reads them (``true``/``false``, numbers, otherwise strings);
- ``POST /api/v2`` (or ``/api/v2/{method}``) with a JSON-RPC body;
- ``Authorization: Bearer <access_token>``, or a ``deri-hmac-sha256`` signature
  (PROTOCOL.md 5.1), for private methods.

Replies use the REST envelope seen in ccxt issues (``jsonrpc, [id,] result|error,
testnet, usIn, usOut, usDiff``; PROTOCOL.md 2) with HTTP 200 on success, 400 on an
error, 500 on 11094, 429 on 10028.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
from typing import Any, Callable

from .dispatch import INVALID_JSON, Environment, dispatch, parse_request
from .errors import RpcError
from .exchange import Token

__all__ = ["FrontProtocol", "HttpSession", "Sockets"]

MAX_HEAD = 16 * 1024
_ids = itertools.count(1_000_000)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error"}


def _typed(value: str) -> Any:
    """A query value as Deribit's HTTP API reads it."""
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        f = float(value)
        if f == f and f not in (float("inf"), float("-inf")):
            return f
    except ValueError:
        pass
    return value


class HttpSession:
    """One HTTP request as a session: no heartbeats, no subscriptions, no connection scope."""

    def __init__(self, token: Token | None) -> None:
        self.id = -next(_ids)  # never a WebSocket connection's id
        self.client_id = token.client_id if token is not None else None
        self.token = token
        self.cod = False
        self.logged_out = False
        self.client_name: str | None = None
        self.subscriptions: set[str] = set()

    def on_authenticated(self, token: Token) -> None:
        self.client_id = token.client_id
        self.token = token

    def start_heartbeat(self, interval: float) -> None:  # WebSocket only; never reached over HTTP
        pass

    def stop_heartbeat(self) -> None:
        pass

    def close(self, code: int = 1000, reason: str = "") -> None:
        pass


class Sockets:
    """Every accepted socket (WebSocket or HTTP) and its peer IP, for the per-IP limit."""

    def __init__(self) -> None:
        self._by_transport: dict[asyncio.BaseTransport, str] = {}

    def add(self, transport: asyncio.BaseTransport, ip: str) -> None:
        self._by_transport[transport] = ip

    def discard(self, transport: asyncio.BaseTransport) -> None:
        self._by_transport.pop(transport, None)

    def count(self, ip: str) -> int:
        """Open sockets from ``ip`` (closed ones are forgotten on the way)."""
        n = 0
        for sock, sip in list(self._by_transport.items()):
            if sock.is_closing():
                del self._by_transport[sock]
            elif sip == ip:
                n += 1
        return n

    def close_all(self) -> None:
        for sock in list(self._by_transport):
            if not sock.is_closing():
                sock.close()


class FrontProtocol(asyncio.Protocol):
    """Reads the request head and routes the socket (see the module docstring).

    ``env`` serves the HTTP API; ``inner_factory`` makes picows' protocol for an
    upgrade; ``sockets`` counts this socket while it is open; ``reject_handshake()``
    True cuts an upgrade before the 101 (a fault)."""

    def __init__(self, env: Environment, inner_factory: Callable[[], asyncio.BaseProtocol], sockets: Sockets,
                 reject_handshake: Callable[[], bool]) -> None:
        self.env = env
        self.inner_factory = inner_factory
        self.sockets = sockets
        self.reject_handshake = reject_handshake
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.ip = "?"
        self.handed_over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else "?"
        self.sockets.add(transport, self.ip)

    def data_received(self, data: bytes) -> None:
        if self.handed_over or self.transport is None:
            return
        self.buf += data
        try:
            self._process()
        except Exception:  # bad HTTP must not kill the server: answer 400 and close
            self._respond(400, b'{"error":"bad request"}', close=True)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.sockets.discard(self.transport)

    # ------------------------------------------------------------ routing

    def _process(self) -> None:
        while not self.handed_over and self.transport is not None and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._respond(413, b"", close=True)
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            limit = self.env.config.max_connections_per_ip
            if limit is not None and self.sockets.count(self.ip) > limit:
                # PROTOCOL.md 9: the 33rd simultaneous connection gets HTTP 429.
                self.env.monitor.event("connection from %s refused: over %d connections (HTTP 429)", self.ip, limit)
                self._respond(429, b"Too Many Requests", close=True, ctype="text/plain")
                return
            if "websocket" in headers.get("upgrade", "").lower():
                self._hand_over()
                return
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            close = headers.get("connection", "").lower() == "close"
            self._serve(method, target, headers, body, close)

    def _hand_over(self) -> None:
        """Give the socket (and the bytes read so far) to picows, or cut it if a
        :meth:`Faults.reject_handshakes` fault is armed."""
        assert self.transport is not None
        self.handed_over = True
        if self.reject_handshake():
            self.env.monitor.event("connection from %s: fault: handshake cut before the 101", self.ip)
            self.transport.abort()
            return
        inner = self.inner_factory()
        self.transport.set_protocol(inner)
        inner.connection_made(self.transport)
        data = bytes(self.buf)
        self.buf.clear()
        if isinstance(inner, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buf = memoryview(inner.get_buffer(len(view)))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                inner.buffer_updated(n)
                view = view[n:]
        else:
            inner.data_received(data)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ the HTTP API

    def _serve(self, method: str, target: str, headers: dict[str, str], body: bytes, close: bool) -> None:
        usin = time.time_ns() // 1000
        url = urllib.parse.urlsplit(target)
        path = url.path
        if not self.env.config.http or not path.startswith("/api/v2"):
            self._respond(404, b'{"error":"not found"}', close)
            return
        token = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = self.env.exchange.token(auth[7:].strip(), time.time(), 0)
        elif auth.lower().startswith("deri-hmac-sha256 "):
            try:
                token = self.env.exchange.authenticate_http(auth, method, target, body.decode("utf-8", "replace"),
                                                            time.time())
            except RpcError as exc:
                self._reply({"jsonrpc": "2.0", "error": exc.as_error()}, usin, 400, close)
                return
        session = HttpSession(token)
        rpc_method = path[len("/api/v2"):].lstrip("/")
        msg: Any
        if method == "GET":
            params = {k: _typed(v) for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True)}
            msg = {"jsonrpc": "2.0", "method": rpc_method, "params": params}
        elif method == "POST":
            if len(body) > self.env.config.max_request_size:
                self._reply({"jsonrpc": "2.0", "error": RpcError(-32600, "request entity too large").as_error()},
                            usin, 413, close)
                return
            try:
                msg = parse_request(body) if body else {}
            except ValueError:
                self._reply({"jsonrpc": "2.0", "error": INVALID_JSON.as_error()}, usin, 400, close)
                return
            if rpc_method and isinstance(msg, dict) and "method" not in msg:
                msg = {"jsonrpc": "2.0", "method": rpc_method, "params": msg}
        else:
            self._respond(405, b'{"error":"method not allowed"}', close)
            return
        outcome = dispatch(self.env, session, msg, http=True, ip=self.ip)
        if token is not None and token.ephemeral:
            self.env.exchange.tokens.pop(token.access_token, None)  # a signed request's token dies with it
            self.env.exchange.refresh_tokens.pop(token.refresh_token, None)
        for action in outcome.after:
            action()
        self.env.hub.publish_events()
        err = outcome.error
        status = 200 if err is None else 429 if err.code == 10028 else 500 if err.code == 11094 else 400
        self._reply(outcome.body or {"jsonrpc": "2.0", "result": None}, usin, status, close)

    def _reply(self, body: dict[str, Any], usin: int, status: int, close: bool) -> None:
        # The REST key order: testnet before usIn/usOut/usDiff (PROTOCOL.md 2).
        usout = time.time_ns() // 1000
        body["testnet"] = self.env.config.testnet
        body["usIn"] = usin
        body["usOut"] = usout
        body["usDiff"] = usout - usin
        self._respond(status, json.dumps(body, separators=(",", ":")).encode(), close)

    def _respond(self, status: int, payload: bytes, close: bool, ctype: str = "application/json") -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: {ctype}\r\n"
                f"content-length: {len(payload)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n")
        t.write(head.encode() + payload)
        if close:
            t.close()
