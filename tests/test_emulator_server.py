"""The emulator over real sockets, driven by the independent `websockets` client."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from drbfast.emulator import DEMO_CLIENT_ID, HEARTBEAT, TEST_REQUEST, Emulator, EmulatorConfig

from .wsclient import TIMEOUT, WsClient


async def test_envelope_hello_test_time_status(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    msg = await c.call("public/hello", client_name="tests", client_version="1")
    assert list(msg) == ["jsonrpc", "id", "result", "usIn", "usOut", "usDiff", "testnet"]
    assert msg["result"] == {"version": "1.2.26"}
    assert msg["usDiff"] == msg["usOut"] - msg["usIn"]
    assert 0 <= msg["usDiff"] < 10_000_000, "server time of a local request: microseconds, not negative"
    assert (await c.result("public/test")) == {"version": "1.2.26"}
    err = await c.call("public/test", expected_result="exception")
    assert err["error"]["code"] == 11094 and err["error"]["message"] == "internal_server_error"
    assert abs(await c.result("public/get_time") - time.time() * 1000) < 5000
    assert "locked" in await c.result("public/status")
    await c.close()


async def test_string_ids_are_echoed_and_id_less_requests_answered_without_id(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.send("public/test", req_id="my-uuid-1")
    assert (await c.next_message())["id"] == "my-uuid-1"
    await c.ws.send(json.dumps({"jsonrpc": "2.0", "method": "public/test", "params": {}}))
    msg = await c.next_message()
    assert "id" not in msg and msg["result"] == {"version": "1.2.26"}
    await c.close()


async def test_production_quirks(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.ws.send("this is not json")
    msg = await c.next_message()
    assert "id" not in msg
    assert msg["error"] == {"code": 11050, "data": "invalid json", "message": "bad_request"}
    await c.ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "public/subscribe", "params": {"channels": ["x" * 40_000]}}))
    msg = await c.next_message()
    assert "id" not in msg and msg["error"]["code"] == -32600
    assert (await c.call("public/nope"))["error"]["code"] == -32601
    err = (await c.call("public/subscribe", channels="book.BTC-PERPETUAL.100ms"))["error"]
    assert err["code"] == -32602 and err["data"] == {"reason": "value must be a list", "param": "channels"}
    err = (await c.call("public/set_heartbeat", interval=0.01))["error"]
    assert err["code"] == -32602 and err["data"]["param"] == "interval"
    # The connection is still serving after all of that.
    assert (await c.result("public/test")) == {"version": "1.2.26"}
    await c.close()


async def test_minimum_heartbeat_is_ten_seconds_by_default() -> None:
    async with Emulator() as emu:
        c = await WsClient.open(emu.url)
        assert (await c.call("public/set_heartbeat", interval=5))["error"]["code"] == -32602
        assert (await c.result("public/set_heartbeat", interval=10)) == "ok"
        await c.close()


async def test_the_callers_config_is_never_changed() -> None:
    """``Emulator(cfg, **overrides)`` applies the overrides to its own copy: the
    caller's object (and the dicts in it) stays as it was, so one config can start
    several emulators, and each serves what it was given."""
    cfg = EmulatorConfig(min_heartbeat=0.1, tick_interval=0.05)
    async with Emulator(cfg, min_heartbeat=2.0, gateway=True) as first:
        assert first.config is not cfg and first.config.min_heartbeat == 2.0 and first.config.gateway
        first.add_cdp_key()
        assert len(first.config.cdp_keys) == 1
        assert cfg.min_heartbeat == 0.1 and not cfg.gateway and cfg.cdp_keys == {}, "the caller's config changed"
        async with Emulator(cfg) as second:
            assert not second.config.gateway and second.config.cdp_keys == {}
            c = await WsClient.open(second.url)
            assert (await c.result("public/set_heartbeat", interval=0.1)) == "ok", "the first one's override leaked"
            await c.close()
        c = await WsClient.open(first.url)
        assert (await c.call("public/set_heartbeat", interval=1))["error"]["code"] == -32602
        await c.close()
    with pytest.raises(TypeError, match="no field 'nope'"):
        Emulator(cfg, nope=1)


async def test_silent_client_is_closed_with_4000(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    assert (await c.result("public/set_heartbeat", interval=0.2)) == "ok"
    t0 = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as info:
        while time.monotonic() - t0 < TIMEOUT:
            await c.next_message()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "heartbeat close")
    # first test_request at ~1.2 intervals, deadline one interval later
    assert 0.3 < time.monotonic() - t0 < 2.0
    assert c.heartbeats[-1] == "test_request"


async def test_answering_client_stays_up_and_frames_are_production_bytes(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    c.answer_test_requests = True
    assert (await c.result("public/set_heartbeat", interval=0.1)) == "ok"
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            await c.next_message(timeout=0.2)
        except asyncio.TimeoutError:
            pass
    assert c.heartbeats.count("test_request") >= 4
    conn = emulator.connections[-1]
    out = [f.payload for f in conn.frames if f.direction == "out"]
    assert TEST_REQUEST in out
    # Quiet socket: a plain heartbeat comes beside the test_request.
    assert HEARTBEAT in out
    assert len(conn.test_request_rtts_ns) >= 4
    assert (await c.result("public/test")) == {"version": "1.2.26"}
    await c.close()


async def test_busy_socket_gets_test_requests_but_no_plain_heartbeat(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    c.answer_test_requests = True
    await c.result("public/subscribe", channels=["ticker.BTC-PERPETUAL.100ms"])
    await c.result("public/set_heartbeat", interval=0.2)
    await c.collect(20)
    assert "test_request" in c.heartbeats
    assert "heartbeat" not in c.heartbeats
    await c.close()


async def test_disable_heartbeat_stops_them(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.result("public/set_heartbeat", interval=0.1)
    assert (await c.result("public/disable_heartbeat")) == "ok"
    with pytest.raises(asyncio.TimeoutError):
        await c.next_message(timeout=0.5)
    assert c.heartbeats == []
    await c.close()


async def test_auth_grants(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    assert (await c.call("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL"))["error"]["code"] == 13009
    bad = await c.auth("client_signature", secret="wrong")
    assert bad["error"]["code"] == 13004
    ok = await c.auth("client_signature")
    res = ok["result"]
    assert res["token_type"] == "bearer" and "connection" in res["scope"]
    assert (await c.result("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL")) == []
    refreshed = await c.result("public/auth", grant_type="refresh_token", refresh_token=res["refresh_token"])
    assert refreshed["access_token"] != res["access_token"]
    # a refresh token works once
    again = await c.call("public/auth", grant_type="refresh_token", refresh_token=res["refresh_token"])
    assert again["error"]["code"] == 13009
    await c.close()
    c2 = await WsClient.open(emulator.url)
    assert "result" in await c2.auth("client_credentials")
    assert (await c2.auth("client_credentials", secret="nope"))["error"]["code"] == 13004
    await c2.close()


async def test_stale_signature_is_refused(emulator: Emulator) -> None:
    from drbfast.emulator import DEMO_CLIENT_SECRET, sign

    c = await WsClient.open(emulator.url)
    ts = int(time.time() * 1000) - 120_000
    err = await c.call("public/auth", grant_type="client_signature", client_id=DEMO_CLIENT_ID, timestamp=ts,
                       nonce="x", data="", signature=sign(DEMO_CLIENT_SECRET, ts, "x", ""))
    assert err["error"]["code"] == 13009
    await c.close()


async def test_token_expiry() -> None:
    async with Emulator(EmulatorConfig(token_ttl=0.3)) as emu:
        c = await WsClient.open(emu.url)
        await c.auth()
        assert (await c.result("private/get_cancel_on_disconnect")) == {"scope": "connection", "enabled": False}
        await asyncio.sleep(0.4)
        assert (await c.call("private/get_cancel_on_disconnect"))["error"]["code"] == 13009
        await c.close()


async def test_logout_closes_without_reply_and_keeps_orders(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.auth()
    await c.result("private/enable_cancel_on_disconnect")
    await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000)
    await c.send("private/logout")
    with pytest.raises(websockets.ConnectionClosed) as info:
        await c.next_message()
    assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "logout")
    await asyncio.sleep(0.05)
    assert len(emulator.exchange.open_orders(DEMO_CLIENT_ID)) == 1, "logout does not trigger cancel-on-disconnect"


async def test_subscriptions_unknown_raw_resubscribe(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    acked = await c.result("public/subscribe", channels=["book.BTC-PERPETUAL.100ms", "book.NOPE-PERPETUAL.100ms", "book.BTC-PERPETUAL.50ms", "ticker.ETH-PERPETUAL.100ms"])
    assert sorted(acked) == ["book.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms"]
    assert (await c.result("public/subscribe", channels=["book.NOPE.100ms"])) == []
    err = await c.call("public/subscribe", channels=["book.BTC-PERPETUAL.raw"])
    assert err["error"] == {"code": 13778, "message": "raw_subscriptions_not_available_for_unauthorized"}
    snaps = [n for n in await c.collect(3, "book.BTC-PERPETUAL.100ms") if n["data"]["type"] == "snapshot"]
    assert len(snaps) + len([n for n in c.notifications if n["data"].get("type") == "snapshot"]) >= 1
    # Subscribing again to a held channel: acked, no new snapshot.
    assert (await c.result("public/subscribe", channels=["book.BTC-PERPETUAL.100ms"])) == ["book.BTC-PERPETUAL.100ms"]
    later = await c.collect(6, "book.BTC-PERPETUAL.100ms")
    assert all(n["data"]["type"] == "change" for n in later)
    assert (await c.result("public/unsubscribe", channels=["book.BTC-PERPETUAL.100ms", "ticker.NOPE.100ms"])) == ["book.BTC-PERPETUAL.100ms"]
    assert (await c.result("public/unsubscribe_all")) == "ok"
    await c.auth()
    assert (await c.result("private/subscribe", channels=["book.BTC-PERPETUAL.raw", "user.orders.BTC-PERPETUAL.raw"])) == ["book.BTC-PERPETUAL.raw", "user.orders.BTC-PERPETUAL.raw"]
    await c.close()


async def test_book_change_id_continuity_and_shared_counter(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.result("public/subscribe", channels=["book.BTC-PERPETUAL.100ms", "book.BTC-26DEC26.100ms"])
    got = await c.collect(30)
    books: dict[str, list[dict]] = {}
    for n in c.notifications:
        books.setdefault(n["channel"], []).append(n["data"])
    jumps = 0
    for channel, frames in books.items():
        assert frames[0]["type"] == "snapshot", channel
        assert all("prev_change_id" not in f for f in frames[:1])
        for prev, cur in zip(frames, frames[1:]):
            assert cur["type"] == "change"
            assert cur["prev_change_id"] == prev["change_id"], "continuity"
            jumps += cur["change_id"] - prev["change_id"] > 1
        snap = frames[0]
        assert [lvl[1] for lvl in snap["bids"]] == sorted((lvl[1] for lvl in snap["bids"]), reverse=True)
        assert [lvl[1] for lvl in snap["asks"]] == sorted(lvl[1] for lvl in snap["asks"])
    assert jumps > 0, "change_id is shared by the instruments of a currency, so it jumps"
    assert len(got) == 30
    await c.close()


async def test_ticker_trades_platform_state_streams(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.result("public/subscribe", channels=["ticker.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms", "platform_state"])
    await c.collect(40)
    by = {n["channel"] for n in c.notifications}
    assert by == {"ticker.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms", "platform_state"}
    trades = [n["data"] for n in c.notifications if n["channel"].startswith("trades")]
    assert all(isinstance(t, list) and t for t in trades)
    await c.close()


async def test_cancel_on_disconnect_cancels_exactly_that_connections_orders(emulator: Emulator) -> None:
    a = await WsClient.open(emulator.url)
    b = await WsClient.open(emulator.url)
    await a.auth()
    await b.auth()
    await b.result("private/subscribe", channels=["user.orders.BTC-PERPETUAL.raw"])
    await a.result("private/enable_cancel_on_disconnect")
    assert (await a.result("private/get_cancel_on_disconnect")) == {"scope": "connection", "enabled": True}
    mine = (await a.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000))["order"]
    theirs = (await b.result("private/sell", instrument_name="BTC-PERPETUAL", amount=20, type="limit", price=99000))["order"]
    seen = [n for n in b.notifications if n["channel"] == "user.orders.BTC-PERPETUAL.raw"]
    if len(seen) < 2:
        await b.collect(2 - len(seen), "user.orders.BTC-PERPETUAL.raw")  # b sees both orders open
    emulator.faults.drop(emulator.history[0])  # a's TCP connection drops
    cancelled = await b.collect(1, "user.orders.BTC-PERPETUAL.raw")
    assert cancelled[0]["data"]["order_id"] == mine["order_id"]
    assert cancelled[0]["data"]["order_state"] == "cancelled"
    open_ids = [o["order_id"] for o in await b.result("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL")]
    assert open_ids == [theirs["order_id"]]
    await b.close()


async def test_cancel_on_disconnect_after_missed_test_request(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.auth()
    await c.result("private/enable_cancel_on_disconnect")
    await c.result("private/buy", instrument_name="ETH-PERPETUAL", amount=1, type="limit", price=100)
    await c.result("public/set_heartbeat", interval=0.1)
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await c.next_message()
    await asyncio.sleep(0.05)
    assert emulator.exchange.open_orders(DEMO_CLIENT_ID) == []


async def test_account_scope_cod_applies_to_new_connections(emulator: Emulator) -> None:
    a = await WsClient.open(emulator.url)
    await a.auth()
    await a.result("private/enable_cancel_on_disconnect", scope="account")
    b = await WsClient.open(emulator.url)
    await b.auth()
    assert (await b.result("private/get_cancel_on_disconnect")) == {"scope": "connection", "enabled": True}
    assert (await b.result("private/get_cancel_on_disconnect", scope="account")) == {"scope": "account", "enabled": True}
    await a.close()
    await b.close()


async def test_orders_cancel_and_cancel_all(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    await c.auth()
    o1 = (await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000))["order"]
    await c.result("private/sell", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=99000)
    assert (await c.result("private/cancel", order_id=o1["order_id"]))["order_state"] == "cancelled"
    # An order that is no longer open: 11044 not_open_order; an unknown id: 10004.
    assert (await c.call("private/cancel", order_id=o1["order_id"]))["error"]["code"] == 11044
    assert (await c.call("private/cancel", order_id="nope"))["error"]["code"] == 10004
    assert (await c.result("private/cancel_all")) == 1
    assert (await c.call("private/buy", instrument_name="NOPE", amount=1, type="limit", price=1))["error"]["code"] == 10020
    assert (await c.call("private/buy", instrument_name="BTC-PERPETUAL", amount=1, type="limit"))["error"]["code"] == -32602
    await c.close()


async def test_credits_run_out_with_10028_and_close() -> None:
    async with Emulator(EmulatorConfig(credit_cap=2_000, credit_cost=500, credit_refill=1.0)) as emu:
        c = await WsClient.open(emu.url)
        for _ in range(4):
            await c.result("public/test")
        err = await c.call("public/test")
        assert err["error"] == {"code": 10028, "message": "too_many_requests"}
        with pytest.raises(websockets.ConnectionClosed):
            await c.next_message()


async def test_wrong_path_is_404(emulator: Emulator) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await asyncio.wait_for(websockets.connect(emulator.url.replace("/ws/api/v2", "/nope")), TIMEOUT)
    assert info.value.response.status_code == 404


async def test_tls_serves_wss_with_its_own_certificate(loop_exceptions: list) -> None:
    async with Emulator(EmulatorConfig(tls=True)) as emu:
        assert emu.url.startswith("wss://localhost:")
        c = await WsClient.open(emu.url, ssl=emu.client_ssl_context)
        assert (await c.result("public/test")) == {"version": "1.2.26"}
        await c.close()
        with pytest.raises(Exception):  # default verification refuses a self-signed cert
            await asyncio.wait_for(websockets.connect(emu.url), TIMEOUT)
        await asyncio.sleep(0.05)
        # The emulator's side of that refused handshake is reported by asyncio; expected.
        loop_exceptions[:] = [c for c in loop_exceptions if c.get("message") != "SSL handshake failed"]
