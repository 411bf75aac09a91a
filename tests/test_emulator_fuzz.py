"""Bad input never crashes the emulator: specific cases from issue 10, then hypothesis
throwing arbitrary JSON values and arbitrary bytes at every request handler.

The fuzz part drives an emulator running on its own event loop thread with the
synchronous `websockets` client, so hypothesis runs plain synchronous examples."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig, sign
from drbfast.emulator.rpc import HANDLERS

from .wsclient import WsClient

TIMEOUT = 10.0


# ---------------------------------------------------------------- the cases of issue 10


async def test_deep_nesting_and_non_json_numbers_are_11050(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    for text in ("[" * 1000, "[" * 5000 + "]" * 5000, '{"jsonrpc":"2.0","id":NaN,"method":"public/test"}',
                 '{"jsonrpc":"2.0","id":1,"method":"public/test","params":{"x":Infinity}}',
                 '{"jsonrpc":"2.0","id":1,"method":"public/test","params":{"x":-Infinity}}',
                 '{"jsonrpc":"2.0","id":1,"method":"public/test","params":{"x":1e400}}',
                 '{"jsonrpc":"2.0","id":' + "9" * 5000 + ',"method":"public/test"}'):
        await c.ws.send(text)
        msg = await c.next_message()
        assert "id" not in msg, text[:40]
        assert msg["error"] == {"code": 11050, "data": "invalid json", "message": "bad_request"}
    assert await c.result("public/test") == {"version": "1.2.26"}
    assert emulator.handler_errors == 0
    await c.close()


async def test_huge_and_nan_numbers_are_invalid_params(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.auth()
    await c.result("private/enable_cancel_on_disconnect")
    await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000)
    for interval in (10**400, -(10**400), 2**64):
        err = (await c.call("public/set_heartbeat", interval=interval))["error"]
        assert err["code"] == -32602 and err["data"]["param"] == "interval", interval
    ts = 10**400
    err = (await c.call("public/auth", grant_type="client_signature", client_id=DEMO_CLIENT_ID, timestamp=ts,
                        nonce="n", data="", signature=sign(DEMO_CLIENT_SECRET, 1, "n", "")))["error"]
    assert err["code"] in (13009, -32602)
    # Still up, and cancel-on-disconnect has cancelled nothing.
    assert len(await c.result("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL")) == 1
    assert emulator.connections[-1].close_code is None
    await c.close()


async def test_leading_slash_and_null_params(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    for method in ("/public/test", "/api/v2/public/test"):
        await c.ws.send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": method, "params": None}))
        msg = await c.next_message()
        assert msg["id"] == 5 and msg["result"] == {"version": "1.2.26"}, method
    ts = int(time.time() * 1000)
    await c.ws.send(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "/public/auth", "params": {
        "grant_type": "client_signature", "client_id": DEMO_CLIENT_ID, "timestamp": ts, "nonce": "n", "data": "",
        "signature": sign(DEMO_CLIENT_SECRET, ts, "n", "")}}))
    assert "access_token" in (await c.next_message())["result"]
    await c.close()


# ---------------------------------------------------------------- fuzzing


class ThreadedEmulator:
    """An emulator on its own event loop in a daemon thread."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.emu: Emulator | None = None
        self.errors: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(lambda _l, ctx: self.errors.append(ctx))
        self.emu = Emulator(self.config)
        self.loop.run_until_complete(self.emu.start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Emulator:
        self._thread.start()
        assert self._ready.wait(TIMEOUT)
        assert self.emu is not None
        return self.emu

    def __exit__(self, *exc: object) -> None:
        assert self.emu is not None
        asyncio.run_coroutine_threadsafe(self.emu.stop(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)


class FuzzClient:
    """One authenticated connection; ``probe()`` proves it still serves."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        ts = int(time.time() * 1000)
        self.call("public/auth", {"grant_type": "client_signature", "client_id": DEMO_CLIENT_ID, "timestamp": ts,
                                  "nonce": "n", "data": "", "signature": sign(DEMO_CLIENT_SECRET, ts, "n", "")})

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        req_id = f"probe-{next(self.ids)}"
        self.ws.send(json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}))
        return self.until(req_id)

    def until(self, req_id: str) -> dict[str, Any]:
        """Read up to the reply to ``req_id``; fail on an internal error or a close."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            raw = self.ws.recv(timeout=TIMEOUT)
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                continue
            if msg.get("method") == "heartbeat" and msg["params"]["type"] == "test_request":
                self.ws.send('{"jsonrpc":"2.0","id":"hb","method":"public/test","params":{}}')
            err = msg.get("error")
            assert not (isinstance(err, dict) and err.get("code") == 11094), f"a handler raised: {msg}"
            if msg.get("id") == req_id:
                return msg
        raise AssertionError("no reply")

    def probe(self) -> None:
        assert self.call("public/test", {})["result"]["version"]


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[Emulator, FuzzClient]]:
    cfg = EmulatorConfig(credit_cap=10**12, credit_refill=10**12, subscribe_cap=10**12, subscribe_refill=10**12,
                         matching_cap=10**12, matching_refill=10**12,
                         record=False, tick_interval=0.05)
    runner = ThreadedEmulator(cfg)
    with runner as emu:
        with connect(emu.url, open_timeout=TIMEOUT, max_size=None) as ws:
            yield emu, FuzzClient(ws)
    assert not runner.errors, f"the emulator's event loop reported: {runner.errors[:3]}"


json_scalars = (st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -(10**400), 2**63, -1, 0])
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
                | st.sampled_from(["BTC-PERPETUAL", "ETH-PERPETUAL", "BTC", "limit", "market", "buy", "connection",
                                   "account", "book.BTC-PERPETUAL.100ms", "user.orders.any.any.raw"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
PARAM_NAMES = ["instrument_name", "amount", "price", "type", "label", "order_id", "channels", "interval", "scope",
               "currency", "kind", "depth", "grant_type", "client_id", "timestamp", "signature", "nonce", "data",
               "refresh_token", "access_token", "time_in_force", "post_only", "reduce_only", "reject_post_only",
               "max_show", "contracts", "trigger", "trigger_price", "expected_result", "client_name",
               "client_version", "detailed", "count", "offset", "index_name", "expired", "valid_until"]
#: private/logout closes the socket by design, so it is left out.
METHODS = sorted(m for m in HANDLERS if m != "private/logout")
params_st = st.one_of(
    st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=10), json_values, max_size=6),
    json_values,
)
requests_st = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0") | json_values, "method": st.sampled_from(METHODS) | json_values},
    optional={"id": json_values, "params": params_st},
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests_st)
def test_fuzz_requests_never_crash_a_handler(fuzz_target: tuple[Emulator, FuzzClient], request: dict[str, Any]) -> None:
    emu, client = fuzz_target
    client.ws.send(json.dumps(request))
    client.probe()


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=json_values)
def test_fuzz_arbitrary_json_documents(fuzz_target: tuple[Emulator, FuzzClient], value: Any) -> None:
    emu, client = fuzz_target
    client.ws.send(json.dumps(value))
    client.probe()


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=200), text=st.text(max_size=200))
def test_fuzz_arbitrary_bytes_and_text(fuzz_target: tuple[Emulator, FuzzClient], data: bytes, text: str) -> None:
    emu, client = fuzz_target
    client.ws.send(data)  # a BINARY frame
    client.ws.send(text)
    client.probe()


def _raw_http(port: int, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300) | st.builds(lambda head, tail: head + tail,
                                                st.sampled_from([b"GET /api/v2/", b"POST /api/v2 HTTP/1.1\r\n",
                                                                 b"GET / HTTP/1.1\r\n\r\n"]),
                                                st.binary(max_size=200)))
def test_fuzz_http_front_with_arbitrary_bytes(fuzz_target: tuple[Emulator, FuzzClient], data: bytes) -> None:
    emu, client = fuzz_target
    reply = _raw_http(emu.port, data)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 "), reply[:60]
    assert b" 500 " not in reply.split(b"\r\n", 1)[0]
    client.probe()


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests_st)
def test_fuzz_http_post_json_rpc(fuzz_target: tuple[Emulator, FuzzClient], request: dict[str, Any]) -> None:
    emu, client = fuzz_target
    body = json.dumps(request).encode()
    reply = _raw_http(emu.port, b"POST /api/v2 HTTP/1.1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                      % (len(body), body))
    status = reply.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 ") and b" 500 " not in status, reply[:200]
    json.loads(reply.split(b"\r\n\r\n", 1)[1])


def test_fuzzing_left_no_handler_error_and_no_1011(fuzz_target: tuple[Emulator, FuzzClient]) -> None:
    emu, client = fuzz_target
    client.probe()
    assert emu.handler_errors == 0 and sum(c.handler_errors for c in emu.history) == 0
    assert all(c.close_code != 1011 for c in emu.history)
    assert len(emu.history) == 1, "one connection served the whole run"
