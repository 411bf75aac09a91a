"""client.order_book(): a local book kept from the feed, against the emulator's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import drbfast
from drbfast import Event
from drbfast.book import BookStatus
from drbfast.emulator import Emulator, EmulatorConfig

from .conftest import TIMEOUT, book_gap_frame, wait_until

FAST: dict[str, Any] = {"heartbeat": 0.2, "request_timeout": 2.0, "backoff": drbfast.Backoff(initial=0.02, cap=0.1)}


async def same_as_emulator(client: drbfast.Client, book: drbfast.OrderBook, name: str) -> None:
    """The local book equals the emulator's ``public/get_order_book`` at full depth, at a
    moment when both stand at the same change_id (the reply follows every notification
    sent before it, and this consumer keeps up, so nothing overtakes)."""
    for _ in range(200):
        ref = await client.call("public/get_order_book", instrument_name=name, depth=10_000)
        if book.is_synced and ref["change_id"] == book.change_id:
            assert book.bids() == [tuple(level) for level in ref["bids"]]
            assert book.asks() == [tuple(level) for level in ref["asks"]]
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never caught the local book at the emulator's change_id ({book!r})")


async def test_local_book_equals_the_emulators_through_gaps_and_resets() -> None:
    events: list[Event] = []
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.005)) as emu, \
            drbfast.connect(emu.url, on_event=events.append, **FAST) as client:
        updates: list[int] = []
        book = await client.order_book("BTC-PERPETUAL", on_update=lambda b: updates.append(b.change_id))
        await same_as_emulator(client, book, "BTC-PERPETUAL")
        assert book.best_bid is not None and book.best_ask is not None and book.best_bid[0] < book.best_ask[0]
        assert book.spread == pytest.approx(book.best_ask[0] - book.best_bid[0])
        for round_ in range(3):
            target = book.updates + 100
            await wait_until(lambda: book.updates >= target, 30)
            # A frame whose prev_change_id follows nothing: the book resyncs from a snapshot.
            emu.connections[-1].send(book_gap_frame("book.BTC-PERPETUAL.100ms"))
            await wait_until(lambda: client.stats.book_gaps == round_ + 1)
            await same_as_emulator(client, book, "BTC-PERPETUAL")
        assert book.updates >= 300, "hundreds of changes applied"
        assert [e.detail["status"] for e in events if e.kind == "book_gap"] == ["GAP"] * 3
        assert updates and updates[-1] <= book.change_id
        # A reconnect starts the book again from the new connection's snapshot.
        emu.faults.drop()
        await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
        await same_as_emulator(client, book, "BTC-PERPETUAL")


async def test_book_updates_iterator_and_close(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        book = await client.order_book("ETH-PERPETUAL")
        assert await client.order_book("ETH-PERPETUAL") is book, "one book per channel"
        seen = []
        async for b in client.book_updates(book):
            seen.append(b.change_id)
            if len(seen) == 3:
                break
        assert seen == sorted(seen) and len(set(seen)) == 3
        await client.close_order_book(book)
        assert "book.ETH-PERPETUAL.100ms" not in client.channels
        with pytest.raises(drbfast.ConfigurationError):
            async for _ in client.book_updates(book):
                pass


async def test_grouped_book_and_a_plain_subscriber_beside_it(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        raw: list[Any] = []
        await client.subscribe("book.BTC-PERPETUAL.100ms", callback=lambda ch, d: raw.append(d))
        await wait_until(lambda: len(raw) >= 2)
        # The channel is held already: the book still gets a snapshot to start from.
        book = await client.order_book("BTC-PERPETUAL", interval="100ms")
        await wait_until(lambda: len(raw) >= 3 and book.is_synced)
        assert raw[-1]["change_id"] <= book.change_id, "the plain subscriber gets the data too"
        try:
            grouped = await client.order_book("BTC-PERPETUAL", depth=10)
        except drbfast.SubscriptionRefused:
            pytest.skip("this emulator does not serve grouped books yet")
        await wait_until(lambda: grouped.is_synced, TIMEOUT)
        assert grouped.grouped and len(grouped.bids()) <= 10


async def test_unreadable_book_message_resyncs_and_never_shows_half(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        book = await client.order_book("ETH-PERPETUAL")
        await wait_until(lambda: book.is_synced)
        before = (book.bids(), book.asks(), book.change_id)
        emulator.connections[-1].send(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.ETH-PERPETUAL.100ms","data":{"type":"change","bids":[["new",1.0')
        await wait_until(lambda: client.stats.book_errors == 1)
        assert BookStatus.PARSE_ERROR.name in [e.detail.get("status") for e in client.events if e.kind == "book_gap"]
        assert before[2] <= book.change_id
        await wait_until(lambda: book.is_synced and book.change_id > before[2])


async def test_on_update_is_called_once_per_batch_not_per_change() -> None:
    from drbfast.bookgen import BookStreamGenerator

    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=3600)) as emu, \
            drbfast.connect(emu.url, **FAST) as client:
        calls: list[int] = []
        book = await client.order_book("BTC-PERPETUAL", on_update=lambda b: calls.append(b.change_id))
        await wait_until(lambda: book.is_synced and bool(calls))
        conn = emu.connections[-1]
        gen = BookStreamGenerator("btc-perpetual", depth=50)
        conn.send(gen.snapshot())
        await wait_until(lambda: book.snapshots == 2)
        n0, applied0 = len(calls), book.updates
        # 200 changes written in one go: the client reads them in one or a few slices.
        for _ in range(200):
            conn.send(gen.change())
        await wait_until(lambda: book.updates == applied0 + 200)
        await asyncio.sleep(0.05)
        assert calls[-1] == book.change_id
        assert len(calls) - n0 < 50, f"conflated: {len(calls) - n0} calls for 200 changes"
        assert book.bids() == gen.bids and book.asks() == gen.asks


async def test_listener_book_reset_restarts_the_local_book() -> None:
    """A consumer too slow for a flood: the listener drops the book's queued changes,
    the local book waits for a fresh snapshot and is whole again after it. (The
    book's bound is small: a consumer that keeps a book from the bytes keeps up with
    the flood's backlog under 64 kB.)"""
    import time

    from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    def busy(us: float) -> None:
        end = time.perf_counter() + us / 1e6
        while time.perf_counter() < end:
            pass

    cfg = EmulatorConfig(min_heartbeat=0.1, tick_interval=3600, credit_cost=1)
    async with Emulator(cfg) as emu, drbfast.connect(
            emu.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, heartbeat=1.0, request_timeout=5.0,
            listener_options={"max_bytes": 4 * 1024 * 1024, "book_bytes": 32 * 1024}) as client:
        book = await client.order_book("BTC-PERPETUAL", interval="raw", on_update=lambda b: busy(200))
        await client.subscribe("ticker.BTC-PERPETUAL.100ms", callback=lambda ch, d: busy(200))
        await wait_until(lambda: book.is_synced)
        await emu.faults.flood(count=20_000, channel="book.BTC-PERPETUAL.raw", timeout=30)
        await wait_until(lambda: client.stats.book_resets >= 1, 20)
        await wait_until(lambda: book.is_synced and client.stats.backlog == 0, 20)
        assert book.best_bid is not None and book.best_ask is not None
        assert "book_dropped" in [e.kind for e in client.events]


async def test_changes_after_a_resync_reply_before_its_snapshot_start_no_other() -> None:
    """A resubscribe's reply can overtake book changes queued before its snapshot
    (replies go first). Those stale changes meet a channel that waits for its snapshot:
    they are refused without counting a gap or starting another resync (each one did),
    and the snapshot makes the book whole."""
    import json

    from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    channel = "book.BTC-PERPETUAL.raw"
    cfg = EmulatorConfig(min_heartbeat=0.1, tick_interval=3600)
    async with Emulator(cfg) as emu, drbfast.connect(
            emu.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, heartbeat=1.0) as client:
        got: list[Any] = []
        await client.subscribe(channel, callback=lambda ch, d: got.append(d))
        await wait_until(lambda: len(got) == 1 and got[0]["type"] == "snapshot")
        conn = emu.connections[-1]
        emu.faults.delay_snapshots(0.5, conn)
        emu.faults.send_fragmented(book_gap_frame(channel), parts=1, conn=conn)
        await wait_until(lambda: conn.requests["private/subscribe"] == 2)
        await wait_until(lambda: channel not in client._session.resync)  # the resync's reply is in: it is done
        assert client.book_waiting(channel) and client.stats.book_gaps == 1
        for i in range(30):
            stale = {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": {
                "type": "change", "timestamp": 1, "prev_change_id": 2 + i, "change_id": 3 + i,
                "instrument_name": "BTC-PERPETUAL", "bids": [], "asks": []}}}
            emu.faults.send_fragmented(json.dumps(stale).encode(), parts=1, conn=conn)
        await wait_until(lambda: not client.book_waiting(channel))
        assert got[-1]["type"] == "snapshot" and len(got) == 2, "nothing stale delivered"
        assert client.stats.book_gaps == 1
        assert conn.requests["private/unsubscribe"] == 1 and conn.requests["private/subscribe"] == 2


async def test_a_snapshot_that_never_comes_is_asked_for_again() -> None:
    """A resync whose snapshot does not arrive (here: held for longer than the grace)
    is retried by the supervisor even when the channel is quiet."""
    from drbfast.client import RESYNC_GRACE
    from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    channel = "book.BTC-PERPETUAL.raw"
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=3600)) as emu, drbfast.connect(
            emu.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, heartbeat=1.0) as client:
        got: list[Any] = []
        await client.subscribe(channel, callback=lambda ch, d: got.append(d))
        await wait_until(lambda: len(got) == 1)
        conn = emu.connections[-1]
        emu.faults.delay_snapshots(60.0, conn)  # the first resync's snapshot never comes in time
        emu.faults.send_fragmented(book_gap_frame(channel), parts=1, conn=conn)
        await wait_until(lambda: conn.requests["private/subscribe"] == 2)
        emu.faults.delay_snapshots(0.0, conn)
        await wait_until(lambda: not client.book_waiting(channel), RESYNC_GRACE + TIMEOUT)
        assert conn.requests["private/subscribe"] == 3 and got[-1]["type"] == "snapshot"
