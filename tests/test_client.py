"""drbfast.connect against the emulator, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

import drbfast
from drbfast import Credits, Event
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

from .conftest import TIMEOUT, book_gap_frame, wait_until

CREDS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
FAST = {"heartbeat": 0.2, "request_timeout": 2.0, "backoff": drbfast.Backoff(initial=0.05, cap=0.2)}


def methods_sent(conn: Any) -> list[str]:
    return [m["method"] for m in conn.received if isinstance(m, dict)]


async def test_setup_order_on_connect(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, cancel_on_disconnect="connection", **CREDS, **FAST) as client:
        assert client.connected and client.authenticated
        conn = emulator.connections[-1]
        assert methods_sent(conn)[:4] == ["public/hello", "public/auth", "public/set_heartbeat", "private/enable_cancel_on_disconnect"]
        auth = conn.received[1]["params"]
        assert auth["grant_type"] == "client_signature", "the secret never goes on the wire by default"
        assert DEMO_CLIENT_SECRET not in json.dumps(conn.received)


async def test_credentials_grant_and_wrong_secret(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, auth="credentials", **CREDS, **FAST) as client:
        assert emulator.connections[-1].received[1]["params"]["grant_type"] == "client_credentials"
        assert await client.call("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL") == []
    with pytest.raises(drbfast.InvalidCredentials) as info:
        await drbfast.connect(emulator.url, client_id=DEMO_CLIENT_ID, client_secret="wrong-secret-xyz", **FAST)
    assert info.value.code == 13004
    assert "wrong-secret-xyz" not in str(info.value)


async def test_token_refresh_before_expiry() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, token_ttl=1.0)) as emu:
        async with drbfast.connect(emu.url, **CREDS, **FAST) as client:
            await wait_until(lambda: client.stats.token_refreshes >= 2, 5.0)
            grants = [m["params"]["grant_type"] for m in emu.connections[-1].received if m.get("method") == "public/auth"]
            assert grants[0] == "client_signature" and "refresh_token" in grants[1:]
            # The session is still authorised after several token lifetimes.
            assert await client.call("private/get_cancel_on_disconnect") == {"scope": "connection", "enabled": False}


@pytest.mark.parametrize("failing", [1, 2])
async def test_refused_token_refresh_authenticates_again(failing: int) -> None:
    """A refused refresh falls back to a fresh client_signature; if that is refused too,
    the session stays up and tries again a few seconds later."""
    events: list[Event] = []
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, token_ttl=1.0)) as emu:
        async with drbfast.connect(emu.url, on_event=events.append, **CREDS, **FAST) as client:
            emu.faults.fail_method("public/auth", "error", code=13009, times=failing)
            await wait_until(lambda: all(f.fired == f.times for f in emu.faults.method_faults), 5.0)
            conn = emu.connections[-1]
            if failing == 1:
                await wait_until(lambda: client.stats.token_refreshes >= 1, 5.0)
                grants = [m["params"]["grant_type"] for m in conn.received if m.get("method") == "public/auth"]
                assert grants[:3] == ["client_signature", "refresh_token", "client_signature"]
            assert client.connected and client.stats.reconnects == 0 and conn is emu.connections[-1]
            assert "fatal" not in [e.kind for e in events]


async def test_calls_and_typed_errors(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        assert isinstance(await client.call("public/get_time"), int)
        with pytest.raises(drbfast.MethodNotFound) as e1:
            await client.call("public/does_not_exist")
        assert e1.value.code == -32601 and e1.value.method == "public/does_not_exist"
        with pytest.raises(drbfast.InvalidParams) as e2:
            await client.call("public/set_heartbeat", interval=0.001)
        assert e2.value.data["param"] == "interval"
        with pytest.raises(drbfast.DeribitError) as e3:
            await client.call("public/test", expected_result="exception")
        assert (e3.value.code, e3.value.message) == (11094, "internal_server_error")
        with pytest.raises(drbfast.Unauthorized):
            await client.call("private/get_open_orders_by_instrument", instrument_name="BTC-PERPETUAL")
        assert await client.call("public/test") == {"version": "1.2.26"}


async def test_request_timeout(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, heartbeat=None, request_timeout=0.3) as client:
        emulator.faults.delay_responses(1.0)
        t0 = time.monotonic()
        with pytest.raises(drbfast.RequestTimeout):
            await client.call("public/get_time")
        assert 0.25 < time.monotonic() - t0 < 1.0
        emulator.faults.delay_responses(0)
        await asyncio.sleep(1.0)  # the late reply arrives: an orphan, counted, no crash
        assert client.stats.orphan_replies == 1
        assert isinstance(await client.call("public/get_time"), int)


async def test_subscription_callback_and_iterator(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        books: list[Any] = []
        await client.subscribe("book.BTC-PERPETUAL.100ms", callback=lambda ch, d: books.append((ch, d)))
        it = await client.subscribe("ticker.ETH-PERPETUAL.100ms")
        got = [await it.get(TIMEOUT) for _ in range(3)]
        assert all(ch == "ticker.ETH-PERPETUAL.100ms" and d["instrument_name"] == "ETH-PERPETUAL" for ch, d in got)
        await wait_until(lambda: len(books) >= 3)
        assert books[0][1]["type"] == "snapshot"
        for (_, prev), (_, cur) in zip(books, books[1:]):
            assert cur["prev_change_id"] == prev["change_id"]
        await it.unsubscribe()
        assert "ticker.ETH-PERPETUAL.100ms" not in client.channels
        assert "ticker.ETH-PERPETUAL.100ms" not in emulator.connections[-1].subscriptions


async def test_iterator_overflow_is_counted_not_silent(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        sub = await client.subscribe("ticker.BTC-PERPETUAL.100ms", "book.BTC-PERPETUAL.100ms", maxsize=3)
        await wait_until(lambda: sub.dropped >= 5)
        assert client.stats.overflows >= 5
        assert any("full" in r.message for r in caplog.records)
        # drop_oldest: what is left is the newest
        channel, data = await sub.get(TIMEOUT)
        assert channel in sub.channels


async def test_refused_channels_are_reported(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        with pytest.raises(drbfast.SubscriptionRefused) as info:
            await client.subscribe("ticker.BTC-PERPETUAL.100ms", "ticker.NOPE-PERPETUAL.100ms")
        assert info.value.channels == ["ticker.NOPE-PERPETUAL.100ms"]
        sub = info.value.subscription  # type: ignore[attr-defined]
        assert sub.channels == ["ticker.BTC-PERPETUAL.100ms"]
        assert (await sub.get(TIMEOUT))[0] == "ticker.BTC-PERPETUAL.100ms"
        lenient = await client.subscribe("book.NOPE.100ms", "trades.BTC-PERPETUAL.100ms", strict=False)
        assert lenient.refused == ["book.NOPE.100ms"]


async def test_raw_channel_without_auth_is_13778(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        with pytest.raises(drbfast.RawSubscriptionsNeedAuth):
            await client.subscribe("book.BTC-PERPETUAL.raw")
        assert client.channels == []


async def test_large_subscribe_is_split_under_32kb(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        channels = [f"ticker.BTC-PERPETUAL.100ms"] + [f"ticker.FAKE-{i:05d}-PERPETUAL-LONG-NAME.100ms" for i in range(1500)]
        sub = await client.subscribe(*channels, strict=False)
        assert sub.channels == ["ticker.BTC-PERPETUAL.100ms"] and len(sub.refused) == 1500
        frames = [f for f in emulator.connections[-1].frames if f.direction == "in" and b"public/subscribe" in f.payload]
        assert len(frames) >= 2 and all(len(f.payload) <= 32 * 1024 for f in frames)
        assert not any(b"-32600" in f.payload for f in emulator.connections[-1].frames if f.direction == "out")


async def test_reconnect_reauths_resubscribes_once(emulator: Emulator) -> None:
    events: list[Event] = []
    async with drbfast.connect(emulator.url, cancel_on_disconnect="connection", on_event=events.append, **CREDS, **FAST) as client:
        ticks: list[int] = []
        await client.subscribe("ticker.BTC-PERPETUAL.100ms", callback=lambda ch, d: ticks.append(d["timestamp"]))
        first = emulator.connections[-1]
        emulator.faults.drop(first)
        await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
        second = emulator.connections[-1]
        assert second is not first
        assert methods_sent(second)[:5] == ["public/hello", "public/auth", "public/set_heartbeat",
                                              "private/enable_cancel_on_disconnect", "private/subscribe"]
        assert second.subscriptions == {"ticker.BTC-PERPETUAL.100ms"}
        # One callback registration: each notification is delivered exactly once.
        await wait_until(lambda: sum(1 for f in second.frames if f.direction == "out" and b'"channel":"ticker.BTC-PERPETUAL.100ms"' in f.payload) >= 5)
        def count(conn: Any) -> int:
            return sum(1 for f in conn.frames if f.direction == "out" and b'"channel":"ticker.BTC-PERPETUAL.100ms"' in f.payload)

        sent_before = count(second)
        await client.call("public/get_time")  # everything sent before this reply has been delivered
        assert sent_before >= 5
        assert sent_before <= len(ticks) <= count(first) + count(second)
        assert len(set(ticks)) == len(ticks), "a notification was delivered twice"
        kinds = [e.kind for e in events]
        assert kinds[:4] == ["connected", "disconnected", "reconnecting", "reconnected"]


async def test_in_flight_requests_fail_with_connection_lost(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, reconnect=False, **FAST) as client:
        emulator.faults.delay_responses(5.0)
        calls = [asyncio.ensure_future(client.call("public/get_time")) for _ in range(3)]
        await asyncio.sleep(0.1)
        emulator.faults.drop()
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), TIMEOUT)
        assert all(isinstance(r, drbfast.ConnectionLost) for r in results)
        with pytest.raises(drbfast.NotConnected):
            await client.call("public/get_time")


async def test_watchdog_drops_a_silent_connection(emulator: Emulator) -> None:
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **FAST) as client:
        first = emulator.connections[-1]
        emulator.faults.silence(first)
        await wait_until(lambda: client.stats.reconnects == 1 and client.connected, 5.0)
        assert client.stats.watchdog_drops == 1
        assert "watchdog" in [e.kind for e in events]


async def test_heartbeats_are_answered_and_counted(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, probe_interval=0.1, **FAST) as client:
        await wait_until(lambda: client.stats.replies_sent >= 3 and client.stats.last_rtt_ns > 0)
        conn = emulator.connections[-1]
        assert len(conn.test_request_rtts_ns) >= 3
        assert conn.close_code is None
        s = client.stats
        assert s.test_requests == s.replies_sent
        assert s.server_us_diff is not None and s.clock_offset_us is not None


async def test_cancel_on_disconnect_seen_in_the_order_book(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, cancel_on_disconnect="connection", reconnect=False, **CREDS, **FAST) as a, \
            drbfast.connect(emulator.url, **CREDS, **FAST) as b:
        mine = await a.call("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000)
        other = await b.call("private/sell", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=99000)
        assert len(emulator.exchange.open_orders(DEMO_CLIENT_ID)) == 2
        emulator.faults.drop(emulator.connections[0])
        await wait_until(lambda: len(emulator.exchange.open_orders(DEMO_CLIENT_ID)) == 1)
        assert [o.order_id for o in emulator.exchange.open_orders(DEMO_CLIENT_ID)] == [other["order"]["order_id"]]
        assert mine["order"]["order_state"] == "open"


async def test_bad_input_is_survived_and_counted(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, listener_options={"max_message_size": 16 * 1024 * 1024}, **FAST) as client:
        conn = emulator.connections[-1]
        emulator.faults.send_malformed()
        emulator.faults.send_binary()
        emulator.faults.send_oversized(size=3_000_000)
        emulator.faults.send_fragmented(b'{"jsonrpc":"2.0","id":424242,"result":1}', parts=3)
        conn.send(b'{"jsonrpc":"2.0","error":{"code":11050,"data":"invalid json","message":"bad_request"}}')
        conn.send(b'{"jsonrpc":"2.0","id":77,"result":{"trades":[')  # a truncated reply: the one-pass reply decode
        await asyncio.sleep(0.3)
        s = client.stats
        assert s.parse_errors == 3  # the malformed text, the binary frame, the truncated reply
        assert s.orphan_replies == 2  # unknown id 424242, and the id-less error
        assert await client.call("public/test") == {"version": "1.2.26"}


@pytest.mark.parametrize("failing_resyncs", [0, 2])
async def test_book_gap_resyncs_with_a_fresh_snapshot(emulator: Emulator, failing_resyncs: int) -> None:
    """A gap: the channel is resubscribed for a fresh snapshot; a resync that fails (no
    reply, an error) is retried with backoff until it works, on the same connection."""
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **FAST) as client:
        frames: list[dict[str, Any]] = []
        await client.subscribe("book.ETH-PERPETUAL.100ms", callback=lambda ch, d: frames.append(d))
        await wait_until(lambda: len(frames) >= 3)
        conn = emulator.connections[-1]
        if failing_resyncs:
            emulator.faults.fail_method("public/unsubscribe", "silence", times=1)
            emulator.faults.fail_method("public/subscribe", "error", times=1, code=11050)
        n = len(frames)  # the frame is sent synchronously below; nothing is read before
        conn.send(book_gap_frame("book.ETH-PERPETUAL.100ms"))
        await wait_until(lambda: client.stats.book_gaps == 1)
        await wait_until(lambda: len(frames) > n + 2)
        assert frames[n]["type"] == "snapshot", "after a gap the next frame delivered is a fresh snapshot"
        assert all(f["change_id"] != 2 for f in frames), "the gapped frame was not delivered"
        for prev, cur in zip(frames[n:], frames[n + 1:]):
            assert cur["prev_change_id"] == prev["change_id"]
        kinds = [e.kind for e in events]
        assert "book_gap" in kinds
        assert kinds.count("resync_failed") == failing_resyncs
        assert client.connected and conn is emulator.connections[-1], "the connection stayed up"


async def test_callback_errors_are_logged_with_channel(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    async with drbfast.connect(emulator.url, **FAST) as client:
        def boom(channel: str, data: Any) -> None:
            raise RuntimeError("user bug")
        await client.subscribe("ticker.BTC-PERPETUAL.100ms", callback=boom)
        await wait_until(lambda: client.stats.callback_errors >= 2)
        assert any("ticker.BTC-PERPETUAL.100ms" in r.getMessage() for r in caplog.records)
        assert await client.call("public/test") == {"version": "1.2.26"}


async def test_credit_budget_spaces_calls_instead_of_10028() -> None:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, credit_cap=2_000, credit_refill=2_000)) as emu:
        budget = Credits(cost=500, cap=2_000, refill=2_000)
        async with drbfast.connect(emu.url, heartbeat=None, credits=budget) as client:
            t0 = time.monotonic()
            for _ in range(8):
                await client.call("public/get_time")
            # hello used 500: 8 more calls at 4 calls/s after a burst of 3 -> >= 1.2 s
            assert time.monotonic() - t0 > 1.0
            assert client.connected


async def test_lazy_mode_reads_fields_inside_the_callback(emulator: Emulator) -> None:
    async with drbfast.connect(emulator.url, lazy=True, **FAST) as client:
        seen: list[float] = []
        await client.subscribe("ticker.BTC-PERPETUAL.100ms", callback=lambda ch, d: seen.append(d["best_bid_price"]))
        await wait_until(lambda: len(seen) >= 3)
        assert all(isinstance(x, float) for x in seen)


async def test_secrets_stay_out_of_reprs_and_logs(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with drbfast.connect(emulator.url, auth="credentials", **CREDS, **FAST) as client:
        await client.call("public/test")
        assert DEMO_CLIENT_SECRET not in repr(client)
        assert DEMO_CLIENT_SECRET not in repr(client._creds) and DEMO_CLIENT_SECRET not in str(client._creds)
    assert DEMO_CLIENT_SECRET not in caplog.text


async def test_misuse_is_refused_with_a_hint() -> None:
    with pytest.raises(drbfast.ConfigurationError, match="both"):
        drbfast.connect("ws://127.0.0.1:1/ws/api/v2", client_id="x")
    with pytest.raises(drbfast.ConfigurationError, match="credentials"):
        drbfast.connect("ws://127.0.0.1:1/ws/api/v2", cancel_on_disconnect="connection")
    with pytest.raises(drbfast.ConfigurationError, match="ws://"):
        drbfast.connect("http://127.0.0.1:1/")


async def test_refused_connection_raises_connect_error() -> None:
    with pytest.raises(drbfast.ConnectError) as info:
        await drbfast.connect("ws://127.0.0.1:9/ws/api/v2", heartbeat=None, request_timeout=2.0)
    assert isinstance(info.value, OSError) and isinstance(info.value.__cause__, OSError)


async def test_a_blocked_event_loop_still_loses_the_connection() -> None:
    """The listener runs on the event loop: strategy code that blocks the loop for longer
    than the heartbeat deadline gets the connection closed with 4000 all the same (the
    README says so). The emulator runs in its own process here, so it keeps time."""
    import subprocess
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "emulator", "--min-heartbeat", "0.2", "--duration", "30",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode().split()[-1]
        events: list[Event] = []
        async with drbfast.connect(url, heartbeat=0.2, request_timeout=2.0, on_event=events.append,
                                   backoff=drbfast.Backoff(initial=0.05, cap=0.2)) as client:
            await wait_until(lambda: client.stats.replies_sent >= 2)
            time.sleep(1.0)  # a strategy blocking the loop for 5 heartbeat intervals
            await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
            lost = [e for e in events if e.kind == "disconnected"]
            assert lost and lost[0].detail["close_code"] == 4000
    finally:
        proc.terminate()
        await proc.wait()
