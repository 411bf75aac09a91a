"""Every set-up step failing in every way, on the first connect and on reconnects,
against the emulator over real sockets: the client always ends with exactly one live,
fully set-up connection (or, on a failed first connect, with nothing at all)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import drbfast
from drbfast import Event
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

from .conftest import TIMEOUT, book_gap_frame, wait_until

CREDS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
#: Short timeouts so that "no reply" costs 0.4 s per attempt.
FAST: dict[str, Any] = {"heartbeat": 0.2, "request_timeout": 0.4}

STEPS = ["public/hello", "public/auth", "public/set_heartbeat", "private/enable_cancel_on_disconnect", "private/subscribe"]
FAULTS = [("drop", {}), ("close", {"code": 4000}), ("error", {"code": 10028}), ("silence", {})]
KEEP = "ticker.BTC-PERPETUAL.100ms"
GONE = "ticker.ETH-PERPETUAL.100ms"


def backoff() -> drbfast.Backoff:
    return drbfast.Backoff(initial=0.02, cap=0.1)


def notifications(conn: Any, channel: str) -> list[int]:
    """Timestamps of the ``channel`` notifications the emulator sent on ``conn``."""
    needle = f'"channel":"{channel}"'.encode()
    return [json.loads(f.payload)["params"]["data"]["timestamp"] for f in conn.frames if f.direction == "out" and needle in f.payload]


def subscribe_requests(conn: Any) -> list[str]:
    out: list[str] = []
    for m in conn.received:
        if isinstance(m, dict) and m.get("method", "").endswith("/subscribe"):
            out.extend(m["params"]["channels"])
    return out


async def other_tasks() -> set[asyncio.Task[Any]]:
    await asyncio.sleep(0)
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


@pytest.fixture
async def emu() -> Any:
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.02)) as e:
        yield e


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("fault,extra", FAULTS, ids=[f for f, _ in FAULTS])
@pytest.mark.parametrize("step", STEPS)
async def test_reconnect_survives_a_failed_setup_step(emu: Emulator, step: str, fault: str, extra: dict[str, Any], times: int) -> None:
    events: list[Event] = []
    client = await drbfast.connect(emu.url, cancel_on_disconnect="connection", backoff=backoff(), on_event=events.append, **CREDS, **FAST)
    try:
        ticks: list[int] = []
        await client.subscribe(KEEP, callback=lambda ch, d: ticks.append(d["timestamp"]))
        gone = await client.subscribe(GONE, callback=lambda ch, d: None)
        await gone.unsubscribe()
        first = emu.connections[-1]

        # A call in flight when the connection drops fails with ConnectionLost.
        emu.faults.delay_responses(5.0, first)
        in_flight = asyncio.ensure_future(client.call("public/get_time"))
        await asyncio.sleep(0.05)
        emu.faults.fail_method(step, fault, times=times, **extra)
        emu.faults.drop(first)
        with pytest.raises(drbfast.ConnectionLost):
            await asyncio.wait_for(in_flight, TIMEOUT)

        await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
        final = emu.connections[-1]
        # The faulty attempts happened, each on its own connection, and are all gone.
        assert len(emu.history) == 2 + times
        await wait_until(lambda: len(emu.connections) == 1)
        assert emu.connections == [final]
        assert final.authenticated and final.cod, "cancel-on-disconnect armed on the live connection"
        assert final.heartbeat_interval == FAST["heartbeat"]
        assert final.subscriptions == {KEEP}, "live channels only: the unsubscribed one never comes back"
        assert subscribe_requests(final) == [KEEP], "subscribed exactly once"
        assert client.channels == [KEEP]

        # Every notification of the live connection is delivered exactly once.
        await wait_until(lambda: len(notifications(final, KEEP)) >= 5)
        sent = notifications(final, KEEP)
        await client.call("public/get_time")
        delivered_now = [t for t in ticks if t in set(sent)]
        assert delivered_now == sent
        assert len(set(ticks)) == len(ticks), "a notification was delivered twice"
        kinds = [e.kind for e in events]
        assert kinds.count("reconnect_failed") == times
        assert kinds.count("reconnected") == 1
    finally:
        await client.close()
    await asyncio.sleep(0.5)
    assert emu.connections == [], "no exchange-side connection 0.5 s after close()"
    assert not await other_tasks() - emu_tasks(emu)


def emu_tasks(emu: Emulator) -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if "market_pump" in repr(t.get_coro()) or "Emulator" in repr(t.get_coro())}


@pytest.mark.parametrize("fault,extra", FAULTS, ids=[f for f, _ in FAULTS])
@pytest.mark.parametrize("step", STEPS[:4])
async def test_failed_first_connect_leaves_nothing(emu: Emulator, step: str, fault: str, extra: dict[str, Any]) -> None:
    before = await other_tasks()
    emu.faults.fail_method(step, fault, **extra)
    with pytest.raises(drbfast.DrbfastError) as info:
        await drbfast.connect(emu.url, cancel_on_disconnect="connection", backoff=backoff(), **CREDS, **FAST)
    err = info.value
    if fault == "error":
        assert isinstance(err, drbfast.TooManyRequests) and err.code == 10028
    elif fault == "silence":
        assert isinstance(err, drbfast.RequestTimeout)
    else:
        assert isinstance(err, drbfast.ConnectionLost)
    await asyncio.sleep(0.5)
    assert emu.connections == [], "no connection left"
    assert len(emu.history) == 1, "no further attempt"
    assert await other_tasks() - before == set(), "no task left"


async def test_cancelled_first_connect_leaves_nothing(emu: Emulator) -> None:
    before = await other_tasks()
    emu.faults.fail_method("public/auth", "silence")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(drbfast.connect(emu.url, backoff=backoff(), **CREDS, heartbeat=0.2, request_timeout=5.0), 0.3)
    await asyncio.sleep(0.5)
    assert emu.connections == [] and len(emu.history) == 1
    assert await other_tasks() - before == set()


async def test_handshake_eof_on_first_connect_is_a_connect_error(emu: Emulator) -> None:
    emu.faults.reject_handshakes(1)
    with pytest.raises(drbfast.ConnectError, match="handshake"):
        await drbfast.connect(emu.url, **FAST)
    assert emu.faults.handshakes_rejected == 1


async def test_reconnect_through_handshake_eofs(emu: Emulator) -> None:
    events: list[Event] = []
    async with drbfast.connect(emu.url, backoff=backoff(), on_event=events.append, **FAST) as client:
        emu.faults.reject_handshakes(3)
        emu.faults.drop()
        await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
        assert emu.faults.handshakes_rejected == 3
        assert [e.kind for e in events].count("reconnect_failed") == 3
        assert await client.call("public/test") == {"version": "1.2.26"}


async def test_http_status_refusal_is_a_connect_error(emu: Emulator) -> None:
    bad = emu.url.replace("/ws/api/v2", "/nope")
    with pytest.raises(drbfast.ConnectError) as info:
        await drbfast.connect(bad, **FAST)
    assert info.value.status == 404


async def test_bad_credentials_on_reconnect_are_fatal(emu: Emulator) -> None:
    events: list[Event] = []
    client = await drbfast.connect(emu.url, backoff=backoff(), on_event=events.append, **CREDS, **FAST)
    try:
        emu.faults.fail_method("public/auth", "error", code=13004)
        emu.faults.drop()
        await wait_until(lambda: "fatal" in [e.kind for e in events])
        assert client.state is drbfast.State.FAILED
        with pytest.raises(drbfast.InvalidCredentials):
            await client.wait_connected(1.0)
        with pytest.raises(drbfast.NotConnected):
            await client.call("public/test")
        n = len(emu.history)
        await asyncio.sleep(0.3)
        assert len(emu.history) == n, "no retry after a fatal error"
    finally:
        await client.close()


async def test_setup_close_storm_is_bounded_by_backoff(emu: Emulator) -> None:
    """A server that closes every connection during set-up: new connections come at the
    backoff's pace, never two attempts at once, and the rate does not grow."""
    client = await drbfast.connect(emu.url, backoff=drbfast.Backoff(initial=0.02, cap=0.08), **FAST)
    try:
        emu.faults.fail_method("public/hello", "close", times=10_000, code=4000)
        emu.faults.drop()
        start = len(emu.history)
        most_at_once = 0
        marks = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            most_at_once = max(most_at_once, len(emu.connections))
            marks.append((time.monotonic() - t0, len(emu.history) - start))
            await asyncio.sleep(0.002)
        total = len(emu.history) - start
        first_half = max(n for t, n in marks if t <= 1.0)
        second_half = total - first_half
        assert most_at_once <= 1, "never two (re)connect attempts at once"
        # cap 0.08 s: delays of 0.04-0.08 s, each attempt also waits for the close.
        assert 5 <= total <= 2.0 / 0.04 + 2
        assert second_half <= first_half * 1.5 + 3, "the attempt rate does not grow"
        emu.faults.clear_method_faults()
        await wait_until(lambda: client.connected)
        assert len(emu.connections) == 1
    finally:
        await client.close()


async def test_malformed_subscribe_reply_is_a_typed_error(emu: Emulator) -> None:
    async with drbfast.connect(emu.url, **FAST) as client:
        from drbfast.emulator import rpc

        original = rpc.HANDLERS["public/subscribe"]
        rpc.HANDLERS["public/subscribe"] = lambda conn, params: 42
        try:
            with pytest.raises(drbfast.MalformedReply):
                await client.subscribe(KEEP)
        finally:
            rpc.HANDLERS["public/subscribe"] = original
        assert client.channels == []
        assert await client.call("public/test") == {"version": "1.2.26"}


async def test_iterator_queue_overflow_never_breaks_a_book(emu: Emulator) -> None:
    """A slow iterator's queue drops book changes: the consumer then sees a fresh
    snapshot, never a change that does not follow what it saw."""
    async with drbfast.connect(emu.url, **FAST) as client:
        sub = await client.subscribe("book.BTC-PERPETUAL.100ms", maxsize=4)
        await wait_until(lambda: client.stats.book_local_drops >= 1)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and len(seen) < 40:
            _, data = await sub.get(TIMEOUT)
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
        assert client.stats.book_local_drops >= 1


async def test_lazy_mode_checks_book_continuity(emu: Emulator) -> None:
    async with drbfast.connect(emu.url, lazy=True, **FAST) as client:
        types: list[str] = []
        await client.subscribe("book.ETH-PERPETUAL.100ms", callback=lambda ch, d: types.append(d["type"]))
        await wait_until(lambda: len(types) >= 3)
        n = len(types)  # the frame is sent synchronously below; nothing is read before
        emu.connections[-1].send(book_gap_frame("book.ETH-PERPETUAL.100ms"))
        await wait_until(lambda: client.stats.book_gaps == 1)
        await wait_until(lambda: len(types) > n)
        assert types[n] == "snapshot"


async def test_listener_sends_are_charged_to_the_budget(emu: Emulator) -> None:
    async with drbfast.connect(emu.url, heartbeat=0.1, request_timeout=2.0) as client:
        await wait_until(lambda: client.stats.replies_sent >= 3)
        await client.call("public/get_time")
        bucket = client._buckets["non_matching"]  # type: ignore[index]
        assert bucket.charged >= 3


async def test_matching_engine_calls_use_their_own_pool(emu: Emulator) -> None:
    pools = drbfast.CreditPools(matching=drbfast.Credits.rate(5, 2))
    async with drbfast.connect(emu.url, credits=pools, **CREDS, **FAST) as client:
        t0 = time.monotonic()
        for i in range(4):
            await client.call("private/buy", instrument_name="BTC-PERPETUAL", amount=10, type="limit", price=50000 + i)
        elapsed = time.monotonic() - t0
        # burst 2 then 5/s: the 3rd and 4th wait ~0.2 s each; non-matching calls do not.
        assert elapsed >= 0.3
        non_matching = client._buckets["non_matching"]  # type: ignore[index]
        waits = non_matching.waits
        for _ in range(5):
            await client.call("public/get_time")
        assert non_matching.waits == waits, "non-matching calls never waited for the matching pool"


async def test_credits_survive_a_reconnect(emu: Emulator) -> None:
    pools = drbfast.CreditPools(non_matching=drbfast.Credits(cost=500, cap=5_000, refill=500))
    async with drbfast.connect(emu.url, credits=pools, heartbeat=None, request_timeout=2.0, backoff=backoff()) as client:
        level = client._buckets["non_matching"].level  # type: ignore[index]
        emu.faults.drop()
        await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
        assert client._buckets["non_matching"].level < level, "the reconnect's set-up was charged, nothing refilled"  # type: ignore[index]


async def test_watchdog_ignores_reading_paused_on_purpose(emu: Emulator) -> None:
    async with drbfast.connect(emu.url, watchdog=0.3, heartbeat=None, request_timeout=2.0) as client:
        transport = client._listener.transport.underlying_transport  # type: ignore[union-attr]
        transport.pause_reading()
        await asyncio.sleep(0.8)
        transport.resume_reading()
        assert client.stats.watchdog_drops == 0
        assert client.connected


async def test_protocol_error_close_logs_no_unretrieved_exception(emu: Emulator, loop_exceptions: list[dict[str, Any]]) -> None:
    async with drbfast.connect(emu.url, max_frame_size=1024, backoff=backoff(), **FAST) as client:
        emu.faults.send_oversized(size=4096)
        await wait_until(lambda: client.stats.reconnects == 1 and client.connected)
    import gc

    gc.collect()
    await asyncio.sleep(0.05)
    assert loop_exceptions == []
