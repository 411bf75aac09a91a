"""Two sessions as one client (SplitClient): routing, independent recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import drbfast
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator
from drbfast.gateway import SplitClient, connect_split

from .conftest import TIMEOUT, wait_until

FAST: dict[str, Any] = {"heartbeat": 0.2, "request_timeout": 2.0, "backoff": drbfast.Backoff(initial=0.02, cap=0.1)}


async def test_split_routes_private_and_public_and_recovers_each_side_alone(emulator: Emulator) -> None:
    client = await connect_split(emulator.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, **FAST)
    assert isinstance(client, SplitClient)
    async with client:
        trading_conn, market_conn = sorted(emulator.connections, key=lambda c: c.cod, reverse=True)
        assert trading_conn.cod and not market_conn.cod, "cancel-on-disconnect on the trading side only"
        got: list[str] = []
        sub = await client.subscribe("user.orders.BTC-PERPETUAL.raw", "ticker.BTC-PERPETUAL.100ms", callback=lambda ch, d: got.append(ch))
        assert sorted(sub.channels) == ["ticker.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw"]
        assert trading_conn.subscriptions == {"user.orders.BTC-PERPETUAL.raw"}
        assert market_conn.subscriptions == {"ticker.BTC-PERPETUAL.100ms"}
        result = await client.buy("BTC-PERPETUAL", 10, price=50_000.0)
        await wait_until(lambda: "user.orders.BTC-PERPETUAL.raw" in got and "ticker.BTC-PERPETUAL.100ms" in got)
        assert [o.order_id for o in emulator.exchange.open_orders(DEMO_CLIENT_ID)] == [result.order.order_id]

        emulator.faults.drop(market_conn)
        await wait_until(lambda: client.market.stats.reconnects == 1 and client.market.connected)
        assert client.trading.stats.reconnects == 0 and trading_conn in emulator.connections
        assert emulator.exchange.open_orders(DEMO_CLIENT_ID), "a market-data drop does not cancel orders"
        assert emulator.connections[-1].subscriptions == {"ticker.BTC-PERPETUAL.100ms"}

        emulator.faults.drop(trading_conn)
        await wait_until(lambda: client.trading.stats.reconnects == 1 and client.trading.connected)
        assert emulator.exchange.open_orders(DEMO_CLIENT_ID) == [], "cancel-on-disconnect on the trading side"
        new_trading = next(c for c in emulator.connections if c.cod)
        assert new_trading.subscriptions == {"user.orders.BTC-PERPETUAL.raw"}
        assert client.market.stats.reconnects == 1
    await wait_until(lambda: emulator.connections == [], 2.0)


async def test_split_iterator_merges_both_sides(emulator: Emulator) -> None:
    async with await connect_split(emulator.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, **FAST) as client:
        sub = await client.subscribe("user.orders.BTC-PERPETUAL.raw", "ticker.ETH-PERPETUAL.100ms")
        await client.buy("BTC-PERPETUAL", 10, price=40_000.0)
        seen = set()
        while len(seen) < 2:
            channel, _ = await sub.get(TIMEOUT)
            seen.add(channel)
        assert seen == {"user.orders.BTC-PERPETUAL.raw", "ticker.ETH-PERPETUAL.100ms"}


async def test_a_failed_side_leaves_nothing_running(emulator: Emulator) -> None:
    import pytest

    with pytest.raises(drbfast.ConnectError):
        await connect_split(emulator.url, "ws://127.0.0.1:9/ws/api/v2", client_id=DEMO_CLIENT_ID,
                            client_secret=DEMO_CLIENT_SECRET, **FAST)
    await wait_until(lambda: emulator.connections == [], 2.0)


async def test_an_unread_split_iterator_is_bounded_like_a_plain_one() -> None:
    """A flood of 20,000 messages behind an iterator nobody reads: the split iterator
    with maxsize=100 holds 100 (the newest), counts the rest as dropped, and still
    ends when the client closes; a plain iterator on the same session does the same."""
    from drbfast.emulator import EmulatorConfig

    channel = "trades.BTC-PERPETUAL.raw"
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.05, credit_cost=1)) as emu:
        client = await connect_split(emu.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, **FAST)
        async with client:
            split = await client.subscribe(channel, maxsize=100)
            plain = await client.market.subscribe(channel, maxsize=100)
            market_conn = next(c for c in emu.connections if not c.cod)
            result = await emu.faults.flood(market_conn, count=20_000, channel=channel, timeout=30)
            assert result.sent == 20_000
            await wait_until(lambda: plain.delivered + plain.dropped >= 20_000 and client.market.stats.backlog == 0, 30)
            assert plain.dropped >= 19_900 and len(plain._queue) == 100
            held = len(split._queue)
            assert held == 100, f"the split iterator holds {held} messages"
            assert split.queued == 100
            assert split.dropped >= 19_900 and client.market.stats.overflows >= 2 * 19_900
            # What is kept is the newest, and it is handed out in order with its receive time.
            first, data = await split.get(TIMEOUT)
            assert first == channel and split.last_rx_ns > 0
            waiting = asyncio.ensure_future(_drain(split))
        # Closing the client ends the iterator once it has handed out the rest.
        assert await asyncio.wait_for(waiting, TIMEOUT) == 99


async def _drain(sub: Any) -> int:
    n = 0
    async for _ in sub:
        n += 1
    return n


async def test_split_iterator_overflow_never_breaks_a_book(emulator: Emulator) -> None:
    """The split iterator drops a book change at its bound: the change goes with the
    channel's queued ones, the market session resyncs, and the consumer sees a fresh
    snapshot next, never a change that does not follow what it saw."""
    import time

    async with await connect_split(emulator.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, **FAST) as client:
        sub = await client.subscribe("book.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw", maxsize=4)
        await wait_until(lambda: client.market.stats.book_local_drops >= 1)
        assert sub.dropped >= 1
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and len(seen) < 40:
            channel, data = await sub.get(TIMEOUT)
            assert channel == "book.BTC-PERPETUAL.100ms"
            seen.append(data)
            await asyncio.sleep(0.03 if len(seen) < 20 else 0)
        last: int | None = None
        for d in seen:
            if d["type"] == "snapshot":
                last = d["change_id"]
                continue
            assert last is not None, "a change before any snapshot"
            assert d["prev_change_id"] == last, "a change that does not follow the previous one"
            last = d["change_id"]
