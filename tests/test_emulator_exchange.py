"""The exchange state without sockets: signatures, tokens and scopes, instruments,
validation, and the matching engine (price-time priority, partial fills, time in force,
post-only, reduce-only), positions and fees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drbfast.emulator.book import Order, OrderBook
from drbfast.emulator.errors import RpcError
from drbfast.emulator.exchange import Exchange, sign
from drbfast.emulator.instruments import default_instruments

NOW_MS = 1_790_000_000_000


def make(taker_rate: float = 0.0) -> Exchange:
    ex = Exchange(keys={"id": "AMANDASECRECT", "other": "s2"}, token_ttl=100.0, signature_window=60.0, now_ms=NOW_MS)
    ex.market.taker_rate = taker_rate
    return ex


def clear(ex: Exchange, name: str) -> None:
    """Take the synthetic quotes off one book, so a test controls it entirely."""
    for order in ex.synthetic_orders(name):
        ex.cancel_synthetic(order, NOW_MS)


def test_signature_matches_the_documented_vector() -> None:
    # PROTOCOL.md 5.1: the docs' worked example, recomputed.
    assert sign("AMANDASECRECT", 1576074319000, "1iqt2wls", "") == (
        "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
    )


def test_signature_auth_window_and_tokens_bound_to_connection() -> None:
    ex = make()
    now = 1576074319.0
    params = {"grant_type": "client_signature", "client_id": "id", "timestamp": 1576074319000,
              "nonce": "1iqt2wls", "data": "", "signature": sign("AMANDASECRECT", 1576074319000, "1iqt2wls")}
    token = ex.authenticate(params, now, connection=1)
    assert ex.token(token.access_token, now, 1) is token
    assert ex.token(token.access_token, now, 2) is None, "connection-scoped"
    assert ex.token(token.access_token, now + 101, 1) is None, "expired"
    with pytest.raises(RpcError) as info:
        ex.authenticate(params, now + 61, connection=1)
    assert info.value.code == 13009
    with pytest.raises(RpcError) as info:
        ex.authenticate({**params, "timestamp": 10**400}, now, connection=1)
    assert info.value.code == 13009
    with pytest.raises(RpcError) as info:
        ex.authenticate({**params, "signature": "0" * 64}, now, connection=1)
    assert info.value.code == 13004
    assert "AMANDA" not in repr(ex) and token.access_token not in repr(token)


def test_session_scope_tokens_survive_the_connection() -> None:
    ex = make()
    token = ex.authenticate({"grant_type": "client_credentials", "client_id": "id", "client_secret": "AMANDASECRECT",
                             "scope": "session:bot"}, 0.0, connection=1)
    ex.revoke_connection(1)
    assert ex.token(token.access_token, 1.0, 7) is token
    assert token.scope.startswith("session:bot ")


def test_requested_scopes_are_granted_narrowly() -> None:
    ex = make()
    base = {"grant_type": "client_credentials", "client_id": "id", "client_secret": "AMANDASECRECT"}
    full = ex.authenticate(base, 0.0, 1)
    assert full.allows("trade", "read_write") and full.scope.split()[0] == "connection"
    ro = ex.authenticate({**base, "scope": "trade:read account:read"}, 0.0, 1)
    assert ro.allows("trade", "read") and not ro.allows("trade", "read_write")
    assert not ro.allows("wallet", "read")
    assert ro.scope == "connection trade:read account:read mainaccount"


def test_instrument_specs_are_deribits() -> None:
    specs = {i.name: i for i in default_instruments()}
    perp = specs["BTC-PERPETUAL"].as_dict()
    assert (perp["contract_size"], perp["tick_size"], perp["min_trade_amount"], perp["kind"]) == (10.0, 0.5, 10.0, "future")
    assert perp["settlement_period"] == "perpetual" and perp["expiration_timestamp"] == 32_503_708_800_000
    eth = specs["ETH-PERPETUAL"]
    assert (eth.contract_size, eth.tick_size) == (1.0, 0.05)
    opt = specs["BTC-26DEC26-100000-C"].as_dict()
    assert opt["tick_size_steps"] == [{"above_price": 0.005, "tick_size": 0.0005}]
    assert (opt["option_type"], opt["strike"], opt["min_trade_amount"]) == ("call", 100_000.0, 0.1)


@pytest.mark.parametrize(("name", "amount", "price", "reason"), [
    ("BTC-PERPETUAL", 0.5, 50000, "must be a multiple of contract size"),
    ("BTC-PERPETUAL", 15, 50000, "must be a multiple of contract size"),
    ("BTC-PERPETUAL", 10, 50000.3, "must conform to tick size"),
    ("BTC-26DEC26", 10, 50001.0, "must conform to tick size"),
    ("BTC-26DEC26-100000-C", 0.1, 0.0061, "must conform to tick size"),  # 0.0005 above 0.005
    ("BTC-26DEC26-100000-C", 0.05, 0.0040, "must be a multiple of contract size"),
])
def test_orders_are_validated_as_production(name: str, amount: float, price: float, reason: str) -> None:
    ex = make()
    with pytest.raises(RpcError) as info:
        ex.place("id", 1, "buy", {"instrument_name": name, "amount": amount, "price": price}, NOW_MS)
    assert info.value.code == -32602
    assert info.value.data["reason"] == reason


def test_option_prices_on_the_fine_tick_below_0_005_are_fine() -> None:
    ex = make()
    res = ex.place("id", 1, "buy", {"instrument_name": "BTC-26DEC26-100000-C", "amount": 0.1, "price": 0.0001}, NOW_MS)
    assert res["order"]["order_state"] == "open"


def test_crossing_orders_fill_at_the_resting_price_with_time_priority() -> None:
    ex = make()
    clear(ex, "BTC-PERPETUAL")
    first = ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 100, "price": 60000}, NOW_MS)
    second = ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 100, "price": 60000}, NOW_MS)
    res = ex.place("other", 2, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 150, "price": 61000}, NOW_MS)
    assert res["order"]["order_state"] == "filled" and res["order"]["average_price"] == 60000
    assert [(t["amount"], t["price"], t["liquidity"]) for t in res["trades"]] == [(100, 60000, "T"), (50, 60000, "T")]
    assert [t["order_id"] for t in res["trades"]] == [res["order"]["order_id"]] * 2
    o1 = ex.orders[first["order"]["order_id"]]
    o2 = ex.orders[second["order"]["order_id"]]
    assert o1.state == "filled" and o2.state == "open" and o2.filled_amount == 50
    assert ex.books["BTC-PERPETUAL"].levels("sell") == [[60000.0, 50.0]]
    # Fees: taker 0.05 % of 150 USD at 60000, in BTC; positions on both sides.
    assert res["trades"][0]["fee"] == pytest.approx(0.0005 * 100 / 60000, rel=1e-3)
    assert ex.accounts["other"].positions["BTC-PERPETUAL"].size == 150
    assert ex.accounts["id"].positions["BTC-PERPETUAL"].size == -150


def test_partial_fill_rests_the_rest_ioc_cancels_it_fok_kills_it() -> None:
    ex = make()
    clear(ex, "ETH-PERPETUAL")
    ex.place("id", 1, "sell", {"instrument_name": "ETH-PERPETUAL", "amount": 5, "price": 3000}, NOW_MS)
    fok = ex.place("other", 2, "buy", {"instrument_name": "ETH-PERPETUAL", "amount": 6, "price": 3000,
                                       "time_in_force": "fill_or_kill"}, NOW_MS)
    assert fok["order"]["order_state"] == "cancelled" and fok["trades"] == [] and fok["order"]["filled_amount"] == 0
    ioc = ex.place("other", 2, "buy", {"instrument_name": "ETH-PERPETUAL", "amount": 3, "price": 3000,
                                       "time_in_force": "immediate_or_cancel"}, NOW_MS)
    assert ioc["order"]["order_state"] == "filled"
    gtc = ex.place("other", 2, "buy", {"instrument_name": "ETH-PERPETUAL", "amount": 4, "price": 3000}, NOW_MS)
    assert gtc["order"]["order_state"] == "open" and gtc["order"]["filled_amount"] == 2
    assert ex.books["ETH-PERPETUAL"].levels("buy")[0] == [3000.0, 2.0]
    ioc2 = ex.place("other", 2, "buy", {"instrument_name": "ETH-PERPETUAL", "amount": 1, "price": 2000,
                                        "time_in_force": "immediate_or_cancel"}, NOW_MS)
    assert ioc2["order"]["order_state"] == "cancelled"


def test_market_order_walks_the_book() -> None:
    ex = make()
    clear(ex, "BTC-PERPETUAL")
    ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 60000}, NOW_MS)
    ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 30, "price": 60001}, NOW_MS)
    res = ex.place("other", 2, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 20, "type": "market"}, NOW_MS)
    assert res["order"]["order_state"] == "filled"
    assert [t["price"] for t in res["trades"]] == [60000, 60001]
    assert res["order"]["average_price"] == pytest.approx(60000.5)
    assert res["order"]["price"] == 60001  # the worst fill, not "market_price"


def test_post_only_reprices_or_rejects() -> None:
    ex = make()
    clear(ex, "BTC-PERPETUAL")
    ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 60000}, NOW_MS)
    res = ex.place("other", 2, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 60010,
                                       "post_only": True}, NOW_MS)
    assert res["order"]["order_state"] == "open" and res["order"]["price"] == 59999.5 and res["trades"] == []
    with pytest.raises(RpcError) as info:
        ex.place("other", 2, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 60010,
                                     "post_only": True, "reject_post_only": True}, NOW_MS)
    assert info.value.code == 11054


def test_reduce_only_never_grows_a_position() -> None:
    ex = make()
    clear(ex, "BTC-PERPETUAL")
    res = ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 60000,
                                     "reduce_only": True}, NOW_MS)
    assert res["order"]["order_state"] == "cancelled"
    ex.place("other", 2, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 100, "price": 60000}, NOW_MS)
    ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 30, "price": 60000}, NOW_MS)
    res = ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 100, "price": 65000,
                                     "reduce_only": True}, NOW_MS)
    assert res["order"]["amount"] == 30, "clipped to the position"


def test_edit_keeps_priority_only_when_reducing() -> None:
    ex = make()
    clear(ex, "BTC-PERPETUAL")
    a = ex.orders[ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 50, "price": 50000}, NOW_MS)["order"]["order_id"]]
    b = ex.orders[ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 50, "price": 50000}, NOW_MS)["order"]["order_id"]]
    ex.edit("id", a, {"amount": 20}, NOW_MS)
    assert list(ex.books["BTC-PERPETUAL"].bids[50000.0]) == [a, b]
    ex.edit("id", a, {"amount": 40}, NOW_MS)
    assert list(ex.books["BTC-PERPETUAL"].bids[50000.0]) == [b, a]
    assert a.replaced


def test_realized_pnl_of_an_inverse_round_trip() -> None:
    ex = make()
    clear(ex, "BTC-PERPETUAL")
    ex.place("other", 2, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "price": 50000}, NOW_MS)
    ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "price": 50000}, NOW_MS)
    ex.place("other", 2, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "price": 55000}, NOW_MS)
    ex.place("id", 1, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "price": 55000}, NOW_MS)
    pos = ex.accounts["id"].positions["BTC-PERPETUAL"]
    assert pos.size == 0
    assert pos.realized_pnl == pytest.approx(1000 * (1 / 50000 - 1 / 55000))


def test_cancel_filters_and_connection_scope() -> None:
    ex = make()
    a = ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 5000}, NOW_MS)["order"]
    b = ex.place("id", 2, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 900000}, NOW_MS)["order"]
    assert [o.order_id for o in ex.cancel_where(NOW_MS, connection=1)] == [a["order_id"]]
    assert [o.order_id for o in ex.open_orders("id")] == [b["order_id"]]
    with pytest.raises(RpcError) as info:
        ex.cancel("other", b["order_id"], NOW_MS)
    assert info.value.code == 10004
    assert ex.cancel("id", b["order_id"], NOW_MS).state == "cancelled"


def test_the_market_flow_fills_a_resting_quote() -> None:
    ex = make(taker_rate=1.0)
    bid = ex.books["BTC-PERPETUAL"].best_bid()
    assert bid is not None
    res = ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": bid + 0.5}, NOW_MS)
    order = ex.orders[res["order"]["order_id"]]
    for step in range(400):
        if order.state == "filled":
            break
        ex.market.step(NOW_MS + step * 100)
    assert order.state == "filled"
    assert ex.accounts["id"].trades and ex.accounts["id"].trades[-1]["liquidity"] == "M"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 20), st.integers(-10, 10),
                          st.sampled_from(["good_til_cancelled", "immediate_or_cancel", "fill_or_kill"])),
                max_size=40))
def test_book_invariants_under_random_orders(orders: list[tuple[str, int, int, str]]) -> None:
    inst = next(i for i in default_instruments() if i.name == "BTC-PERPETUAL")
    book = OrderBook(inst)
    placed: list[Order] = []
    for n, (direction, lots, offset, tif) in enumerate(orders):
        o = Order(str(n), "a" if n % 2 else "b", None, inst, direction, lots * 10.0, 50000 + offset * 0.5, "limit", n,
                  time_in_force=tif)
        if tif == "fill_or_kill" and book.available(direction, o.price) < o.amount:
            continue
        book.match(o, o.price)
        if o.remaining > 0 and tif == "good_til_cancelled":
            book.rest(o)
        placed.append(o)
        bb, ba = book.best_bid(), book.best_ask()
        assert bb is None or ba is None or bb < ba, "the book never stays crossed"
    total_bought = sum(o.filled_amount for o in placed if o.direction == "buy")
    total_sold = sum(o.filled_amount for o in placed if o.direction == "sell")
    assert total_bought == total_sold
    for o in placed:
        assert 0 <= o.filled_amount <= o.amount


def test_good_til_day_expires_at_8_utc() -> None:
    ex = make()
    res = ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 5000,
                                    "time_in_force": "good_til_day"}, NOW_MS)
    order = ex.orders[res["order"]["order_id"]]
    assert order.expires_ms is not None and order.expires_ms > NOW_MS
    assert order.expires_ms % 86_400_000 == 8 * 3_600_000
    ex.expire(order.expires_ms - 1)
    assert order.state == "open"
    ex.expire(order.expires_ms)
    assert order.state == "cancelled" and order.as_dict()["cancel_reason"] == "expired"


def test_standalone_market_book_frames_replay_to_its_book() -> None:
    """A market on its own (``standalone_market``): snapshot then change frames that a
    client applying them by the rules (new/change/delete, prev_change_id) keeps equal to it."""
    from drbfast.emulator.exchange import standalone_market
    from drbfast.emulator.market import notification

    market = standalone_market(seed=3, depth=40)
    for name in ("BTC-PERPETUAL", "BTC-26DEC26-100000-C"):
        snap = market.snapshot(name, 1)
        bids = {p: a for _, p, a in snap["bids"]}
        asks = {p: a for _, p, a in snap["asks"]}
        last = snap["change_id"]
        for t in range(300):
            frame = market.step_book(name, t)
            assert frame["prev_change_id"] == last and frame["change_id"] > last
            last = frame["change_id"]
            for side, levels in ((bids, frame["bids"]), (asks, frame["asks"])):
                for action, price, amount in levels:
                    if action == "delete":
                        del side[price]
                    else:
                        assert (action == "new") == (price not in side)
                        side[price] = amount
            assert not bids or not asks or max(bids) < min(asks)
        inst = market.instruments[name]
        assert sorted(bids.items()) == sorted(inst.bids.items()) and sorted(asks.items()) == sorted(inst.asks.items())
        assert notification("c", {"x": 1}) == b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"c","data":{"x":1}}}'


def test_a_market_order_never_trades_outside_the_price_band() -> None:
    """The market flow's sells once swept a lone far-away bid (50,000 on a ~86,000
    book) whenever its own bids had run out for a moment: CI saw resting test orders
    filled. The flow's market orders stop at the ticker's min_price/max_price."""
    now = 1_764_547_200_000
    ex = Exchange({}, 900, 60, now_ms=now)
    inst = ex.instruments["BTC-PERPETUAL"]
    book = ex.books[inst.name]
    for order in list(ex.synthetic_orders(inst.name)):
        if order.direction == "buy":
            ex.cancel_synthetic(order, now)
    assert not book.bid_prices, "the bid side is empty"
    ex.place_synthetic(inst, "buy", 1000.0, 50_000.0, now)  # a far bid, alone
    low, high = ex.market.price_band(inst, ex.market.mark(inst, now))
    assert 50_000.0 < low < high
    ex.place_synthetic(inst, "sell", 1000.0, None, now)  # a market sell
    assert book.bid_prices == [50_000.0], "the far bid is untouched"
    ticker = ex.market.ticker(inst, now)
    assert (ticker["min_price"], ticker["max_price"]) == ex.market.price_band(inst, ticker["mark_price"])
