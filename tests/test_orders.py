"""Order entry: the template encoder against json, typed calls against the emulator,
fire and forget, and reconciliation of orders whose acknowledgement was lost."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import drbfast
from drbfast import Event
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator
from drbfast.orders import LabelMaker, Order, OrderResult, encode_order, order_params

from .conftest import TIMEOUT, wait_until

CREDS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
FAST: dict[str, Any] = {"heartbeat": 0.2, "request_timeout": 2.0, "backoff": drbfast.Backoff(initial=0.02, cap=0.1)}

names = st.from_regex(r"[A-Za-z0-9_\-]{1,30}", fullmatch=True)
numbers = st.one_of(st.integers(min_value=1, max_value=10**12), st.floats(min_value=1e-9, max_value=1e9, allow_nan=False))


@given(req_id=st.integers(min_value=1, max_value=2**53), name=names, amount=numbers, price=st.none() | numbers,
       label=st.none() | st.text(max_size=64), tif=st.none() | st.sampled_from(["good_til_cancelled", "immediate_or_cancel", "fill_or_kill"]),
       post_only=st.booleans(), reduce_only=st.booleans(),
       extra=st.dictionaries(st.sampled_from(["max_show", "trigger", "advanced", "mmp", "valid_until"]),
                             st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)), max_size=3))
def test_template_frame_is_what_json_would_write(req_id: int, name: str, amount: float, price: float | None, label: str | None,
                                                 tif: str | None, post_only: bool, reduce_only: bool, extra: dict[str, Any]) -> None:
    params = order_params(name, amount, price=price, type="limit" if price is not None else "market", label=label,
                          time_in_force=tif, post_only=post_only, reduce_only=reduce_only, **extra)
    frame = encode_order(req_id, "private/buy", params)
    assert json.loads(frame) == {"jsonrpc": "2.0", "id": req_id, "method": "private/buy", "params": params}
    assert frame == json.dumps({"jsonrpc": "2.0", "id": req_id, "method": "private/buy", "params": params},
                               separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("kwargs,match", [
    ({"amount": math.nan}, "finite"), ({"amount": math.inf}, "finite"), ({"amount": True}, "number"),
    ({"amount": "10"}, "number"), ({"instrument_name": "BTC PERPETUAL"}, "instrument"),
    ({"instrument_name": 'BTC"-X'}, "instrument"), ({"type": "iceberg"}, "type"), ({"price": None}, "price"),
    ({"time_in_force": "forever"}, "time_in_force"), ({"label": "x" * 65}, "label"), ({"price": math.nan}, "finite"),
])
def test_bad_orders_are_refused_before_sending(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 50_000.0, **kwargs}
    with pytest.raises(drbfast.ConfigurationError, match=match):
        order_params(args.pop("instrument_name"), args.pop("amount"), **args)


def test_labels_are_unique_and_findable() -> None:
    a, b = LabelMaker(), LabelMaker()
    labels = [a() for _ in range(1000)] + [b() for _ in range(1000)]
    assert len(set(labels)) == 2000
    assert all(l.startswith("drb-") and len(l) <= 64 for l in labels)


async def test_typed_calls_against_the_emulator(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **CREDS, **FAST) as client:
        bought = await client.buy("BTC-PERPETUAL", 10, price=50_000.0, label="mine-1")
        assert isinstance(bought, OrderResult) and isinstance(bought.order, Order)
        assert bought.order.order_state == "open" and bought.order.label == "mine-1" and bought.order.direction == "buy"
        sold = await client.sell("BTC-PERPETUAL", 20, price=99_000.0, post_only=True)
        assert sold.order.label.startswith("drb-"), "an order without a label gets one"
        assert sold.order.post_only is True
        opened = await client.get_open_orders_by_instrument("BTC-PERPETUAL")
        assert {o.order_id for o in opened} == {bought.order.order_id, sold.order.order_id}
        cancelled = await client.cancel(bought.order.order_id)
        assert cancelled.order_state == "cancelled" and cancelled.order_id == bought.order.order_id
        with pytest.raises(drbfast.DeribitError) as info:
            await client.cancel("no-such-order")
        assert info.value.code == 10004
        with pytest.raises(drbfast.InvalidParams):
            await client.buy("BTC-PERPETUAL", -5, price=50_000.0)
        assert await client.cancel_all() == 1
        assert await client.get_open_orders_by_instrument("BTC-PERPETUAL") == []
        frames = [f.payload for f in emulator.connections[-1].frames if f.direction == "in" and b"private/buy" in f.payload]
        assert frames[0].startswith(b'{"jsonrpc":"2.0","id":')


async def test_orders_need_credentials(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        with pytest.raises(drbfast.ConfigurationError, match="credentials"):
            client.place("buy", "BTC-PERPETUAL", 10, price=1.0)


async def test_fire_and_forget_returns_at_once_and_calls_back(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **CREDS, **FAST) as client:
        acked: list[drbfast.OrderHandle] = []
        handles = [client.place("buy", "BTC-PERPETUAL", 10, price=40_000.0 + i, on_ack=acked.append) for i in range(5)]
        assert all(h.sent and not h.done() for h in handles), "written before place() returned"
        await wait_until(lambda: len(acked) == 5)
        results = [await h for h in handles]
        assert [r.order.price for r in results] == [40_000.0 + i for i in range(5)]
        rejected = client.place("sell", "BTC-PERPETUAL", -1, price=1.0, on_ack=acked.append)
        await wait_until(lambda: len(acked) == 6)
        with pytest.raises(drbfast.InvalidParams):
            await rejected


async def test_orders_beyond_the_burst_are_spaced_not_refused(emulator: Emulator) -> None:
    pools = drbfast.CreditPools(matching=drbfast.Credits.rate(20, 3))
    async with drbfast.connect(emulator.url, credits=pools, **CREDS, **FAST) as client:
        handles = [client.place("buy", "BTC-PERPETUAL", 10, price=30_000.0 + i) for i in range(6)]
        assert [h.sent for h in handles] == [True] * 3 + [False] * 3
        results = await asyncio.wait_for(asyncio.gather(*(asyncio.ensure_future(_wait(h)) for h in handles)), TIMEOUT)
        assert len({r.order.order_id for r in results}) == 6


async def test_a_cancel_goes_out_ahead_of_places_waiting_for_credits(emulator: Emulator) -> None:
    """A quoter pacing itself to the matching-engine rate: 25 places queued for credits,
    then a cancel. Places used to take credits past the queue (try_acquire) and the
    cancel waited behind all of them (5.2 s at 5/s); it now goes out with the next
    credit, ahead of every place still waiting."""
    pools = drbfast.CreditPools(matching=drbfast.Credits.rate(10, 2))
    async with drbfast.connect(emulator.url, credits=pools, **CREDS, **FAST) as client:
        handles = [client.place("buy", "BTC-PERPETUAL", 10, price=30_000.0 + i) for i in range(27)]
        assert sum(h.sent for h in handles) == 2
        await asyncio.sleep(0.05)          # the other 25 are queued for credits now
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(client.cancel_all_by_instrument("BTC-PERPETUAL"), TIMEOUT)
        took = loop.time() - t0
        sent_before = sum(h.sent for h in handles)
        await asyncio.wait_for(asyncio.gather(*(asyncio.ensure_future(_wait(h)) for h in handles)), TIMEOUT)
        methods = [json.loads(f.payload)["method"] for f in emulator.connections[-1].frames
                   if f.direction == "in" and (b"private/buy" in f.payload or b"private/cancel_all" in f.payload)]
        at = methods.index("private/cancel_all_by_instrument")
        assert at <= 4, f"the cancel went out after {at} places: {methods[:at + 1]}"
        assert sent_before <= 4 and took < 1.0, (sent_before, took)


async def _wait(handle: drbfast.OrderHandle) -> OrderResult:
    return await handle


@pytest.mark.parametrize("reached", [True, False])
async def test_lost_ack_is_reconciled_after_the_reconnect(emulator: Emulator, reached: bool) -> None:
    """The socket drops between a buy being sent and its ack: the call fails with
    ConnectionLost, and once reconnected the client finds out what became of it."""
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **CREDS, **FAST) as client:
        if reached:
            emulator.faults.delay_responses(5.0)  # the order is placed, its ack held back
        else:
            emulator.faults.fail_method("private/buy", "drop")  # the order never reaches the book
        handle = client.place("buy", "BTC-PERPETUAL", 10, price=45_000.0)
        await asyncio.sleep(0.05)
        if reached:
            emulator.faults.drop()
        with pytest.raises(drbfast.ConnectionLost):
            await asyncio.wait_for(_wait(handle), TIMEOUT)
        assert handle.uncertain
        outcome = await handle.reconciled(TIMEOUT)
        assert outcome == ("placed" if reached else "not_found")
        if reached:
            assert handle.order is not None and handle.order.label == handle.label and handle.order.order_state == "open"
        done = [e for e in events if e.kind == "order_reconciled"]
        assert len(done) == 1 and done[0].detail["label"] == handle.label and done[0].detail["outcome"] == outcome


async def test_unanswered_order_times_out_once_and_is_reconciled(emulator: Emulator) -> None:
    """The ack never comes (the connection stays up): the order's timer fails the
    handle with RequestTimeout, on_ack is called exactly once, and the order is looked
    up by its label."""
    acked: list[drbfast.OrderHandle] = []
    async with drbfast.connect(emulator.url, **CREDS, **{**FAST, "request_timeout": 0.3}) as client:
        emulator.faults.fail_method("private/buy", "silence")
        handle = client.place("buy", "BTC-PERPETUAL", 10, price=45_000.0, on_ack=acked.append)
        with pytest.raises(drbfast.RequestTimeout):
            await asyncio.wait_for(_wait(handle), TIMEOUT)
        assert acked == [handle] and handle.uncertain
        assert await handle.reconciled(TIMEOUT) == "not_found"
        assert client.stats.timeouts == 1
        await asyncio.sleep(0.05)
        assert acked == [handle], "on_ack is called once"


async def test_orders_after_close_fail_cleanly(emulator: Emulator) -> None:
    client = await drbfast.connect(emulator.url, **CREDS, **FAST)
    await client.close()
    handle = client.place("buy", "BTC-PERPETUAL", 10, price=1.0)
    with pytest.raises(drbfast.NotConnected):
        await handle


async def test_every_typed_call_against_the_matching_emulator(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **CREDS, **FAST) as client:
        book = await client.call("public/get_order_book", instrument_name="BTC-PERPETUAL", depth=5)
        best_ask = book["asks"][0][0]
        # A buy that crosses the book fills at the resting price, with trades and a numeric average.
        filled = await client.buy("BTC-PERPETUAL", 10, price=best_ask + 50, label="taker-1")
        assert filled.order.order_state == "filled" and filled.order.filled_amount == 10
        assert filled.trades and all(t.price == best_ask for t in filled.trades)
        assert isinstance(filled.order.average_price, float) and filled.order.average_price == best_ask
        resting = await client.buy("BTC-PERPETUAL", 20, price=book["bids"][-1][0] - 500, label="maker-1", post_only=True)
        assert resting.order.order_state == "open"
        edited = await client.edit(resting.order.order_id, 30, price=resting.order.price - 0.5)
        assert edited.order.amount == 30 and edited.order.price == resting.order.price - 0.5
        by_label = await client.edit_by_label("maker-1", "BTC-PERPETUAL", 40, price=resting.order.price - 1.0)
        assert by_label.order.order_id == resting.order.order_id and by_label.order.amount == 40
        state = await client.get_order_state(resting.order.order_id)
        assert state.label == "maker-1" and state.amount == 40
        assert [o.order_id for o in await client.get_order_state_by_label("BTC", "maker-1")] == [resting.order.order_id]
        assert [o.order_id for o in await client.get_open_orders()] == [resting.order.order_id]
        assert [o.order_id for o in await client.get_open_orders_by_currency("BTC")] == [resting.order.order_id]
        assert await client.cancel_by_label("maker-1") == 1
        for i in range(3):
            await client.sell("BTC-PERPETUAL", 10, price=book["asks"][-1][0] + 500 + i)
        assert await client.cancel_all_by_instrument("BTC-PERPETUAL") == 3
        closed = await client.close_position("BTC-PERPETUAL", "market")
        assert closed.order.direction == "sell" and closed.order.filled_amount == 10
        with pytest.raises(drbfast.InvalidParams) as info:
            await client.buy("BTC-PERPETUAL", 15, price=50_000.0)  # not a multiple of the contract size (10)
        assert "contract size" in str(info.value.data)
        with pytest.raises(drbfast.InvalidParams):
            await client.buy("BTC-PERPETUAL", 10, price=50_000.3)  # off the 0.5 tick
        with pytest.raises(drbfast.DeribitError) as quotes:
            await client.mass_quote([{"instrument_name": "BTC-PERPETUAL", "bid": {"price": 1.0, "amount": 10}}])
        assert quotes.value.code == 13902


async def test_reconciliation_falls_back_to_open_orders(emulator: Emulator) -> None:
    """A gateway without get_order_state_by_label: the open orders of the instrument
    tell what became of the order."""
    async with drbfast.connect(emulator.url, **CREDS, **FAST) as client:
        emulator.faults.delay_responses(5.0)
        emulator.faults.fail_method("private/get_order_state_by_label", "error", code=-32601)
        handle = client.place("buy", "BTC-PERPETUAL", 10, price=45_000.0)
        await asyncio.sleep(0.05)
        emulator.faults.drop()
        with pytest.raises(drbfast.ConnectionLost):
            await asyncio.wait_for(_wait(handle), TIMEOUT)
        assert await handle.reconciled(TIMEOUT) == "placed"
        assert handle.order is not None and handle.order.label == handle.label


async def test_an_order_placed_while_reconnecting_is_sent_once_the_session_is_back(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **CREDS, **FAST) as client:
        emulator.faults.drop()
        await wait_until(lambda: not client.connected)
        handle = client.place("buy", "BTC-PERPETUAL", 10, price=44_000.0)
        assert not handle.sent, "nothing to write to while reconnecting"
        result = await asyncio.wait_for(_wait(handle), TIMEOUT)
        assert result.order.order_state == "open" and client.stats.reconnects == 1
        assert [o.label for o in emulator.exchange.open_orders(DEMO_CLIENT_ID)] == [handle.label]


async def test_a_buy_given_up_by_its_caller_still_settles_quietly(emulator: Emulator) -> None:
    """`wait_for(client.buy(...), t)` that times out cancels only the caller's wait: the
    order was sent and rests at the exchange, its late ack is absorbed (no stray error,
    nothing left pending), and the session goes on."""
    async with drbfast.connect(emulator.url, **CREDS, **FAST) as client:
        conn = emulator.connections[-1]
        emulator.faults.delay_responses(0.3, conn)
        before = client.stats.responses
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.buy("BTC-PERPETUAL", 10, price=50_000.0), 0.05)
        await wait_until(lambda: len(emulator.exchange.open_orders(DEMO_CLIENT_ID)) == 1)
        await wait_until(lambda: client.stats.responses == before + 1)  # the late ack came
        assert client._session.in_flight == 0 and client._session.to_reconcile == 0
        emulator.faults.delay_responses(0.0, conn)
        assert client.stats.timeouts == 0 and client.stats.orphan_replies == 0
        assert (await client.buy("BTC-PERPETUAL", 10, price=50_000.5)).order.order_state == "open"
