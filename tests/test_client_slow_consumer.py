"""drbfast.connect with a consumer slower than the feed, against the emulator's flood:
test_requests keep being answered, replies are never lost behind market data, and a
book that fell behind restarts from a fresh snapshot instead of arriving with a hole."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import drbfast
from drbfast import Event, monotonic_ns
from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

from .conftest import TIMEOUT, wait_until

BOOK = "book.BTC-PERPETUAL.raw"


def busy(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


async def test_slow_consumer_keeps_the_connection_and_the_book_whole() -> None:
    # credit_cost 1: a test_request every 200 messages would otherwise spend the
    # emulator's production budget on public/test answers alone.
    cfg = EmulatorConfig(min_heartbeat=0.1, tick_interval=0.05, credit_cost=1)
    events: list[Event] = []
    async with Emulator(cfg) as emu, drbfast.connect(
            emu.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, heartbeat=1.0, request_timeout=5.0,
            on_event=events.append, listener_options={"max_bytes": 8 * 1024 * 1024}) as client:
        seen: list[dict[str, Any]] = []
        stale_ns: list[int] = []
        broken: list[str] = []
        last: list[int | None] = [None]

        def on_book(channel: str, data: dict[str, Any]) -> None:
            stale_ns.append(monotonic_ns() - client.rx_ns)
            if data["type"] == "snapshot":
                last[0] = data["change_id"]
            elif last[0] is None or data["prev_change_id"] != last[0]:
                broken.append(f"{data['prev_change_id']} after {last[0]}")
            else:
                last[0] = data["change_id"]
            seen.append(data)
            busy(100)  # a consumer several times slower than the flood

        await client.subscribe(BOOK, callback=on_book)
        await wait_until(lambda: bool(seen))
        flood = asyncio.ensure_future(emu.faults.flood(count=30_000, test_request_every=200, channel=BOOK, timeout=30))
        # Replies during the flood: each arrives, none is lost behind queued market data.
        calls = []
        for _ in range(10):
            calls.append(await asyncio.wait_for(client.call("public/get_time"), TIMEOUT))
            await asyncio.sleep(0.05)
        result = await asyncio.wait_for(flood, 60)
        assert len(calls) == 10 and all(isinstance(t, int) for t in calls)
        assert result.test_requests == len(result.rtts_ns), "every test_request was answered"
        assert max(result.rtts_ns) < 500e6, "answered while the consumer was behind (wide margin)"
        await wait_until(lambda: client.stats.backlog == 0, 30)
        st = client.stats
        assert st.book_resets >= 1, "the book fell behind and was reset, not delivered late in full"
        assert "book_dropped" in [e.kind for e in events]
        await wait_until(lambda: seen[-1]["type"] == "change" and last[0] is not None, 10)
        assert broken == [], "continuity holds from the last snapshot"
        assert client.connected and st.reconnects == 0
        assert st.delivery_delay_max_ns > 0 and max(stale_ns) > 0
