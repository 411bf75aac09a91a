"""The emulator's transport as production runs it: the HTTP API on the WebSocket port,
the per-IP connection limit (HTTP 429), the idle cut, TLS with a CA, floods that end,
the CLI's fault log, and ccxt's async client against it."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
import urllib.parse
from typing import Any

import pytest
import websockets

from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

from .wsclient import TIMEOUT, WsClient


async def http(emu: Emulator, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None,
               ssl_ctx: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request over a raw socket (no HTTP library between us and the wire)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "localhost" if ssl_ctx else "127.0.0.1", emu.port, ssl=ssl_ctx), TIMEOUT)
    head = f"{method} {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {len(body)}\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    raw = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    hdrs, _, payload = rest.partition(b"\r\n\r\n")
    parsed = {}
    for line in hdrs.decode().split("\r\n"):
        k, _, v = line.partition(":")
        parsed[k.strip().lower()] = v.strip()
    return int(status_line.split()[1]), parsed, payload


async def test_http_get_with_query_parameters(emulator: Emulator) -> None:
    status, headers, body = await http(emulator, "GET", "/api/v2/public/get_instruments?currency=BTC&kind=future&expired=false")
    assert status == 200 and headers["content-type"] == "application/json"
    msg = json.loads(body)
    # The REST envelope (ccxt issues, PROTOCOL.md 2): testnet before usIn/usOut/usDiff, no id.
    assert list(msg) == ["jsonrpc", "result", "testnet", "usIn", "usOut", "usDiff"]
    assert {i["instrument_name"] for i in msg["result"]} == {"BTC-PERPETUAL", "BTC-26DEC26"}
    status, _, body = await http(emulator, "GET", "/api/v2/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=5")
    assert status == 200 and len(json.loads(body)["result"]["bids"]) == 5


async def test_http_post_json_rpc_errors_and_private_calls(emulator: Emulator) -> None:
    req = {"jsonrpc": "2.0", "id": 7, "method": "public/auth", "params": {
        "grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}
    status, _, body = await http(emulator, "POST", "/api/v2", json.dumps(req).encode())
    msg = json.loads(body)
    assert status == 200 and list(msg) == ["jsonrpc", "id", "result", "testnet", "usIn", "usOut", "usDiff"]
    token = msg["result"]["access_token"]
    status, _, body = await http(emulator, "GET", "/api/v2/private/get_open_orders",
                                 headers={"authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["result"] == []
    status, _, body = await http(emulator, "GET", "/api/v2/private/get_open_orders")
    assert status == 400 and json.loads(body)["error"]["code"] == 13009
    # WebSocket-only methods, and subscribe with a query-encoded list (ccxt issue 6931).
    status, _, body = await http(emulator, "GET", "/api/v2/public/set_heartbeat?interval=30")
    assert status == 400 and json.loads(body)["error"] == {"code": 10030, "message": "must_be_websocket_request"}
    status, _, body = await http(emulator, "GET", "/api/v2/public/subscribe?channels=book.BTC-PERPETUAL.100ms")
    assert json.loads(body)["error"]["data"] == {"reason": "value must be a list", "param": "channels"}
    status, _, body = await http(emulator, "POST", "/api/v2", b'{"jsonrpc":"2.0","id":1,"method":"public/test","params":{"x":NaN}}')
    assert status == 400 and json.loads(body)["error"]["code"] == 11050
    status, _, _ = await http(emulator, "GET", "/nope")
    assert status == 404


async def test_http_keep_alive_serves_several_requests(emulator: Emulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
    for n in range(3):
        body = json.dumps({"jsonrpc": "2.0", "id": n, "method": "public/get_time"}).encode()
        writer.write(b"POST /api/v2 HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        assert json.loads(await reader.readexactly(length))["id"] == n
    writer.close()


async def test_connection_limit_per_ip_is_http_429() -> None:
    async with Emulator(EmulatorConfig(max_connections_per_ip=3)) as emu:
        held = [await WsClient.open(emu.url) for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as info:
            await asyncio.wait_for(websockets.connect(emu.url), TIMEOUT)
        assert info.value.response.status_code == 429
        await held[0].close()
        await asyncio.sleep(0.05)
        again = await WsClient.open(emu.url)  # a slot is free again
        assert (await again.result("public/test"))["version"]
        for c in held[1:] + [again]:
            await c.close()


async def test_idle_socket_is_cut_but_a_subscribed_or_heartbeating_one_stays() -> None:
    async with Emulator(EmulatorConfig(idle_timeout=0.3, min_heartbeat=0.1)) as emu:
        idle = await WsClient.open(emu.url)
        subscribed = await WsClient.open(emu.url)
        await subscribed.result("public/subscribe", channels=["platform_state"])
        t0 = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed) as info:
            await idle.next_message()
        assert info.value.rcvd is None, "dropped with no close frame (1006), as production"
        assert 0.25 < time.monotonic() - t0 < 3
        await asyncio.sleep(0.4)
        assert (await subscribed.result("public/test"))["version"]
        await subscribed.close()


async def test_tls_serves_a_leaf_signed_by_a_ca(loop_exceptions: list[Any]) -> None:
    from cryptography import x509

    async with Emulator(EmulatorConfig(tls=True)) as emu:
        assert emu.ca_path is not None and emu.url.startswith("wss://localhost:")
        ctx = ssl.create_default_context(cafile=emu.ca_path)
        c = await WsClient.open(emu.url, ssl=ctx)
        assert (await c.result("public/test"))["version"]
        await c.close()
        status, _, body = await http(emu, "GET", "/api/v2/public/get_time", ssl_ctx=ctx)
        assert status == 200 and json.loads(body)["result"] > 0
        writer_ctx = ssl.create_default_context(cafile=emu.ca_path)
        _, w = await asyncio.open_connection("localhost", emu.port, ssl=writer_ctx)
        der = w.get_extra_info("ssl_object").getpeercert(binary_form=True)
        w.close()
        leaf = x509.load_der_x509_certificate(der)
        assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        ca = x509.load_pem_x509_certificate(open(emu.ca_path, "rb").read())
        assert leaf.issuer == ca.subject != leaf.subject
        await asyncio.sleep(0.05)
        loop_exceptions[:] = [e for e in loop_exceptions if e.get("message") != "SSL handshake failed"]


async def test_flood_ends_when_the_socket_is_gone(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    conn = await emulator.wait_for_connection(1)
    # The client reads nothing: the socket fills, then it is dropped mid-flood.
    asyncio.get_running_loop().call_later(0.3, conn.drop)
    t0 = time.monotonic()
    result = await emulator.faults.flood(conn, count=10_000_000, timeout=5.0)
    assert time.monotonic() - t0 < 5.0 + 1.0
    assert 0 < result.sent < 10_000_000
    del c


async def test_flood_honours_its_timeout_on_a_stalled_reader(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    conn = await emulator.wait_for_connection(1)
    t0 = time.monotonic()
    result = await emulator.faults.flood(conn, count=10_000_000, timeout=0.5)
    assert time.monotonic() - t0 < 2.0 and result.sent < 10_000_000
    conn.drop()
    del c


async def test_cli_logs_what_its_faults_do() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "emulator", "--test-request-rate", "20", "--close-at", "0.6",
        "--duration", "1.5", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    url = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode().split()[-1]
    async with websockets.connect(url) as ws:
        try:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if msg.get("method") == "heartbeat":
                    await ws.send('{"jsonrpc":"2.0","id":1,"method":"public/test","params":{}}')
        except websockets.ConnectionClosed:
            pass
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    log = err.decode()
    assert "answered in" in log, log
    assert "closing with 1012 'maintenance'" in log, log


async def test_ccxt_loads_markets_and_watches_ticker_and_book(emulator: Emulator) -> None:
    ccxt_pro = pytest.importorskip("ccxt.pro")
    http_url = emulator.http_url.rsplit("/api/v2", 1)[0]
    exchange = ccxt_pro.deribit({"enableRateLimit": False})
    exchange.urls["api"] = {"rest": http_url, "ws": emulator.url}
    exchange.urls["test"] = exchange.urls["api"]
    try:
        markets = await asyncio.wait_for(exchange.load_markets(), TIMEOUT)
        assert "BTC/USD:BTC" in markets
        ticker = await asyncio.wait_for(exchange.watch_ticker("BTC/USD:BTC"), TIMEOUT)
        assert ticker["bid"] and ticker["ask"] and ticker["bid"] < ticker["ask"]
        book = await asyncio.wait_for(exchange.watch_order_book("BTC/USD:BTC"), TIMEOUT)
        assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    finally:
        await exchange.close()


def test_query_values_are_typed_like_deribit() -> None:
    from drbfast.emulator.http import _typed

    q = dict(urllib.parse.parse_qsl("a=true&b=10&c=0.5&d=BTC&e=false&f=nan"))
    assert {k: _typed(v) for k, v in q.items()} == {"a": True, "b": 10, "c": 0.5, "d": "BTC", "e": False, "f": "nan"}


async def test_http_rate_limit_is_10028_with_status_429() -> None:
    async with Emulator(EmulatorConfig(credit_cap=1_000, credit_cost=500, credit_refill=1.0)) as emu:
        for _ in range(2):
            assert (await http(emu, "GET", "/api/v2/public/get_time"))[0] == 200
        status, _, body = await http(emu, "GET", "/api/v2/public/get_time")
        assert status == 429 and json.loads(body)["error"] == {"code": 10028, "message": "too_many_requests"}


async def test_http_signature_authorization(emulator: Emulator) -> None:
    import hashlib
    import hmac as hmac_

    def signed(target: str, secret: str = DEMO_CLIENT_SECRET, ts: int | None = None) -> dict[str, str]:
        ts = int(time.time() * 1000) if ts is None else ts
        payload = f"{ts}\nabc\nGET\n{target}\n\n".encode()
        sig = hmac_.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return {"authorization": f"deri-hmac-sha256 id={DEMO_CLIENT_ID},ts={ts},sig={sig},nonce=abc"}

    target = "/api/v2/private/get_account_summary?currency=BTC"
    status, _, body = await http(emulator, "GET", target, headers=signed(target))
    assert status == 200 and json.loads(body)["result"]["currency"] == "BTC"
    status, _, body = await http(emulator, "GET", target, headers=signed(target, secret="wrong"))
    assert status == 400 and json.loads(body)["error"]["code"] == 13004
    status, _, body = await http(emulator, "GET", target, headers=signed(target, ts=1))
    assert status == 400 and json.loads(body)["error"]["code"] == 13009
    assert not [t for t in emulator.exchange.tokens.values() if t.ephemeral], "signed requests leave no token"


async def test_ccxt_private_rest_balance_and_order(emulator: Emulator) -> None:
    ccxt_async = pytest.importorskip("ccxt.async_support")
    exchange = ccxt_async.deribit({"apiKey": DEMO_CLIENT_ID, "secret": DEMO_CLIENT_SECRET, "enableRateLimit": False})
    exchange.urls["api"] = {"rest": emulator.http_url.rsplit("/api/v2", 1)[0], "ws": emulator.url}
    try:
        await asyncio.wait_for(exchange.load_markets(), TIMEOUT)
        balance = await asyncio.wait_for(exchange.fetch_balance({"currency": "BTC"}), TIMEOUT)
        assert balance["BTC"]["total"] == 10.0
        order = await asyncio.wait_for(exchange.create_order("BTC/USD:BTC", "limit", "buy", 10, 50000), TIMEOUT)
        assert order["status"] == "open" and order["price"] == 50000
        assert [o["id"] for o in await exchange.fetch_open_orders("BTC/USD:BTC")] == [order["id"]]
    finally:
        await exchange.close()


async def test_cli_tls_prints_the_ca_to_trust() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "emulator", "--tls", "--duration", "1", "--quiet",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    lines = out.decode().splitlines()
    assert lines[0].startswith("drbfast emulator serving wss://localhost:"), out
    ca = [ln.split("certificate: ", 1)[1] for ln in lines if "trust this CA certificate" in ln]
    assert ca and open(ca[0]).read().startswith("-----BEGIN CERTIFICATE-----")
    assert proc.returncode == 0, err


async def test_permessage_deflate_is_negotiated_only_when_offered(emulator: Emulator) -> None:
    async with websockets.connect(emulator.url) as ws:  # websockets offers it by default
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; client_max_window_bits=15"
        for n in range(3):  # the contexts carry over between messages
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": n, "method": "public/get_instruments"}))
            assert len(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["result"]) == 8
        # 100 kB of one byte deflates to almost nothing, but the request is still too large.
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {"x": "0" * 100_000}}))
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert "id" not in msg and msg["error"]["code"] == -32600
        assert (await asyncio.wait_for(ws.send('{"jsonrpc":"2.0","id":1,"method":"public/test"}'), TIMEOUT)) is None
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["id"] == 1
    async with websockets.connect(emulator.url, compression=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send('{"jsonrpc":"2.0","id":2,"method":"public/test"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["id"] == 2


def test_deflate_offers() -> None:
    from drbfast.emulator.deflate import negotiate

    assert negotiate("permessage-deflate; client_max_window_bits") is not None
    assert negotiate("x-webkit-deflate-frame") is None
    header, _ = negotiate("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_no_context_takeover") or ("", None)
    assert header == "permessage-deflate; server_no_context_takeover"
    header, ctx = negotiate("permessage-deflate; server_max_window_bits=10") or ("", None)
    assert header == "permessage-deflate; server_max_window_bits=10" and ctx is not None
    import zlib

    d = zlib.decompressobj(-10)
    for text in (b"hello" * 50, b"hello" * 50):
        assert d.decompress(ctx.compress(text) + b"\x00\x00\xff\xff") == text


def test_make_self_signed_is_kept_for_one_file_trust(tmp_path: Any) -> None:
    from cryptography import x509

    from drbfast.emulator.tls import make_self_signed

    cert, key = make_self_signed(str(tmp_path))
    c = x509.load_pem_x509_certificate(open(cert, "rb").read())
    assert c.issuer == c.subject
    ssl.create_default_context(cafile=cert).load_cert_chain(cert, key)
