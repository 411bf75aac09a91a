"""The asyncio driver under faults that used to leave it a zombie or stale, against the
emulator over real sockets: a failing reconciliation, a token refresh left unanswered,
a 13009 on re-authentication, a kept book through an outage."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import drbfast
from drbfast import Event
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

from .conftest import TIMEOUT, wait_until

CREDS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
FAST: dict[str, Any] = {"heartbeat": 0.2, "request_timeout": 1.0, "backoff": drbfast.Backoff(initial=0.02, cap=0.1)}


async def _wait(handle: drbfast.OrderHandle) -> Any:
    return await handle


async def test_failing_reconciliation_never_leaves_a_zombie(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    """An order's ack is lost to a drop; after the reconnect every lookup of it is
    answered with an error. The lookups are retried a bounded number of times, the order
    is settled "unknown", and the client stays READY and usable (it used to end its
    supervisor with an exception nobody retrieved: state READY, connected False)."""
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **CREDS, **FAST) as client:
        emulator.faults.fail_method("private/buy", "drop")
        by_label = emulator.faults.fail_method("private/get_order_state_by_label", "error", code=11094, times=50)
        by_instrument = emulator.faults.fail_method("private/get_open_orders_by_instrument", "error", code=11094, times=50)
        handle = client.place("buy", "BTC-PERPETUAL", 10, price=45_000.0)
        with pytest.raises(drbfast.ConnectionLost):
            await asyncio.wait_for(_wait(handle), TIMEOUT)
        assert await handle.reconciled(TIMEOUT) == "unknown"
        assert 1 <= by_label.fired + by_instrument.fired <= 8, "bounded retries"
        done = [e for e in events if e.kind == "order_reconciled"]
        assert len(done) == 1 and done[0].detail["outcome"] == "unknown"
        await wait_until(lambda: client.connected)
        assert client.state is drbfast.State.READY
        assert isinstance(await asyncio.wait_for(client.call("public/get_time"), TIMEOUT), int)
        assert "fatal" not in [e.kind for e in events]


async def test_an_unanswered_token_refresh_is_retried_before_expiry() -> None:
    """The refresh at 80 % of a 2 s token is left unanswered once: it is retried, and
    private calls still work after the first token expired (one timeout used to stop
    the refresh for good: 13009 on every private call while READY)."""
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, token_ttl=2.0)) as emu:
        async with drbfast.connect(emu.url, **CREDS, **{**FAST, "request_timeout": 0.2}) as client:
            silenced = emu.faults.fail_method("public/auth", "silence")
            await wait_until(lambda: silenced.fired == 1, 5.0)
            await asyncio.sleep(2.2)  # past the first token's expiry
            await wait_until(lambda: client.connected, TIMEOUT)
            result = await asyncio.wait_for(client.call("private/get_cancel_on_disconnect"), TIMEOUT)
            assert result == {"scope": "connection", "enabled": False}
            assert client.stats.token_refreshes >= 1


async def test_one_13009_on_re_authentication_is_retried(emulator: Emulator) -> None:
    """The connection drops and the re-authentication is refused once with 13009
    (clock skew, an expired token): the client tries again instead of giving up."""
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **CREDS, **FAST) as client:
        emulator.faults.fail_method("public/auth", "error", code=13009, times=1)
        emulator.faults.drop()
        await wait_until(lambda: client.stats.reconnects == 1, TIMEOUT)
        assert client.connected and client.state is drbfast.State.READY
        assert "fatal" not in [e.kind for e in events]
        assert "reconnect_failed" in [e.kind for e in events]


async def test_13009_on_every_re_authentication_ends_the_client_bounded(emulator: Emulator) -> None:
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **CREDS, **FAST) as client:
        fault = emulator.faults.fail_method("public/auth", "error", code=13009, times=100)
        emulator.faults.drop()
        await wait_until(lambda: client.state is drbfast.State.FAILED, TIMEOUT)
        assert 2 <= fault.fired <= 5
        assert [e.kind for e in events].count("fatal") == 1
        with pytest.raises(drbfast.AuthenticationError):
            await client.wait_connected(TIMEOUT)


async def test_invalid_credentials_on_re_authentication_stay_fatal(emulator: Emulator) -> None:
    events: list[Event] = []
    async with drbfast.connect(emulator.url, on_event=events.append, **CREDS, **FAST) as client:
        fault = emulator.faults.fail_method("public/auth", "error", code=13004, times=100)
        emulator.faults.drop()
        await wait_until(lambda: client.state is drbfast.State.FAILED, TIMEOUT)
        assert fault.fired == 1
        assert [e.kind for e in events].count("fatal") == 1


async def test_a_kept_book_is_stale_as_soon_as_the_connection_goes(emulator: Emulator) -> None:
    """Through an outage the kept book reads not synced, and an event names it (it used
    to read synced until the next connection's set-up)."""
    events: list[Event] = []
    synced_at_disconnect: list[bool] = []
    book_ref: list[drbfast.OrderBook] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if event.kind == "disconnected" and book_ref:
            synced_at_disconnect.append(book_ref[0].is_synced)

    async with drbfast.connect(emulator.url, on_event=on_event, **FAST) as client:
        book = await client.order_book("BTC-PERPETUAL")
        book_ref.append(book)
        await wait_until(lambda: book.is_synced)
        emulator.faults.drop()
        await wait_until(lambda: bool(synced_at_disconnect))
        assert synced_at_disconnect == [False]
        stale = [e for e in events if e.kind == "book_stale"]
        assert stale and stale[0].detail["channels"] == [book.channel]
        await wait_until(lambda: client.connected and book.is_synced, TIMEOUT)
