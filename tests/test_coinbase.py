"""Coinbase's Deribit gateway against the emulator's gateway mode: CDP JWT auth with both
key types, routing between the two hosts, the 32-channel trim, token refresh, and each
connection recovering alone."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import drbfast
from drbfast.cdp import build_cdp_jwt
from drbfast.emulator import Emulator, EmulatorConfig
from drbfast.gateway import connect_coinbase

from .conftest import TIMEOUT, wait_until

FAST: dict[str, Any] = {"heartbeat": 0.2, "request_timeout": 2.0, "backoff": drbfast.Backoff(initial=0.02, cap=0.1)}


@pytest.fixture
async def gateway() -> Any:
    async with Emulator(EmulatorConfig(gateway=True, min_heartbeat=0.1, tick_interval=0.05, gateway_token_ttl=3.0)) as emu:
        yield emu


def by_role(emu: Emulator, role: str) -> Any:
    return next(c for c in emu.connections if c.role == role)


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
async def test_cdp_auth_routes_and_refreshes(gateway: Emulator, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    name, pem = gateway.add_cdp_key(kind)
    caplog.set_level(logging.DEBUG)
    async with await connect_coinbase(name, pem, trading_url=gateway.url, streams_url=gateway.streams_url, **FAST) as client:
        trading, streams = by_role(gateway, "trading"), by_role(gateway, "streams")
        assert trading.client_id == name and trading.cod, "authenticated, cancel-on-disconnect armed"
        assert streams.client_id is None, "the streams host takes no auth"
        got: list[str] = []
        sub = await client.subscribe("user.orders.BTC-PERPETUAL.raw", "ticker.BTC-PERPETUAL.100ms", callback=lambda ch, d: got.append(ch))
        assert trading.subscriptions == {"user.orders.BTC-PERPETUAL.raw"} and streams.subscriptions == {"ticker.BTC-PERPETUAL.100ms"}
        assert sorted(sub.channels) == ["ticker.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw"]
        await client.buy("BTC-PERPETUAL", 10, price=50_000.0)
        await wait_until(lambda: {"user.orders.BTC-PERPETUAL.raw", "ticker.BTC-PERPETUAL.100ms"} <= set(got))
        # ~3 s tokens here (900 s at Coinbase): re-authenticated with a fresh JWT at 80 %.
        await wait_until(lambda: client.trading.stats.token_refreshes >= 1, TIMEOUT)
        assert await client.call("private/get_open_orders") and client.trading.stats.reconnects == 0
    text = caplog.text + repr(client) + repr(client.trading.options)
    assert "PRIVATE KEY" not in text and pem.splitlines()[1] not in text


async def test_the_wrong_host_answers_not_in_allowlist(gateway: Emulator) -> None:
    name, pem = gateway.add_cdp_key()
    async with await connect_coinbase(name, pem, trading_url=gateway.url, streams_url=gateway.streams_url, **FAST) as client:
        with pytest.raises(drbfast.MethodNotFound, match="allowlist"):
            await client.trading.call("public/subscribe", channels=["ticker.BTC-PERPETUAL.100ms"])
        with pytest.raises(drbfast.MethodNotFound, match="allowlist"):
            await client.market.call("private/get_open_orders")


async def test_forty_channels_come_back_thirty_two(gateway: Emulator) -> None:
    name, pem = gateway.add_cdp_key()
    async with await connect_coinbase(name, pem, trading_url=gateway.url, streams_url=gateway.streams_url, **FAST) as client:
        instruments = [i["instrument_name"] for i in await client.call("public/get_instruments", currency="any")]
        channels = [f"{family}.{inst}.{interval}" for inst in instruments for family in ("ticker", "book", "trades")
                    for interval in ("100ms", "agg2")][:40]
        assert len(channels) == 40
        with pytest.raises(drbfast.SubscriptionRefused) as info:
            await client.subscribe(*channels)
        assert len(info.value.channels) == 8
        sub = info.value.subscription  # type: ignore[attr-defined]
        assert len(sub.channels) == 32 and by_role(gateway, "streams").subscriptions == set(sub.channels)


async def test_bad_keys_are_typed_errors_and_leave_nothing(gateway: Emulator) -> None:
    name, pem = gateway.add_cdp_key()
    _, other_pem = gateway.add_cdp_key()
    with pytest.raises(drbfast.Unauthorized) as info:   # signed with another key
        await connect_coinbase(name, other_pem, trading_url=gateway.url, streams_url=gateway.streams_url, **FAST)
    assert info.value.data["reason"] == "bad_signature" and "PRIVATE" not in str(info.value)
    with pytest.raises(drbfast.Unauthorized) as info:   # a key the gateway does not know
        await connect_coinbase("organizations/x/apiKeys/unknown", pem, trading_url=gateway.url, streams_url=gateway.streams_url, **FAST)
    assert info.value.data["reason"] == "unknown_key"
    with pytest.raises(drbfast.ConfigurationError):     # not a key at all
        await connect_coinbase(name, "not a key", trading_url=gateway.url, streams_url=gateway.streams_url, **FAST)
    await wait_until(lambda: gateway.connections == [], 2.0)
    async with drbfast.connect(gateway.url, heartbeat=None) as raw:   # an expired JWT
        with pytest.raises(drbfast.Unauthorized) as info:
            await raw.call("public/auth", grant_type="coinbase_cdp", token=build_cdp_jwt(name, pem, now=1_000_000))
        assert info.value.data["reason"] == "jwt_expired"


async def test_a_drop_of_either_host_restores_it_alone(gateway: Emulator) -> None:
    name, pem = gateway.add_cdp_key()
    async with await connect_coinbase(name, pem, trading_url=gateway.url, streams_url=gateway.streams_url, **FAST) as client:
        await client.subscribe("user.orders.BTC-PERPETUAL.raw", "ticker.BTC-PERPETUAL.100ms", callback=lambda ch, d: None)
        order = await client.buy("BTC-PERPETUAL", 10, price=50_000.0)
        trading = by_role(gateway, "trading")
        gateway.faults.drop(by_role(gateway, "streams"))
        await wait_until(lambda: client.market.stats.reconnects == 1 and client.market.connected)
        assert trading in gateway.connections and client.trading.stats.reconnects == 0
        assert by_role(gateway, "streams").subscriptions == {"ticker.BTC-PERPETUAL.100ms"}
        assert [o.order_id for o in await client.trading.get_open_orders()] == [order.order.order_id]
        gateway.faults.drop(trading)
        await wait_until(lambda: client.trading.stats.reconnects == 1 and client.trading.connected)
        again = by_role(gateway, "trading")
        assert again.cod and again.heartbeat_interval == FAST["heartbeat"], "set_heartbeat and cancel-on-disconnect re-armed"
        assert again.subscriptions == {"user.orders.BTC-PERPETUAL.raw"}
        assert await client.trading.get_open_orders() == [], "cancel-on-disconnect pulled the order"
        assert client.market.stats.reconnects == 1
