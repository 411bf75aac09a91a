"""The exchange behind the emulator, checked over real sockets with the independent
`websockets` client: methods, matching, user channels, every channel family, credits
per sub-account and token scopes. Shapes are compared with tests/samples."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig, sign

from .wsclient import TIMEOUT, WsClient

SAMPLES = Path(__file__).parent / "samples"
ENVELOPE = ["jsonrpc", "id", "result", "usIn", "usOut", "usDiff", "testnet"]
ERROR_ENVELOPE = ["jsonrpc", "id", "error", "usIn", "usOut", "usDiff", "testnet"]
OTHER_ID, OTHER_SECRET = "drbfast-other", "other-secret"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def sample_data(name: str) -> Any:
    return sample(name)["params"]["data"]


@pytest.fixture
async def quiet() -> AsyncIterator[Emulator]:
    """Two sub-accounts, and books with no synthetic quotes or flow, so each test
    controls what trades."""
    cfg = EmulatorConfig(min_heartbeat=0.1, tick_interval=0.05, taker_rate=0.0,
                         extra_keys={OTHER_ID: OTHER_SECRET})
    async with Emulator(cfg) as emu:
        emu.market.depth = 0
        for name in emu.exchange.books:
            for order in emu.exchange.synthetic_orders(name):
                emu.exchange.cancel_synthetic(order, 0)
        yield emu


async def login(url: str, client_id: str = DEMO_CLIENT_ID, secret: str = DEMO_CLIENT_SECRET, **extra: Any) -> WsClient:
    c = await WsClient.open(url)
    ts = int(time.time() * 1000)
    res = await c.call("public/auth", grant_type="client_signature", client_id=client_id, timestamp=ts, nonce="n",
                       data="", signature=sign(secret, ts, "n", ""), **extra)
    assert "result" in res, res
    c.token = res["result"]  # type: ignore[attr-defined]
    return c


async def until(c: WsClient, channel: str, pred: Any = lambda d: True) -> Any:
    """The first notification on ``channel`` (already received or coming) whose data passes."""
    for n in c.notifications:
        if n["channel"] == channel and pred(n["data"]):
            c.notifications.remove(n)
            return n["data"]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        (n,) = await c.collect(1, channel)
        c.notifications.remove(n)
        if pred(n["data"]):
            return n["data"]
    raise AssertionError(f"nothing on {channel}")


# ---------------------------------------------------------------- public methods


async def test_get_instruments_and_currencies(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    msg = await c.call("public/get_instruments", currency="BTC", kind="future")
    assert list(msg) == ENVELOPE
    names = {i["instrument_name"]: i for i in msg["result"]}
    assert set(names) == {"BTC-PERPETUAL", "BTC-26DEC26"}
    assert (names["BTC-PERPETUAL"]["contract_size"], names["BTC-PERPETUAL"]["tick_size"]) == (10.0, 0.5)
    opts = await c.result("public/get_instruments", currency="BTC", kind="option")
    assert opts and all(o["kind"] == "option" and o["tick_size_steps"] for o in opts)
    assert {x["currency"] for x in await c.result("public/get_currencies")} == {"BTC", "ETH"}
    err = (await c.call("public/get_instruments", currency="XRP"))["error"]
    assert err == {"code": -32602, "data": {"reason": "wrong format", "param": "currency"}, "message": "Invalid params"}
    await c.close()


async def test_get_order_book_is_the_emulators_own_book(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    book = emulator.exchange.books["BTC-PERPETUAL"]
    res = await c.result("public/get_order_book", instrument_name="BTC-PERPETUAL", depth=10000)
    assert res["bids"] == book.levels("buy") and res["asks"] == book.levels("sell")
    assert res["best_bid_price"] == res["bids"][0][0] and res["best_ask_price"] == res["asks"][0][0]
    top = await c.result("public/get_order_book", instrument_name="BTC-PERPETUAL", depth=1)
    assert len(top["bids"]) == 1 and len(top["asks"]) == 1
    assert {"change_id", "mark_price", "index_price", "funding_8h", "current_funding", "stats"} <= set(res)
    assert (await c.call("public/get_order_book", instrument_name="BTC-PERPETUAL", depth=7))["error"]["code"] == -32602
    await c.close()


async def test_tickers_have_production_fields(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    perp = await c.result("public/ticker", instrument_name="BTC-PERPETUAL")
    live = sample_data("sub_ticker_live.json")
    assert [k for k in perp if k in live] == list(live), "live key order"
    assert {"funding_8h", "current_funding", "interest_value", "settlement_price", "estimated_delivery_price",
            "stats"} <= set(perp)
    opt = await c.result("public/ticker", instrument_name="BTC-26DEC26-100000-C")
    assert set(opt["greeks"]) == {"delta", "gamma", "vega", "theta", "rho"}
    assert 0 < opt["greeks"]["delta"] < 1 and opt["mark_iv"] > 0 and opt["bid_iv"] > 0
    # The option's index is the underlying's (USD), not a coin price.
    index = await c.result("public/get_index_price", index_name="btc_usd")
    assert opt["index_price"] == index["index_price"] > 1000
    assert opt["underlying_index"] == "BTC-26DEC26"
    dated = await c.result("public/ticker", instrument_name="BTC-26DEC26")
    assert "funding_8h" not in dated
    await c.close()


async def test_book_summary_status_index(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    rows = await c.result("public/get_book_summary_by_currency", currency="ETH", kind="option")
    assert [r["instrument_name"] for r in rows] == ["ETH-26DEC26-4000-C"]
    assert "mark_iv" in rows[0] and "underlying_price" in rows[0]
    assert await c.result("public/status") == {"locked": False, "locked_indices": []}
    assert (await c.call("public/get_index_price", index_name="xrp_usd"))["error"]["code"] == -32602
    await c.close()


# ---------------------------------------------------------------- trading over the socket


async def test_crossing_orders_trade_and_every_user_channel_tells(quiet: Emulator) -> None:
    a = await login(quiet.url)
    b = await login(quiet.url, OTHER_ID, OTHER_SECRET)
    chans = ["user.orders.BTC-PERPETUAL.raw", "user.orders.any.any.raw", "user.trades.BTC-PERPETUAL.raw",
             "user.changes.BTC-PERPETUAL.raw", "user.portfolio.btc", "user.orders.future.BTC.100ms"]
    assert sorted(await a.result("private/subscribe", channels=chans)) == sorted(chans)
    rest = await a.result("private/sell", instrument_name="BTC-PERPETUAL", amount=100, type="limit", price=60000,
                          label="mm-1")
    raw = await until(a, "user.orders.BTC-PERPETUAL.raw")
    assert raw["order_state"] == "open" and raw["label"] == "mm-1"
    doc = sample_data("sub_user_orders_raw.json")
    assert set(doc) - {"original_order_type"} <= set(raw)
    assert [k for k in raw if k in doc] == [k for k in doc if k in raw], "documented key order"
    assert set(sample_data("sub_user_orders_any_raw_live_2025.json")) <= set(raw)
    assert isinstance(await until(a, "user.orders.future.BTC.100ms"), list)

    taken = await b.result("private/buy", instrument_name="BTC-PERPETUAL", amount=30, type="limit", price=61000)
    assert taken["order"]["order_state"] == "filled" and taken["trades"][0]["price"] == 60000
    assert taken["order"]["average_price"] == 60000 and taken["trades"][0]["liquidity"] == "T"

    part = await until(a, "user.orders.BTC-PERPETUAL.raw", lambda d: d["filled_amount"] == 30)
    assert part["order_id"] == rest["order"]["order_id"] and part["order_state"] == "open"
    trades = await until(a, "user.trades.BTC-PERPETUAL.raw")
    assert isinstance(trades, list) and trades[0]["liquidity"] == "M" and trades[0]["amount"] == 30
    assert [k for k in trades[0] if k != "label"] == list(sample_data("sub_user_trades.json")[0]), "documented keys"
    changes = await until(a, "user.changes.BTC-PERPETUAL.raw", lambda d: d["trades"])
    doc_changes = sample_data("sub_user_changes.json")
    assert list(changes) == list(doc_changes)
    assert set(doc_changes["positions"][0]) <= set(changes["positions"][0])
    assert changes["positions"][0]["size"] == -30 and changes["positions"][0]["direction"] == "sell"
    portfolio = await until(a, "user.portfolio.btc")
    assert set(portfolio) == set(sample_data("sub_user_portfolio.json"))

    pos = await a.result("private/get_positions", currency="BTC")
    assert [(p["instrument_name"], p["size"]) for p in pos] == [("BTC-PERPETUAL", -30)]
    state = await a.result("private/get_order_state", order_id=rest["order"]["order_id"])
    assert state["filled_amount"] == 30
    assert [o["order_id"] for o in await a.result("private/get_order_state_by_label", currency="BTC", label="mm-1")] \
        == [rest["order"]["order_id"]]
    mine = await a.result("private/get_user_trades_by_instrument", instrument_name="BTC-PERPETUAL")
    assert mine["trades"][0]["trade_id"] == trades[0]["trade_id"]
    await a.close()
    await b.close()


async def test_edit_cancel_close_position_and_history(quiet: Emulator) -> None:
    a = await login(quiet.url)
    b = await login(quiet.url, OTHER_ID, OTHER_SECRET)
    o = (await a.result("private/buy", instrument_name="ETH-PERPETUAL", amount=5, type="limit", price=3000,
                        label="q"))["order"]
    edited = (await a.result("private/edit", order_id=o["order_id"], amount=3, price=3001))["order"]
    assert (edited["amount"], edited["price"], edited["replaced"]) == (3, 3001, True)
    by_label = (await a.result("private/edit_by_label", label="q", instrument_name="ETH-PERPETUAL", amount=4,
                               price=3001.5))["order"]
    assert by_label["order_id"] == o["order_id"] and by_label["price"] == 3001.5
    err = (await a.call("private/edit", order_id=o["order_id"], amount=4, price=3001.33))["error"]
    assert err["data"] == {"reason": "must conform to tick size", "param": "price"}
    await b.result("private/sell", instrument_name="ETH-PERPETUAL", amount=4, type="market")
    pos = await a.result("private/get_position", instrument_name="ETH-PERPETUAL")
    assert pos["size"] == 4 and pos["average_price"] == 3001.5
    await b.result("private/buy", instrument_name="ETH-PERPETUAL", amount=10, type="limit", price=3100)
    closed = await a.result("private/close_position", instrument_name="ETH-PERPETUAL", type="market")
    assert closed["order"]["order_state"] == "filled" and closed["order"]["reduce_only"] is True
    assert (await a.result("private/get_position", instrument_name="ETH-PERPETUAL"))["size"] == 0
    hist = await a.result("private/get_order_history_by_instrument", instrument_name="ETH-PERPETUAL")
    assert {h["order_id"] for h in hist} >= {o["order_id"], closed["order"]["order_id"]}

    ids = [(await a.result("private/buy", instrument_name=name, amount=amt, type="limit", price=px, label=lab))["order"]["order_id"]
           for name, amt, px, lab in (("BTC-PERPETUAL", 10, 50000, "x"), ("BTC-PERPETUAL", 10, 50000.5, "y"),
                                      ("BTC-26DEC26", 10, 50000, "x"), ("ETH-PERPETUAL", 1, 2000, "z"))]
    assert len(await a.result("private/get_open_orders")) == 4
    assert len(await a.result("private/get_open_orders_by_currency", currency="BTC")) == 3
    assert await a.result("private/cancel_by_label", label="x") == 2
    assert await a.result("private/cancel_all_by_instrument", instrument_name="BTC-PERPETUAL") == 1
    detailed = await a.result("private/cancel_all", detailed=True)
    assert detailed[0]["currency"] == "ETH" and detailed[0]["result"][0]["order_id"] == ids[3]
    assert await a.result("private/get_open_orders") == []
    err = (await a.call("private/mass_quote", quotes=[]))["error"]
    assert err == {"code": 13902, "message": "mass_quotes_disabled"}
    await a.close()
    await b.close()


async def test_cancel_on_disconnect_connection_scope_spares_the_accounts_other_connection(quiet: Emulator) -> None:
    a1 = await login(quiet.url)
    a2 = await login(quiet.url)
    await a1.result("private/enable_cancel_on_disconnect")
    o1 = (await a1.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000))["order"]
    o2 = (await a2.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000))["order"]
    await a1.close()
    deadline = time.monotonic() + TIMEOUT
    while quiet.exchange.orders[o1["order_id"]].state == "open" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    left = await a2.result("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL")
    assert [o["order_id"] for o in left] == [o2["order_id"]]
    await a2.close()


# ---------------------------------------------------------------- channels


PUBLIC = {
    "book.BTC-PERPETUAL.100ms": None,
    "book.BTC-PERPETUAL.none.10.100ms": "sub_book_grouped_live_trimmed.json",
    "book.ETH-PERPETUAL.25.1.100ms": "sub_book_grouped_live_trimmed.json",
    "ticker.BTC-PERPETUAL.100ms": "sub_ticker_live.json",
    "incremental_ticker.BTC-PERPETUAL": "sub_incremental_ticker_snapshot.json",
    "quote.BTC-PERPETUAL": "sub_quote_live_2025.json",
    "perpetual.BTC-PERPETUAL.100ms": "sub_perpetual_live.json",
    "trades.BTC-PERPETUAL.100ms": "sub_trades.json",
    "trades.future.BTC.100ms": "sub_trades.json",
    "deribit_price_index.btc_usd": "sub_deribit_price_index.json",
    "deribit_price_ranking.btc_usd": "sub_deribit_price_ranking.json",
    "markprice.options.btc_usd": None,
    "platform_state": "sub_platform_state_live_2025.json",
    "platform_state.public_methods_state": "sub_platform_state_public_methods_state.json",
}


async def test_every_public_channel_family_streams_its_shape(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    quiet_ones = ["instrument.state.any.any", "announcements"]
    acked = await c.result("public/subscribe", channels=list(PUBLIC) + quiet_ones)
    assert sorted(acked) == sorted(list(PUBLIC) + quiet_ones)
    seen: dict[str, Any] = {}
    deadline = time.monotonic() + TIMEOUT
    while set(seen) != set(PUBLIC) and time.monotonic() < deadline:
        for n in await c.collect(1):
            seen.setdefault(n["channel"], n["data"])
    assert set(seen) == set(PUBLIC)
    for channel, file in PUBLIC.items():
        data = seen[channel]
        if file is None:
            continue
        doc = sample_data(file)
        if isinstance(doc, list):
            assert isinstance(data, list) and set(doc[0]) <= set(data[0]), channel
        elif file.endswith("live_trimmed.json") or "live" in file:
            assert [k for k in data if k in doc] == list(doc), f"{channel}: live key order"
        else:
            assert set(doc) <= set(data), channel
    assert seen["incremental_ticker.BTC-PERPETUAL"]["type"] == "snapshot"
    grouped = seen["book.ETH-PERPETUAL.25.1.100ms"]
    assert len(grouped["bids"]) == 1 and grouped["bids"][0][0] % 0.25 < 1e-9
    assert seen["markprice.options.btc_usd"][0]["instrument_name"].startswith("BTC-")
    await c.close()


async def test_refused_channels_are_missing_from_the_ack(emulator: Emulator) -> None:
    c = await WsClient.open(emulator.url)
    asked = ["book.BTC-PERPETUAL.none.50.100ms", "book.BTC-PERPETUAL.3.10.100ms", "perpetual.BTC-26DEC26.100ms",
             "quote.NOPE", "chart.trades.BTC-PERPETUAL.1", "user.orders.BTC-PERPETUAL.raw", "ticker.BTC-PERPETUAL.50ms"]
    assert await c.result("public/subscribe", channels=asked) == []
    await c.close()


async def test_private_channels_follow_the_token_scope(emulator: Emulator) -> None:
    c = await login(emulator.url, scope="account:read")
    acked = await c.result("private/subscribe", channels=["user.portfolio.BTC", "user.orders.any.any.raw"])
    assert acked == ["user.portfolio.BTC"], "trade channels need trade:read"
    await c.close()


# ---------------------------------------------------------------- credits and scopes


async def test_credits_are_per_sub_account_and_survive_a_reconnect() -> None:
    cfg = EmulatorConfig(credit_cap=3_000, credit_cost=500, credit_refill=1.0, extra_keys={OTHER_ID: OTHER_SECRET})
    async with Emulator(cfg) as emu:
        a = await login(emu.url)  # auth itself is charged to the IP pool
        b = await login(emu.url)
        for c in (a, b, a, b, a, b):  # 6 x 500 = the 3,000 cap, shared by both connections
            assert "result" in await c.call("public/test")
        err = await b.call("public/test")
        assert list(err) == ERROR_ENVELOPE and err["error"] == {"code": 10028, "message": "too_many_requests"}
        with pytest.raises(websockets.ConnectionClosed) as info:
            await b.next_message()
        assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "too_many_requests")
        c2 = await login(emu.url)
        assert (await c2.call("public/test"))["error"]["code"] == 10028, "a new connection does not reset the pool"
        other = await login(emu.url, OTHER_ID, OTHER_SECRET)
        assert "result" in await other.call("public/test"), "another sub-account has its own pool"


async def test_matching_engine_pool_and_limits_in_the_account_summary() -> None:
    cfg = EmulatorConfig(matching_cost=10_000, matching_cap=20_000, matching_refill=1.0, taker_rate=0.0)
    async with Emulator(cfg) as emu:
        c = await login(emu.url)
        summary = await c.result("private/get_account_summary", currency="BTC")
        assert summary["limits"]["matching_engine"] == {"rate": 0.0, "burst": 2}
        assert summary["limits"]["non_matching_engine"] == {"rate": 20, "burst": 100}
        assert summary["balance"] == 10.0 and summary["currency"] == "BTC"
        for _ in range(2):
            await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000)
        assert (await c.call("private/get_open_orders"))["result"], "reads do not draw on the matching pool"
        assert (await c.call("private/cancel_all"))["error"]["code"] == 10028


async def test_trade_read_scope_cannot_trade_and_connection_tokens_stay_home(emulator: Emulator) -> None:
    c = await login(emulator.url, scope="trade:read account:read")
    assert await c.result("private/get_open_orders") == []
    err = (await c.call("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000))["error"]
    assert err["code"] == 13403 and err["message"] == "scope_exceeded"
    assert (await c.call("private/enable_cancel_on_disconnect"))["error"]["code"] == 13403
    token = c.token["access_token"]  # type: ignore[attr-defined]
    other = await WsClient.open(emulator.url)
    err = (await other.call("private/get_open_orders", access_token=token))["error"]
    assert err["code"] == 13009, "a connection-scoped token does not work on another connection"
    s = await login(emulator.url, scope="session:bot trade:read_write")
    assert s.token["scope"].startswith("session:bot")  # type: ignore[attr-defined]
    third = await WsClient.open(emulator.url)
    assert await third.result("private/get_open_orders", access_token=s.token["access_token"]) == []  # type: ignore[attr-defined]
    for x in (c, other, s, third):
        await x.close()


async def test_fork_and_exchange_token(quiet: Emulator) -> None:
    c = await login(quiet.url, scope="session:one")
    forked = await c.call("public/fork_token", refresh_token=c.token["refresh_token"], session_name="two")  # type: ignore[attr-defined]
    doc = json.loads((SAMPLES / "fork_token_response.json").read_text())["result"]
    assert set(doc) <= set(forked["result"]) and forked["result"]["scope"].startswith("session:two")
    other = quiet.exchange.accounts[OTHER_ID].user_id
    swapped = await c.result("public/exchange_token", refresh_token=c.token["refresh_token"], subject_id=other)  # type: ignore[attr-defined]
    d = await WsClient.open(quiet.url)
    summary = await d.result("private/get_account_summary", currency="BTC", access_token=swapped["access_token"])
    assert summary["username"] == OTHER_ID
    assert (await c.call("public/exchange_token", refresh_token="nope", subject_id=1))["error"]["code"] == 13009
    await c.close()
    await d.close()


async def test_private_subscribe_label_tags_notifications(quiet: Emulator) -> None:
    c = await login(quiet.url)
    await c.result("private/subscribe", channels=["user.orders.any.any.raw"], label="bot-7")
    await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000)
    notes = [n for n in c.notifications if n["channel"] == "user.orders.any.any.raw"]
    note = notes[0] if notes else (await c.collect(1, "user.orders.any.any.raw"))[0]
    assert note["label"] == "bot-7" and note["data"]["order_state"] == "open"
    assert (await c.call("private/subscribe", channels=["user.lock"], label="x" * 17))["error"]["code"] == -32602
    await c.close()


async def test_raw_book_sends_each_change_at_once_100ms_waits_for_the_tick() -> None:
    cfg = EmulatorConfig(tick_interval=3600.0, taker_rate=0.0)  # no tick during the test
    async with Emulator(cfg) as emu:
        c = await login(emu.url)
        await c.result("private/subscribe", channels=["book.BTC-PERPETUAL.raw", "book.BTC-PERPETUAL.100ms"])
        raw_snap = await until(c, "book.BTC-PERPETUAL.raw")
        agg_snap = await until(c, "book.BTC-PERPETUAL.100ms")
        assert raw_snap["type"] == agg_snap["type"] == "snapshot"
        await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000)
        change = await until(c, "book.BTC-PERPETUAL.raw")
        assert change["type"] == "change" and change["prev_change_id"] == raw_snap["change_id"]
        assert change["bids"] == [["new", 50000.0, 10.0]] and change["asks"] == []
        await c.result("private/buy", instrument_name="BTC-PERPETUAL", amount=20, type="limit", price=50000)
        second = await until(c, "book.BTC-PERPETUAL.raw")
        assert second["prev_change_id"] == change["change_id"] and second["bids"] == [["change", 50000.0, 30.0]]
        assert not [n for n in c.notifications if n["channel"] == "book.BTC-PERPETUAL.100ms"]
        emu.hub.tick()
        agg = await until(c, "book.BTC-PERPETUAL.100ms")
        assert agg["prev_change_id"] == agg_snap["change_id"] and ["new", 50000.0, 30.0] in agg["bids"]
        assert agg["change_id"] >= second["change_id"]
        await c.close()


VALID = {
    "public/get_instruments": {"currency": "BTC"}, "public/get_instrument": {"instrument_name": "BTC-PERPETUAL"},
    "public/ticker": {"instrument_name": "ETH-PERPETUAL"}, "public/get_currencies": {},
    "public/get_order_book": {"instrument_name": "BTC-26DEC26-80000-P"},
    "public/get_book_summary_by_currency": {"currency": "BTC"},
    "public/get_book_summary_by_instrument": {"instrument_name": "BTC-PERPETUAL"},
    "public/get_index_price": {"index_name": "eth_usd"}, "public/status": {}, "public/get_time": {},
    "public/get_last_trades_by_instrument": {"instrument_name": "BTC-PERPETUAL"},
    "private/get_positions": {"currency": "BTC"}, "private/get_position": {"instrument_name": "BTC-PERPETUAL"},
    "private/get_account_summary": {"currency": "ETH"}, "private/get_account_summaries": {},
    "private/get_open_orders": {}, "private/get_open_orders_by_currency": {"currency": "BTC"},
    "private/get_open_orders_by_label": {"currency": "BTC", "label": "x"},
    "private/get_order_state_by_label": {"currency": "BTC", "label": "x"},
    "private/get_order_history_by_currency": {"currency": "BTC"},
    "private/get_user_trades_by_currency": {"currency": "BTC"},
    "private/cancel_all_by_currency": {"currency": "ETH"}, "private/cancel_all_by_kind_or_type": {"currency": "any"},
}
#: a bad value for each: the error names the parameter
BAD = {
    "public/get_instrument": "instrument_name", "public/get_order_book": "depth",
    "public/get_book_summary_by_currency": "currency", "public/get_index_price": "index_name",
    "private/get_account_summary": "currency", "private/get_order_history_by_currency": "count",
    "private/buy": "amount", "private/edit": "order_id", "private/close_position": "type",
}


async def test_every_method_answers_in_the_live_envelope(emulator: Emulator) -> None:
    c = await login(emulator.url)
    for method, params in VALID.items():
        msg = await c.call(method, **params)
        assert list(msg) == ENVELOPE, (method, msg)
        assert msg["usOut"] - msg["usIn"] == msg["usDiff"] >= 0 and msg["testnet"] is True
    for method, param in BAD.items():
        params = dict(VALID.get(method, {}))
        params.update({"instrument_name": "BTC-PERPETUAL"} if method in ("private/buy", "private/close_position") else {})
        params[param] = {"depth": 3, "count": 0, "amount": 0.5, "order_id": 5, "type": "stop"}.get(param, "bad")
        err = await c.call(method, **params)
        assert list(err) == ERROR_ENVELOPE, (method, err)
        e = err["error"]
        if e["code"] == -32602:
            assert list(e) == ["code", "data", "message"] and e["data"]["param"] == param, (method, e)
        else:
            assert e["code"] == 10020 and method == "public/get_instrument"
    await c.close()
